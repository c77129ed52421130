/*
 * sample-bench: times topk_sample on one shape and checks it. Every run first checks that the cpu and
 * offload backends (when the offload one opens) draw the same tokens and probabilities, bit for bit,
 * over --seeds seeds; then it times the chosen backend (median of --reps calls, host memory) and, with
 * --peer 'COMMAND', runs COMMAND with the shape's flags appended and prints its median from its
 * "median_us X" line (bench/peers/torch_sample.py, bench/peers/flashinfer_sample.py).
 *
 *   sample-bench --batch 32 --vocab 128256 --temperature 0.7 --top-k 50 --top-p 0.9 [--min-p 0]
 *                [--dtype fp32|fp16|bf16] [--backend cpu|offload] [--reps 50] [--seeds 20]
 *                [--device-pointers] [--sample-list N]
 *                [--peer '/usr/bin/python3 bench/peers/torch_sample.py --device cpu']
 * Top-p or min-p alone: --top-k 0 --top-p 0.9 (or --top-p 1 --min-p 0.1). --sample-list N sets
 * TOPK_PARAM_SAMPLE_LIST on both contexts: 1 samples such rows over the whole row (the old path), for A/B.
 * --device-pointers (offload): logits, tokens and probs live in GPU memory, as in a decoder; the
 * timed calls then include no copies. The tokens are copied back and checked after every call.
 * Prints one line: shape, libtopk median us, peer median us, ratio; exit status 1 on any mismatch.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <topk.h>

#include "bench.h" /* the kit: flags, clock, median, dtype names, device memory (device_memory.c) */

/* Logits like a language model's: mostly N(0, 2)-ish, bits written per dtype (fp16/bf16 by truncation). */
static void *make_logits(topk_dtype dtype, int64_t n, unsigned seed)
{
    int elem = topk_dtype_size(dtype);
    char *m = malloc((size_t)(n * elem));
    unsigned x = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        float v = 0;
        for (int j = 0; j < 4; j++) {
            x = x * 1664525u + 1013904223u;
            v += (float)(x >> 8) / 16777216.0f;
        }
        v = (v - 2.0f) * 3.5f;
        unsigned bits;
        memcpy(&bits, &v, 4);
        if (dtype == TOPK_F32) memcpy(m + i * 4, &bits, 4);
        else if (dtype == TOPK_BF16) ((unsigned short *)m)[i] = (unsigned short)(bits >> 16);
        else { /* fp16 of a value within +-8: rebias, truncate the mantissa */
            unsigned sign = (bits >> 16) & 0x8000u, e = (bits >> 23) & 0xFFu, mant = (bits >> 13) & 0x3FFu;
            ((unsigned short *)m)[i] = (unsigned short)(e < 113 ? sign : sign | ((e - 112) << 10) | mant);
        }
    }
    return m;
}

static double peer_median(const char *peer, int64_t batch, int64_t vocab, const char *dtype, float t, int64_t k,
                          float p, float min_p, int reps)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --batch %lld --vocab %lld --dtype %s --temperature %g --top-k %lld --top-p %g --min-p %g --reps %d",
             peer, (long long)batch, (long long)vocab, dtype, t, (long long)k, p, min_p, reps);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    char line[512];
    double median = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "median_us %lf", &median) == 1) continue;
        fputs(line, stderr); /* the peer's own messages (a skip, an error) */
    }
    pclose(f);
    return median;
}

typedef struct options {
    int64_t batch, vocab, top_k, sample_list;
    float temperature, top_p, min_p;
    int dtype, backend; /* indices into dtype_choices and backend_choices */
    int reps, seeds;
    bool device_pointers;
    const char *peer;
} options;

static const char *const backend_choices[] = {"cpu", "offload", NULL}; /* main maps 0 and 1 to the backends */

