/*
 * topk-bench: times topk_select on one shape or a named matrix of shapes, and checks every timed result
 * against the reference backend before it prints a number.
 *
 * Per case: make the input (matrix_data.c), select once with the reference backend, time the chosen
 * backend (timing.c) writing into outputs poisoned beforehand, compare the last timed call's outputs with
 * the reference's, and time the read floor (read_floor.c) on the same bytes. A case whose indices or
 * value bits differ from the reference makes the exit status 1.
 */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct options {
    bench_case single;   /* --batch, --vocab, --top-k, --dtype */
    int64_t stride;      /* 0: vocab */
    const char *matrix;  /* a named matrix instead of the single case */
    topk_backend backend;
    unsigned flags;      /* TOPK_SMALLEST, TOPK_DEVICE_POINTERS */
    uint64_t seed;
    int threads;         /* 0: the library's choice (TOPK_THREADS, else OpenMP's default) */
    timing_policy timing;
    bool csv;
    const char *dump;    /* write the input here and stop */
} options;

static const options defaults = {
    .single = {1, 50304, 50, TOPK_F32},
    .backend = TOPK_BACKEND_AUTO,
    .seed = 1,
    .timing = {.warmup = 5, .iters = 50, .min_time = 0.5, .max_time = 10},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: topk-bench [flags]\n"
            "Times topk_select and checks each timed result against the reference backend.\n"
            "\n"
            "One shape (defaults 1 x 50304, k 50, fp32):\n"
            "  --batch N           rows\n"
            "  --vocab N           columns selected from in each row\n"
            "  --top-k N           entries kept per row, 1..vocab\n"
            "  --dtype T           fp32, fp16 or bf16\n"
            "  --stride N          elements from one row to the next, >= vocab (default vocab); the padding\n"
            "                      holds NaN and -inf, which would win if a backend read it\n"
            "Or a named matrix of shapes, which excludes the five flags above:\n"
            "  --matrix NAME       ");
    for (size_t i = 0; matrix_name(i); i++) {
        bench_case *cases;
        size_t count = matrix_cases(matrix_name(i), &cases);
        free(cases);
        fprintf(out, "%s%s (%zu cases)", i ? ", " : "", matrix_name(i), count);
    }
    fprintf(out,
            "\n"
            "What runs:\n"
            "  --backend B         auto, cpu, offload or reference (default auto); TOPK_BACKEND must be unset\n"
            "  --threads N         TOPK_PARAM_THREADS for cpu, and the read floor's thread count\n"
            "                      (default: the library's choice, i.e. TOPK_THREADS or OpenMP's default)\n"
            "  --smallest          select the k smallest instead of the k largest\n"
            "  --device-pointers   input and outputs in GPU memory (omp_target_alloc on the default device),\n"
            "                      passed with TOPK_DEVICE_POINTERS; needs a device and the offload backend\n"
            "Input data:\n"
            "  --seed N            seed of the normal random input (default 1); bench/matrix_data.c\n"
            "                      gives the recipe, which bench/peers/torch_topk.py repeats bit for bit\n"
            "  --dump FILE         write the raw input matrix (batch x stride elements) to FILE and stop\n"
            "Timing:\n"
            "  --warmup N          untimed calls first (default %d)\n"
            "  --iters N           at least N timed calls (default %d) ...\n"
            "  --min-time S        ... and at least S seconds of them, so fast cases get many (default %g) ...\n"
            "  --max-time S        ... unless S seconds pass first, with never fewer than 3 (default %g;\n"
            "                      0: no limit); warmup stops at S too\n"
            "Output:\n"
            "  --csv               a header line, then one line per case (default: a readable table)\n"
            "  --help              this text\n"
            "\n"
            "Columns: median/min/max microseconds per call; gbps = input bytes (batch x vocab x element size)\n"
            "/ median; read_floor_us = median time of an OpenMP vectorised sum over the same bytes with the\n"
            "same threads (host backends only); bw_fraction = read_floor_us / median_us; max_abs_diff and\n"
            "indices_equal compare with one reference-backend call on the same data.\n"
            "Exit status: 0 all cases verified, 1 a result differed from the reference or a call failed,\n"
            "2 bad flags.\n",
            defaults.timing.warmup, defaults.timing.iters, defaults.timing.min_time, defaults.timing.max_time);
}

