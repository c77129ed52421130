/*
 * topk_shard_sample against one process: the token and probability of every row must be topk_sample's
 * on the whole rows (cpu backend, same params), bit for bit, for any number of ranks and any layout
 * (shard_kit.h), over many seeds: greedy and top_k rows (candidates exchanged), top-p, min-p and plain
 * temperature rows and a top_k too long for a list (the whole-row way: all-reduced histograms), per-row
 * parameters, seeds and offsets mixing both ways in one batch, ties across boundaries and NaN/inf rows,
 * fp32/fp16/bf16. The tests' double-precision sampler (tests/sample_ref.h) checks the tokens of random
 * rows too, where the draw is not within rounding of a boundary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "sample_ref.h"
#include "shard_kit.h"

enum { BATCH = 6, SEEDS = 3 };

typedef struct param_case {
    const char *name;
    ref_params p;   /* temperature, top_p, min_p, top_k */
    bool per_row;   /* per-row parameters, seeds and offsets instead */
} param_case;

static const param_case param_cases[] = {
    {"greedy", {0.0, 1.0, 0.0, 0}, false},
    {"top_k 1", {0.9, 1.0, 0.0, 1}, false},
    {"top_k 50", {0.8, 1.0, 0.0, 50}, false},
    {"top_k 2048 top_p 0.9", {1.3, 0.9, 0.0, 2048}, false},
    {"temperature 1", {1.0, 1.0, 0.0, 0}, false},
    {"top_p 0.9", {0.7, 0.9, 0.0, 0}, false},
    {"min_p 0.1", {1.0, 1.0, 0.1, 0}, false},
    {"top_p 0.5 min_p 0.05", {1.0, 0.5, 0.05, 0}, false},
    {"top_k 4500 top_p 0.95 (whole-row count search)", {1.1, 0.95, 0.0, 4500}, false},
    {"per-row parameters, seeds and offsets", {0}, true},
};

/* The per-row arrays of a call (host memory). */
typedef struct per_row {
    float t[BATCH], top_p[BATCH], min_p[BATCH];
    int64_t top_k[BATCH];
    uint64_t seeds[BATCH], offsets[BATCH];
} per_row;

/* Rows that take both ways in one call: greedy, lists, whole rows with a top_k beyond a list, top-p. */
static void fill_per_row(per_row *pr, int64_t vocab, uint64_t seed)
{
    static const float temperatures[] = {0.0f, 0.6f, 1.0f, 1.7f};
    static const int64_t top_ks[] = {0, 1, 40, 4500};
    static const float top_ps[] = {1.0f, 0.8f, 0.95f};
    static const float min_ps[] = {0.0f, 0.0f, 0.02f};
    rng r = {seed * 7919};
    for (int i = 0; i < BATCH; i++) {
        pr->t[i] = temperatures[rng_below(&r, 4)];
        pr->top_k[i] = top_ks[rng_below(&r, 4)];
        if (pr->top_k[i] > vocab) pr->top_k[i] = vocab;
        pr->top_p[i] = top_ps[rng_below(&r, 3)];
        pr->min_p[i] = min_ps[rng_below(&r, 3)];
        pr->seeds[i] = rng_next(&r);
        pr->offsets[i] = rng_below(&r, 1000);
    }
}

static topk_sampling sampling_of(const param_case *pc, per_row *pr, int64_t vocab, uint64_t seed)
{
    topk_sampling s = topk_sampling_default();
    s.seed = seed;
    s.offset = seed * 3;
    if (!pc->per_row) {
        s.temperature = (float)pc->p.temperature;
        s.top_p = (float)pc->p.top_p;
        s.min_p = (float)pc->p.min_p;
        s.top_k = pc->p.top_k;
        return s;
    }
    fill_per_row(pr, vocab, seed);
    s.temperatures = pr->t, s.top_ps = pr->top_p, s.min_ps = pr->min_p, s.top_ks = pr->top_k;
    s.seeds = pr->seeds, s.offsets = pr->offsets;
    return s;
}

typedef struct draws {
    int64_t tokens[BATCH];
    float probs[BATCH];
} draws;