static options parse_options(int argc, char **argv)
{
    options o = {.batch = 32, .vocab = 128256, .top_k = 50, .temperature = 0.7f, .top_p = 0.9f, .min_p = 0.0f,
                 .dtype = TOPK_F32, .backend = 0, .reps = 50, .seeds = 20};
    const int64_t many = INT64_MAX;
    flag list[] = {
        {"--batch", FLAG_INT64, &o.batch, "N", .min = 1, .max = many, .show_default = true, .help = "rows"},
        {"--vocab", FLAG_INT64, &o.vocab, "N", .min = 1, .max = many, .show_default = true, .help = "logits per row"},
        {"--dtype", FLAG_CHOICE, &o.dtype, "T", .choices = dtype_choices, .show_default = true,
         .help = "fp32, fp16 or bf16"},
        {"--temperature", FLAG_FLOAT, &o.temperature, "T", .least = 0, .most = INFINITY, .show_default = true,
         .help = "0: greedy"},
        {"--top-k", FLAG_INT64, &o.top_k, "N", .min = 0, .max = many, .show_default = true, .help = "0: off"},
        {"--top-p", FLAG_FLOAT, &o.top_p, "P", .least = 0, .most = 1, .show_default = true, .help = "1: off"},
        {"--min-p", FLAG_FLOAT, &o.min_p, "P", .least = 0, .most = 1, .show_default = true, .help = "0: off"},
        {"--backend", FLAG_CHOICE, &o.backend, "B", .choices = backend_choices, .show_default = true,
         .help = "the backend timed: cpu or offload"},
        {"--device-pointers", FLAG_ON, &o.device_pointers,
         .help = "(offload) logits, tokens and probs in GPU memory, as in a decoder"},
        {"--sample-list", FLAG_INT64, &o.sample_list, "N", .min = 0, .max = 1024, .show_default = true,
         .help = "TOPK_PARAM_SAMPLE_LIST: rows with top-p or min-p and no top-k draw\n"
                 "from their best N when their kept set lies there; 1: never (the old\n"
                 "whole-row path, for A/B); 0: the backend's default"},
        {"--reps", FLAG_INT, &o.reps, "N", .min = 1, .max = 100000000, .show_default = true,
         .help = "timed calls; the median is reported"},
        {"--seeds", FLAG_INT, &o.seeds, "N", .min = 0, .max = 100000000, .show_default = true,
         .help = "seeds of the cpu == offload parity check"},
        {"--peer", FLAG_STRING, &o.peer, "'COMMAND'",
         .help = "also run COMMAND with the shape's flags appended and report the\n"
                 "median of its \"median_us X\" line (bench/peers/torch_sample.py)"},
    };
    flag_table table = {"sample-bench", "Times topk_sample and checks that cpu and offload draw the same bits.\n\n",
                        "\nExit status: 0 checked, 1 a mismatch or a failed call, 2 bad flags.\n", list,
                        sizeof list / sizeof list[0]};
    flags_parse(&table, argc, argv);
    return o;
}