static void bad_flags(const char *message, const char *detail)
{
    fprintf(stderr, "topk-bench: %s%s\ntry topk-bench --help\n", message, detail);
    exit(2);
}

static _Noreturn void out_of_memory(size_t bytes)
{
    fprintf(stderr, "topk-bench: out of memory allocating %zu bytes\n", bytes);
    exit(1);
}

void *bench_realloc(void *old, size_t bytes)
{
    void *p = realloc(old, bytes);
    if (!p) out_of_memory(bytes);
    return p;
}

static int64_t parse_count(const char *flag, const char *text, int64_t min, int64_t max)
{
    char *end;
    long long value = strtoll(text, &end, 10);
    if (!*text || *end || value < min || value > max) {
        fprintf(stderr, "topk-bench: %s %s: expected a whole number from %lld to %lld\n", flag, text,
                (long long)min, (long long)max);
        exit(2);
    }
    return value;
}

static double parse_seconds(const char *flag, const char *text)
{
    char *end;
    double value = strtod(text, &end);
    if (!*text || *end || !(value >= 0)) {
        fprintf(stderr, "topk-bench: %s %s: expected seconds >= 0\n", flag, text);
        exit(2);
    }
    return value;
}

static topk_backend parse_backend(const char *text)
{
    for (int b = TOPK_BACKEND_AUTO; b <= TOPK_BACKEND_REFERENCE; b++)
        if (strcmp(text, topk_backend_name((topk_backend)b)) == 0) return (topk_backend)b;
    bad_flags("--backend must be auto, cpu, offload or reference, not ", text);
    return TOPK_BACKEND_AUTO;
}

static bool takes_value(const char *flag)
{
    static const char *const valued[] = {"--batch", "--vocab",  "--top-k",  "--stride",   "--dtype",
                                         "--matrix", "--backend", "--threads", "--seed",    "--dump",
                                         "--warmup", "--iters",  "--min-time", "--max-time"};
    for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++)
        if (!strcmp(flag, valued[i])) return true;
    return false;
}

static options parse_options(int argc, char **argv)
{
    options o = defaults;
    bool shape_given = false;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(flag, "--smallest")) {
            o.flags |= TOPK_SMALLEST;
            continue;
        }
        if (!strcmp(flag, "--device-pointers")) {
            o.flags |= TOPK_DEVICE_POINTERS;
            continue;
        }
        if (!strcmp(flag, "--csv")) {
            o.csv = true;
            continue;
        }
        if (!takes_value(flag)) bad_flags("unknown flag ", flag);
        if (i + 1 == argc) bad_flags("missing value after ", flag);
        const char *value = argv[++i];
        if (!strcmp(flag, "--batch")) o.single.batch = parse_count(flag, value, 1, INT64_MAX);
        else if (!strcmp(flag, "--vocab")) o.single.vocab = parse_count(flag, value, 1, INT64_MAX);
        else if (!strcmp(flag, "--top-k")) o.single.k = parse_count(flag, value, 1, INT64_MAX);
        else if (!strcmp(flag, "--stride")) o.stride = parse_count(flag, value, 1, INT64_MAX);
        else if (!strcmp(flag, "--dtype")) {
            int d = dtype_parse(value);
            if (d < 0) bad_flags("--dtype must be fp32, fp16 or bf16, not ", value);
            o.single.dtype = (topk_dtype)d;
        } else if (!strcmp(flag, "--matrix")) {
            bench_case *cases;
            if (!matrix_cases(value, &cases)) bad_flags("no such matrix: ", value);
            free(cases);
            o.matrix = value;
        } else if (!strcmp(flag, "--backend")) o.backend = parse_backend(value);
        else if (!strcmp(flag, "--threads")) o.threads = (int)parse_count(flag, value, 1, 4096);
        else if (!strcmp(flag, "--seed")) o.seed = (uint64_t)parse_count(flag, value, 0, INT64_MAX);
        else if (!strcmp(flag, "--dump")) o.dump = value;
        else if (!strcmp(flag, "--warmup")) o.timing.warmup = (int)parse_count(flag, value, 0, 1000000);
        else if (!strcmp(flag, "--iters")) o.timing.iters = (int)parse_count(flag, value, 1, 100000000);
        else if (!strcmp(flag, "--min-time")) o.timing.min_time = parse_seconds(flag, value);
        else if (!strcmp(flag, "--max-time")) o.timing.max_time = parse_seconds(flag, value);
        else bad_flags("takes_value lists a flag that nothing reads: ", flag);
        shape_given |= !strcmp(flag, "--batch") || !strcmp(flag, "--vocab") || !strcmp(flag, "--top-k") ||
                       !strcmp(flag, "--dtype") || !strcmp(flag, "--stride");
    }
    if (o.matrix && shape_given) bad_flags("--matrix replaces --batch, --vocab, --top-k, --dtype and --stride", "");
    if (o.matrix && o.dump) bad_flags("--dump writes one shape's input: give --batch etc., not --matrix", "");
    if (o.single.k > o.single.vocab) bad_flags("--top-k is larger than --vocab", "");
    if (o.stride && o.stride < o.single.vocab) bad_flags("--stride is smaller than --vocab", "");
    return o;
}