/* The double-precision sampler's tokens, where unambiguous (scalar parameters only). */
static void check_oracle(kit *kt, const void *whole, topk_dtype dtype, int64_t vocab, const param_case *pc,
                         const topk_sampling *s, const draws *got, long *compared, const char *what)
{
    int elem = dtype_bytes(dtype);
    for (int64_t r = 0; r < BATCH; r++) {
        ref_pick want = ref_sample(dtype, (const char *)whole + r * vocab * elem, vocab, pc->p, s->seed, s->offset,
                                   (uint64_t)r);
        if (want.ambiguous) continue;
        ++*compared;
        kit_check(kt, want.token == got->tokens[r], what, "row %lld: token %lld, the double-precision sampler says %lld",
                  (long long)r, (long long)got->tokens[r], (long long)want.token);
    }
}

int main(int argc, char **argv)
{
    kit kt;
    kit_start(&kt, &argc, &argv);
    topk_ctx *cpu = kit_context(TOPK_BACKEND_CPU), *reference = kit_context(TOPK_BACKEND_REFERENCE);
    long oracle_rows = 0, oracle_compared = 0;
    uint64_t data_seed = 100;
    for (int d = 0; d < 3; d++)
        for (int p = 0; p < PATTERN_COUNT; p++)
            for (int64_t vocab = 2503; vocab <= 5003; vocab += 2500, data_seed++) {
                topk_dtype dtype = all_dtypes[d];
                void *whole = pattern_matrix((pattern)p, dtype, BATCH, vocab, data_seed);
                for (int l = 0; l < LAYOUT_COUNT; l++) {
                    topk_shard shard = take_shard(whole, dtype, BATCH, vocab, (layout)l);
                    for (size_t c = 0; c < sizeof param_cases / sizeof param_cases[0]; c++) {
                        const param_case *pc = &param_cases[c];
                        /* the long vocab is there for the top_k beyond a list; the rest run on the short one */
                        if ((vocab > 4500) != (pc->per_row || pc->p.top_k == 4500)) continue;
                        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
                            per_row pr;
                            topk_sampling s = sampling_of(pc, &pr, vocab, seed * 1000 + c);
                            /* the reference backend selects the shards on the even layout; roots alternate */
                            topk_ctx *ctx = l == LAYOUT_EVEN && seed == 1 ? reference : cpu;
                            int root = seed % 2 ? TOPK_ALL_RANKS : kt.size - 1;
                            char what[256];
                            snprintf(what, sizeof what, "%s V=%lld %s, %s, %s, seed %llu, %s backend, root %d",
                                     dtype_name(dtype), (long long)vocab, pattern_name((pattern)p), layout_name((layout)l),
                                     pc->name, (unsigned long long)seed, ctx == cpu ? "cpu" : "reference", root);
                            draws want, got;
                            memset(&got, 0xA5, sizeof got);
                            topk_status sw = topk_sample(cpu, whole, dtype, BATCH, vocab, vocab, &s, 0, want.tokens,
                                                         want.probs);
                            topk_status sg = topk_shard_sample(ctx, &kt.comm, &shard, &s, 0, root, got.tokens, got.probs);
                            if (!kit_check(&kt, sw == TOPK_OK && sg == TOPK_OK, what, "returned \"%s\" and \"%s\"",
                                           topk_strerror(sw), topk_strerror(sg)))
                                continue;
                            if (root != TOPK_ALL_RANKS && root != kt.rank) {
                                kit_check(&kt, got.tokens[0] == (int64_t)0xA5A5A5A5A5A5A5A5, what,
                                          "a rank that does not receive wrote");
                                continue;
                            }
                            for (int r = 0; r < BATCH; r++)
                                kit_check(&kt, got.tokens[r] == want.tokens[r] && !memcmp(&got.probs[r], &want.probs[r], 4),
                                          what, "row %d: token %lld p %a, one process: token %lld p %a", r,
                                          (long long)got.tokens[r], got.probs[r], (long long)want.tokens[r],
                                          want.probs[r]);
                            if (p == PATTERN_RANDOM && !pc->per_row) {
                                oracle_rows += BATCH;
                                check_oracle(&kt, whole, dtype, vocab, pc, &s, &got, &oracle_compared, what);
                            }
                        }
                    }
                    free((void *)shard.data);
                }
                free(whole);
            }
    /* the double-precision sampler must have had its say on most rows */
    kit_check(&kt, oracle_compared * 10 >= oracle_rows * 9, "the double-precision sampler",
              "compared only %ld of %ld rows", oracle_compared, oracle_rows);
    topk_ctx_free(cpu);
    topk_ctx_free(reference);
    return kit_finish(&kt, "test_shard_sample");
}