int main(int argc, char **argv)
{
    options o = parse_options(argc, argv);
    int64_t batch = o.batch, vocab = o.vocab;
    topk_dtype dtype = (topk_dtype)o.dtype;
    topk_backend backend = o.backend ? TOPK_BACKEND_OFFLOAD : TOPK_BACKEND_CPU;
    void *logits = make_logits(dtype, batch * vocab, 7);
    int64_t *tokens = malloc((size_t)batch * 8), *other = malloc((size_t)batch * 8);
    float *probs = malloc((size_t)batch * 4), *other_probs = malloc((size_t)batch * 4);
    topk_ctx *cpu, *offload = NULL, *ctx;
    topk_status s = topk_ctx_create(&cpu, TOPK_BACKEND_CPU);
    if (s != TOPK_OK) return fprintf(stderr, "cpu: %s\n", topk_strerror(s)), 1;
    if (topk_ctx_create(&offload, TOPK_BACKEND_OFFLOAD) != TOPK_OK) offload = NULL;
    if (topk_ctx_set_param(cpu, TOPK_PARAM_SAMPLE_LIST, o.sample_list) != TOPK_OK ||
        (offload && topk_ctx_set_param(offload, TOPK_PARAM_SAMPLE_LIST, o.sample_list) != TOPK_OK))
        return fprintf(stderr, "sample-bench: --sample-list %lld refused\n", (long long)o.sample_list), 2;
    ctx = backend == TOPK_BACKEND_OFFLOAD ? offload : cpu;
    if (!ctx) return fprintf(stderr, "sample-bench: the offload backend does not open here\n"), 1;
    topk_sampling sp = topk_sampling_default();
    sp.temperature = o.temperature;
    sp.top_k = o.top_k;
    sp.top_p = o.top_p;
    sp.min_p = o.min_p;
    int mismatches = 0;
    for (int seed = 0; seed < o.seeds && offload; seed++) {
        sp.seed = (uint64_t)seed * 0x9E3779B97F4A7C15ull;
        sp.offset = (uint64_t)seed;
        if (topk_sample(cpu, logits, dtype, batch, vocab, vocab, &sp, 0, tokens, probs) != TOPK_OK ||
            topk_sample(offload, logits, dtype, batch, vocab, vocab, &sp, 0, other, other_probs) != TOPK_OK ||
            memcmp(tokens, other, (size_t)batch * 8) || memcmp(probs, other_probs, (size_t)batch * 4))
            mismatches++;
    }
    /* With --device-pointers the timed calls read and write GPU memory; else host memory. */
    const void *in = logits;
    int64_t *tokens_at = tokens;
    float *probs_at = probs;
    unsigned flags = 0;
    if (o.device_pointers) {
        const char *why = device_memory_unavailable();
        if (why || backend != TOPK_BACKEND_OFFLOAD)
            return fprintf(stderr, "sample-bench: --device-pointers needs --backend offload%s%s\n", why ? ": " : "",
                           why ? why : ""), 1;
        in = device_copy_in(logits, (size_t)(batch * vocab * topk_dtype_size(dtype)));
        tokens_at = device_copy_in(tokens, (size_t)batch * 8);
        probs_at = device_copy_in(probs, (size_t)batch * 4);
        flags = TOPK_DEVICE_POINTERS;
    }
    double *times = malloc((size_t)o.reps * sizeof(double));
    for (int i = 0; i <= o.reps; i++) {
        sp.seed = 1;
        sp.offset = (uint64_t)i;
        double t0 = bench_now();
        s = topk_sample(ctx, in, dtype, batch, vocab, vocab, &sp, flags, tokens_at, probs_at);
        if (i) times[i - 1] = (bench_now() - t0) * 1e6; /* the first call warms up */
        if (s != TOPK_OK) return fprintf(stderr, "topk_sample: %s\n", topk_strerror(s)), 1;
        if (o.device_pointers) {
            device_copy_out(tokens, tokens_at, (size_t)batch * 8);
            device_copy_out(probs, probs_at, (size_t)batch * 4);
        }
        for (int64_t r = 0; r < batch; r++)
            if (tokens[r] < 0 || tokens[r] >= vocab || !(probs[r] > 0.0f && probs[r] <= 1.0f)) mismatches++;
    }
    if (o.device_pointers) {
        device_free((void *)in);
        device_free(tokens_at);
        device_free(probs_at);
    }
    double ours = median_of(times, o.reps);
    double theirs = o.peer ? peer_median(o.peer, batch, vocab, dtype_name(dtype), o.temperature, o.top_k, o.top_p,
                                         o.min_p, o.reps)
                           : -1;
    printf("B=%lld V=%lld %s T=%g k=%lld p=%g min_p=%g list=%lld | %s %.1f us", (long long)batch, (long long)vocab,
           dtype_name(dtype), o.temperature, (long long)o.top_k, o.top_p, o.min_p, (long long)o.sample_list,
           topk_backend_name(backend), ours);
    if (theirs > 0) printf(" | peer %.1f us | peer/libtopk %.2fx", theirs, theirs / ours);
    printf("%s | parity %s\n", o.device_pointers ? " (device pointers)" : "",
           offload ? (mismatches ? "MISMATCH" : "cpu == offload") : "offload not available");
    topk_ctx_free(cpu);
    topk_ctx_free(offload);
    free(times);
    free(logits);
    free(tokens);
    free(other);
    free(probs);
    free(other_probs);
    return mismatches != 0;
}