static void *alloc_aligned(size_t bytes)
{
    /* 64-byte aligned like any real logits buffer; aligned_alloc wants a multiple of the alignment. */
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) out_of_memory(bytes);
    return p;
}

static void dump_input(const options *o)
{
    int64_t stride = o->stride ? o->stride : o->single.vocab;
    size_t bytes = (size_t)(o->single.batch * stride) * (size_t)topk_dtype_size(o->single.dtype);
    void *data = alloc_aligned(bytes);
    matrix_fill(data, o->single.dtype, o->single.batch, o->single.vocab, stride, o->seed);
    FILE *f = fopen(o->dump, "wb");
    bool written = f && fwrite(data, 1, bytes, f) == bytes;
    if (f && fclose(f) != 0) written = false;
    free(data);
    if (!written) {
        fprintf(stderr, "topk-bench: cannot write %s\n", o->dump);
        exit(1);
    }
    fprintf(stderr, "topk-bench: wrote %zu bytes to %s\n", bytes, o->dump);
}

/* One topk_select call as time_calls runs it. */
typedef struct select_call {
    topk_ctx *ctx;
    const void *input;
    const bench_case *shape;
    int64_t stride;
    unsigned flags;
    void *values;
    int64_t *indices;
} select_call;

static void run_select(void *arg)
{
    const select_call *c = arg;
    topk_status s = topk_select(c->ctx, c->input, c->shape->dtype, c->shape->batch, c->shape->vocab, c->stride,
                                c->shape->k, c->flags, c->values, c->indices);
    if (s != TOPK_OK) {
        fprintf(stderr, "topk-bench: %s backend, %lld x %lld, k %lld, %s: %s\n",
                topk_backend_name(topk_ctx_backend(c->ctx)), (long long)c->shape->batch,
                (long long)c->shape->vocab, (long long)c->shape->k, dtype_name(c->shape->dtype), topk_strerror(s));
        exit(1);
    }
}

/* Device copies of a case's buffers for --device-pointers. */
typedef struct device_buffers {
    void *input, *values;
    int64_t *indices;
} device_buffers;

typedef struct case_result {
    timing_summary time;
    double read_floor_s; /* NAN for the offload backend: a host read says nothing about a GPU */
    double max_abs_diff;
    bool indices_equal, values_equal;
} case_result;

static case_result run_case(topk_ctx *ctx, topk_ctx *reference, const options *o, const bench_case *shape, int threads)
{
    int64_t stride = o->stride ? o->stride : shape->vocab, outputs = shape->batch * shape->k;
    size_t elem = (size_t)topk_dtype_size(shape->dtype);
    size_t input_bytes = (size_t)(shape->batch * stride) * elem, value_bytes = (size_t)outputs * elem;
    size_t index_bytes = (size_t)outputs * sizeof(int64_t);
    void *input = alloc_aligned(input_bytes), *values = alloc_aligned(value_bytes);
    void *expected_values = alloc_aligned(value_bytes);
    int64_t *indices = alloc_aligned(index_bytes), *expected_indices = alloc_aligned(index_bytes);
    matrix_fill(input, shape->dtype, shape->batch, shape->vocab, stride, o->seed);

    unsigned host_flags = o->flags & ~TOPK_DEVICE_POINTERS;
    run_select(&(select_call){reference, input, shape, stride, host_flags, expected_values, expected_indices});

    /* All ones: NaN values and index -1, so a slot the backend forgot to write cannot pass the check. */
    memset(values, 0xFF, value_bytes);
    memset(indices, 0xFF, index_bytes);
    select_call timed = {ctx, input, shape, stride, o->flags, values, indices};
    device_buffers device = {0};
    if (o->flags & TOPK_DEVICE_POINTERS) {
        /* The outputs go over poisoned too. */
        device = (device_buffers){device_copy_in(input, input_bytes), device_copy_in(values, value_bytes),
                                  device_copy_in(indices, index_bytes)};
        timed = (select_call){ctx, device.input, shape, stride, o->flags, device.values, device.indices};
    }

    case_result r = {.time = time_calls(run_select, &timed, o->timing), .read_floor_s = NAN};

    if (o->flags & TOPK_DEVICE_POINTERS) {
        device_copy_out(values, device.values, value_bytes);
        device_copy_out(indices, device.indices, index_bytes);
        device_free(device.input);
        device_free(device.values);
        device_free(device.indices);
    }
    r.indices_equal = memcmp(indices, expected_indices, index_bytes) == 0;
    r.values_equal = memcmp(values, expected_values, value_bytes) == 0;
    for (int64_t i = 0; i < outputs; i++) {
        double diff = fabs(value_as_double(values, shape->dtype, i) -
                           value_as_double(expected_values, shape->dtype, i));
        /* fmax would drop a NaN difference (a poisoned slot); count it as infinitely wrong instead. */
        r.max_abs_diff = isnan(diff) ? INFINITY : fmax(r.max_abs_diff, diff);
    }

    if (topk_ctx_backend(ctx) != TOPK_BACKEND_OFFLOAD)
        r.read_floor_s = read_floor_seconds(input, shape->batch, shape->vocab * (int64_t)elem, stride * (int64_t)elem,
                                            threads, o->timing);
    free(input);
    free(values);
    free(expected_values);
    free(indices);
    free(expected_indices);
    return r;
}

static const char csv_header[] = "backend,batch,vocab,stride,k,dtype,order,threads,samples,median_us,min_us,max_us,"
                                 "gbps,read_floor_us,bw_fraction,max_abs_diff,indices_equal\n";

static void print_result(const options *o, topk_backend backend, const bench_case *shape, int threads,
                         const case_result *r)
{
    double input_bytes = (double)shape->batch * (double)shape->vocab * topk_dtype_size(shape->dtype);
    double gbps = input_bytes / r->time.median_s / 1e9, floor_us = r->read_floor_s * 1e6;
    double fraction = r->read_floor_s / r->time.median_s;
    int64_t stride = o->stride ? o->stride : shape->vocab;
    if (o->csv) {
        printf("%s,%lld,%lld,%lld,%lld,%s,%s,%d,%lld,%.3f,%.3f,%.3f,%.3f,", topk_backend_name(backend),
               (long long)shape->batch, (long long)shape->vocab, (long long)stride, (long long)shape->k,
               dtype_name(shape->dtype), o->flags & TOPK_SMALLEST ? "smallest" : "largest", threads,
               (long long)r->time.samples, r->time.median_s * 1e6, r->time.min_s * 1e6, r->time.max_s * 1e6, gbps);
        if (isnan(floor_us)) printf(",,");
        else printf("%.3f,%.4f,", floor_us, fraction);
        printf("%g,%d\n", r->max_abs_diff, r->indices_equal);
    } else {
        printf("%6lld %9lld %5lld %-5s %11.2f %11.2f %11.2f %8.2f ", (long long)shape->batch, (long long)shape->vocab,
               (long long)shape->k, dtype_name(shape->dtype), r->time.median_s * 1e6, r->time.min_s * 1e6,
               r->time.max_s * 1e6, gbps);
        if (isnan(floor_us)) printf("%11s %8s ", "-", "-");
        else printf("%11.2f %8.3f ", floor_us, fraction);
        printf("%12g %s\n", r->max_abs_diff,
               !r->indices_equal ? "NO: indices differ" : !r->values_equal ? "NO: values differ" : "yes");
    }
    fflush(stdout);
}

static topk_ctx *create_ctx(topk_backend backend)
{
    topk_ctx *ctx;
    topk_status s = topk_ctx_create(&ctx, backend);
    if (s != TOPK_OK) {
        fprintf(stderr, "topk-bench: cannot create a context for the %s backend: %s\n", topk_backend_name(backend),
                topk_strerror(s));
        exit(1);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    options o = parse_options(argc, argv);
    if (o.dump) {
        dump_input(&o);
        return 0;
    }
    /* TOPK_BACKEND overrides every context's backend, the reference oracle's too: refuse rather than
     * check a backend against itself. */
    const char *env_backend = getenv("TOPK_BACKEND");
    if (env_backend && *env_backend) bad_flags("TOPK_BACKEND is set; unset it and choose with --backend", "");

    topk_ctx *ctx = create_ctx(o.backend), *reference = create_ctx(TOPK_BACKEND_REFERENCE);
    topk_backend backend = topk_ctx_backend(ctx);
    if (o.flags & TOPK_DEVICE_POINTERS) {
        const char *why_not = device_memory_unavailable();
        if (why_not) {
            fprintf(stderr, "topk-bench: --device-pointers: %s\n", why_not);
            return 1;
        }
        if (backend != TOPK_BACKEND_OFFLOAD) {
            fprintf(stderr, "topk-bench: --device-pointers needs the offload backend; this context runs %s\n",
                    topk_backend_name(backend));
            return 1;
        }
    }
    if (o.threads && topk_ctx_set_param(ctx, TOPK_PARAM_THREADS, o.threads) != TOPK_OK) {
        fprintf(stderr, "topk-bench: the library refused --threads %d\n", o.threads);
        return 1;
    }
    int64_t library_threads;
    topk_ctx_get_param(ctx, TOPK_PARAM_THREADS, &library_threads);
    int threads = library_threads ? (int)library_threads : omp_get_max_threads();

    bench_case *cases = &o.single;
    size_t count = o.matrix ? matrix_cases(o.matrix, &cases) : 1;
    const char *order = o.flags & TOPK_SMALLEST ? "smallest" : "largest";
    fprintf(o.csv ? stderr : stdout,
            "topk-bench: libtopk %s, backend %s, %d threads, seed %llu, %s first, per case %d warmup + at least %d "
            "calls and %g s, at most %g s\n",
            topk_version_string(), topk_backend_name(backend), threads, (unsigned long long)o.seed, order,
            o.timing.warmup, o.timing.iters, o.timing.min_time, o.timing.max_time);
    if (o.csv) fputs(csv_header, stdout);
    else
        printf("%6s %9s %5s %-5s %11s %11s %11s %8s %11s %8s %12s %s\n", "batch", "vocab", "k", "dtype", "median_us",
               "min_us", "max_us", "GB/s", "floor_us", "bw_frac", "max_abs_diff", "matches reference");

    int failures = 0;
    for (size_t i = 0; i < count; i++) {
        const bench_case *shape = &cases[i];
        fprintf(stderr, "topk-bench: [%zu/%zu] %lld x %lld, k %lld, %s\n", i + 1, count, (long long)shape->batch,
                (long long)shape->vocab, (long long)shape->k, dtype_name(shape->dtype));
        case_result r = run_case(ctx, reference, &o, shape, threads);
        print_result(&o, backend, shape, threads, &r);
        if (!r.indices_equal || !r.values_equal) {
            fprintf(stderr, "topk-bench: %lld x %lld, k %lld, %s: %s differ from the reference backend's\n",
                    (long long)shape->batch, (long long)shape->vocab, (long long)shape->k, dtype_name(shape->dtype),
                    r.indices_equal ? "value bits" : "indices");
            failures++;
        }
    }
    if (o.matrix) free(cases);
    topk_ctx_free(ctx);
    topk_ctx_free(reference);
    if (failures)
        fprintf(stderr, "topk-bench: %d of %zu cases FAILED the check against the reference\n", failures, count);
    return failures ? 1 : 0;
}
