/*
 * topk-bench: times topk_select on one shape, a named matrix of shapes or a .npy file of real logits,
 * on one or more backends, and checks every timed result against the reference backend before it
 * prints a number. Also: --profile (the library's per-stage timers), --autotune (writes a tuning
 * table), --plot (gnuplot charts, of this run or of CSV files, peers' included).
 *
 * Per case: make the input (matrix_data.c or the file), select once with the reference backend, then
 * for each backend time it (timing.c) writing into outputs poisoned beforehand, compare the last timed
 * call's outputs with the reference's, and time the read floor (read_floor.c) on the same bytes. A
 * case whose indices or value bits differ from the reference makes the exit status 1.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "npy.h"

enum { MAX_BACKENDS = 4, MAX_FROM = 16, MAX_MATRICES = 16 };

typedef struct options {
    bench_case single;   /* --batch, --vocab, --top-k, --dtype */
    bool dtype_given;
    int64_t stride;      /* 0: vocab */
    const char *matrix;  /* a named matrix instead of the single case */
    const char *input;   /* a .npy file instead of seeded data */
    topk_backend backends[MAX_BACKENDS];
    int backend_count;
    unsigned flags;      /* TOPK_SMALLEST, TOPK_DEVICE_POINTERS */
    int64_t seed;
    int threads;         /* 0: the library's choice (TOPK_THREADS, a tuning table, else OpenMP's default) */
    timing_policy timing;
    report_format format;
    bool profile, list;
    const char *dump;     /* write the input here and stop */
    const char *autotune; /* write a tuning table here */
    const char *plot;     /* draw a PNG here */
    const char *from[MAX_FROM]; /* plot these CSV files instead of running */
    int from_count;
} options;

static const options defaults = {
    .single = {1, 50304, 50, TOPK_F32},
    .backends = {TOPK_BACKEND_AUTO},
    .backend_count = 1,
    .seed = 1,
    .timing = {.warmup = 5, .iters = 50, .min_time = 0.5, .max_time = 10},
};

static const char summary[] = "Times topk_select and checks each timed result against the reference backend.\n\n";

static const char footer[] =
    "\n"
    "Columns: median/min/max microseconds per call; gbps = input bytes (batch x vocab x element size)\n"
    "/ median; read_floor_us = median time of an OpenMP vectorised sum over the same bytes with the\n"
    "same threads (host backends), or with --device-pointers of a device-to-device copy of the rows\n"
    "(omp_target_memcpy, synchronous like the call); bw_fraction = read_floor_us / median_us; max_abs_diff,\n"
    "indices_equal and values_equal compare with one reference-backend call on the same data;\n"
    "prof_* are --profile's stages (empty without it; 0 = the backend does not measure that stage).\n"
    "Exit status: 0 all cases verified, 1 a result differed from the reference, a call failed or\n"
    "the plot could not be drawn, 2 bad flags or an unreadable --input file.\n";

/* --backend LIST: each --backend replaces the list before it. */
static bool parse_backends(void *field, const char *text, char *why, size_t size)
{
    options *o = field;
    o->backend_count = 0;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *name = copy, *next; name; name = next) {
        next = strchr(name, ',');
        if (next) *next++ = 0;
        int found = -1;
        for (int b = TOPK_BACKEND_AUTO; b <= TOPK_BACKEND_REFERENCE; b++)
            if (!strcmp(name, topk_backend_name((topk_backend)b))) found = b;
        if (found < 0) {
            snprintf(why, size, "expected auto, cpu, offload or reference (comma-separated), not %s", name);
            return false;
        }
        if (o->backend_count == MAX_BACKENDS) {
            snprintf(why, size, "lists more than %d backends", MAX_BACKENDS);
            return false;
        }
        o->backends[o->backend_count++] = (topk_backend)found;
    }
    return true;
}

/* --from CSV: each one adds a file. */
static bool add_from(void *field, const char *text, char *why, size_t size)
{
    options *o = field;
    if (o->from_count == MAX_FROM) {
        snprintf(why, size, "more than %d --from files", MAX_FROM);
        return false;
    }
    o->from[o->from_count++] = text;
    return true;
}

/* --matrix's choices and their help: each name with its count of cases, then what they hold. */
static void describe_matrices(const char **names, char *help, size_t size)
{
    size_t n = (size_t)snprintf(help, size, "(cases) ");
    names[0] = NULL;
    for (size_t i = 0; matrix_name(i) && i + 1 < MAX_MATRICES; i++) {
        bench_case *cases;
        size_t count = matrix_cases(matrix_name(i), &cases);
        free(cases);
        names[i] = matrix_name(i);
        names[i + 1] = NULL;
        if (n < size) n += (size_t)snprintf(help + n, size - n, "%s%s (%zu)", i ? ", " : "", names[i], count);
    }
    if (n < size)
        snprintf(help + n, size - n, "\n"
                 "seeds: nanochat's decode step B 1-32 x V 50304 x k 50/100/200 bf16, then the\n"
                 "foundation shapes; llm: V 32000-262144 x B 1-256, k 50 bf16; small-vocab:\n"
                 "B 4096 x V 1024-4096; decode: B 1-32 x four vocabs x k 50/200 x bf16/fp32");
}

/* The flags' cross-checks, which the table cannot see. */
static void check_options(const flag_table *t, const options *o)
{
    bool shape_given = flag_given(t, "--batch") || flag_given(t, "--vocab") || flag_given(t, "--stride");
    if (o->matrix && (shape_given || flag_given(t, "--top-k") || o->dtype_given))
        flags_fail(t, "--matrix replaces --batch, --vocab, --top-k, --dtype and --stride");
    if (o->input && (o->matrix || shape_given))
        flags_fail(t, "--input takes batch and vocab from the file: drop --matrix, --batch, --vocab and --stride");
    if (o->dump && (o->matrix || o->input))
        flags_fail(t, "--dump writes one seeded shape's input: give --batch etc.");
    if (o->from_count && !o->plot) flags_fail(t, "--from goes with --plot");
    if (o->autotune && o->backend_count != 1)
        flags_fail(t, "--autotune tunes one backend: give --backend cpu or offload");
    if (o->autotune && (o->input || o->profile || o->plot))
        flags_fail(t, "--autotune goes with neither --input, --profile nor --plot");
    if (!o->matrix && !o->input && o->single.k > o->single.vocab) flags_fail(t, "--top-k is larger than --vocab");
    if (o->stride && o->stride < o->single.vocab) flags_fail(t, "--stride is smaller than --vocab");
}

static options parse_options(int argc, char **argv)
{
    options o = defaults;
    int dtype = TOPK_F32, matrix = -1;
    bool smallest = false, device_pointers = false, csv = false, json = false;
    const char *matrices[MAX_MATRICES];
    char matrix_help[1024];
    describe_matrices(matrices, matrix_help, sizeof matrix_help);
    const int64_t many = INT64_MAX;
    flag list[] = {
        {NULL, .help = "What to select from: one shape (defaults 1 x 50304, k 50, fp32) ..."},
        {"--batch", FLAG_INT64, &o.single.batch, "N", .min = 1, .max = many, .help = "rows"},
        {"--vocab", FLAG_INT64, &o.single.vocab, "N", .min = 1, .max = many,
         .help = "columns selected from in each row"},
        {"--top-k", FLAG_INT64, &o.single.k, "N", .min = 1, .max = many,
         .help = "entries kept per row, 1..vocab (also with --input)"},
        {"--dtype", FLAG_CHOICE, &dtype, "T", .choices = dtype_choices,
         .help = "fp32, fp16 or bf16 (with --input: must match the file; bf16 reads 16-bit\n"
                 "integer data as bfloat16 bits, since NumPy has no bfloat16)"},
        {"--stride", FLAG_INT64, &o.stride, "N", .min = 1, .max = many,
         .help = "elements from one row to the next, >= vocab (default vocab); the padding\n"
                 "holds NaN and -inf, which would win if a backend read it"},
        {NULL, .help = "... or a named matrix of shapes (each shape once; excludes the five flags above):"},
        {"--matrix", FLAG_CHOICE, &matrix, "NAME", .choices = matrices, .help = matrix_help},
        {"--list", FLAG_ON, &o.list, .help = "print the cases (batch vocab k dtype, one a line) and stop"},
        {NULL, .help = "... or real logits:"},
        {"--input", FLAG_STRING, &o.input, "FILE.npy",
         .help = "a 2-D C-order .npy matrix (numpy.save): '<f4' fp32, '<f2' fp16, or bf16\n"
                 "bits as '<i2'/'<u2'/'|V2' with --dtype bf16; batch and vocab are its shape"},
        {NULL, .help = "What runs:"},
        {"--backend", FLAG_CUSTOM, &o, "LIST", .parse = parse_backends,
         .help = "comma-separated: auto, cpu, offload, reference (default auto), each timed\n"
                 "on the same data; TOPK_BACKEND must be unset"},
        {"--threads", FLAG_INT, &o.threads, "N", .min = 1, .max = 4096,
         .help = "TOPK_PARAM_THREADS for cpu, and the read floor's thread count\n"
                 "(default: the library's choice: TOPK_THREADS, a tuning table, OpenMP's)"},
        {"--largest", FLAG_OFF, &smallest, .help = "select the k largest (the default)"},
        {"--smallest", FLAG_ON, &smallest, .help = "select the k smallest instead"},
        {"--device-pointers", FLAG_ON, &device_pointers,
         .help = "input and outputs in GPU memory (omp_target_alloc on the default device),\n"
                 "passed with TOPK_DEVICE_POINTERS; needs a device and the offload backend"},
        {NULL, .help = "Input data:"},
        {"--seed", FLAG_INT64, &o.seed, "N", .min = 0, .max = many, .show_default = true,
         .help = "seed of the normal random input; bench/matrix_data.c gives the recipe,\n"
                 "which bench/peers/common.py repeats bit for bit"},
        {"--dump", FLAG_STRING, &o.dump, "FILE",
         .help = "write the raw input matrix (batch x stride elements) to FILE and stop"},
        {NULL, .help = "Timing:"},
        {"--warmup", FLAG_INT, &o.timing.warmup, "N", .min = 0, .max = 1000000, .show_default = true,
         .help = "untimed calls first"},
        {"--iters", FLAG_INT, &o.timing.iters, "N", .min = 1, .max = 100000000, .show_default = true,
         .help = "at least N timed calls ..."},
        {"--min-time", FLAG_DOUBLE, &o.timing.min_time, "S", .least = 0, .most = INFINITY, .show_default = true,
         .help = "... and at least S seconds of them, so fast cases get many ..."},
        {"--max-time", FLAG_DOUBLE, &o.timing.max_time, "S", .least = 0, .most = INFINITY, .show_default = true,
         .help = "... unless S seconds pass first, with never fewer than 3 (0: no limit);\n"
                 "warmup stops at S too"},
        {NULL, .help = "Extras:"},
        {"--profile", FLAG_ON, &o.profile,
         .help = "after timing, repeat the calls with TOPK_PARAM_PROFILE on and report the\n"
                 "median of each stage the backend measured (validate, tuning, cpu select and\n"
                 "merge; offload plan, launch+wait, copies, kernel select and merge) and the\n"
                 "knobs it chose"},
        {"--autotune", FLAG_STRING, &o.autotune, "FILE",
         .help = "sweep the backend's knobs (cpu: threads, chunk; offload: teams per row) on\n"
                 "the cases and write every measurement to FILE, a tuning table\n"
                 "(tuning/README.md); use it with TOPK_TUNING_FILE=FILE or copy it into tuning/"},
        {"--plot", FLAG_STRING, &o.plot, "FILE.png",
         .help = "draw median us against batch and against vocab, per backend (gnuplot)"},
        {"--from", FLAG_CUSTOM, &o, "CSV", .parse = add_from,
         .help = "with --plot: plot this CSV (topk-bench's or a peer's, e.g. torch_topk.py's)\n"
                 "instead of running anything; repeat it to merge several"},
        {NULL, .help = "Output:"},
        {"--csv", FLAG_ON, &csv, .help = "a header line, then one line per case and backend"},
        {"--json", FLAG_ON, &json,
         .help = "a JSON array of objects with the CSV's fields\n"
                 "(default: a readable table; with --csv or --json the banner goes to stderr,\n"
                 "and progress always does, once a run has lasted a second)"},
    };
    flag_table table = {"topk-bench", summary, footer, list, sizeof list / sizeof list[0]};
    flags_parse(&table, argc, argv);
    if (csv && json) flags_fail(&table, "--csv and --json exclude each other");
    o.format = csv ? REPORT_CSV : json ? REPORT_JSON : REPORT_TABLE;
    o.single.dtype = (topk_dtype)dtype;
    o.dtype_given = flag_given(&table, "--dtype");
    o.matrix = matrix >= 0 ? matrices[matrix] : NULL;
    o.flags = (smallest ? TOPK_SMALLEST : 0) | (device_pointers ? TOPK_DEVICE_POINTERS : 0);
    check_options(&table, &o);
    return o;
}

static void dump_input(const options *o)
{
    int64_t stride = o->stride ? o->stride : o->single.vocab;
    size_t bytes = (size_t)(o->single.batch * stride) * (size_t)topk_dtype_size(o->single.dtype);
    void *data = bench_alloc_aligned(bytes);
    matrix_fill(data, o->single.dtype, o->single.batch, o->single.vocab, stride, (uint64_t)o->seed);
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

static topk_ctx *create_ctx(topk_backend backend)
{
    topk_ctx *ctx;
    topk_status s = topk_ctx_create(&ctx, backend);
    if (s != TOPK_OK) {
        fprintf(stderr, "topk-bench: cannot create a context for the %s backend: %s\n", topk_backend_name(backend),
                topk_strerror(s));
        if (s == TOPK_ERR_BAD_ENV && getenv("TOPK_TUNING_FILE")) {
            char message[512];
            if (topk_tuning_check(getenv("TOPK_TUNING_FILE"), message, sizeof message) != TOPK_OK)
                fprintf(stderr, "topk-bench: TOPK_TUNING_FILE: %s\n", message);
        }
        exit(1);
    }
    return ctx;
}

/* --plot --from: draws the CSV files and stops. */
static int plot_files(const options *o)
{
    plot_point *points = NULL;
    size_t count = 0;
    char message[4400];
    for (int i = 0; i < o->from_count; i++) {
        if (!plot_read_csv(o->from[i], &points, &count, message, sizeof message)) {
            fprintf(stderr, "topk-bench: --from %s\n", message);
            return 2;
        }
    }
    bool ok = plot_png(o->plot, "topk: median us per call", points, count, message, sizeof message);
    free(points);
    if (!ok) {
        fprintf(stderr, "topk-bench: %s\n", message);
        return 1;
    }
    fprintf(stderr, "topk-bench: drew %zu points into %s\n", count, o->plot);
    return 0;
}

/* The cases to run, and for --input the file's matrix (else data->data stays NULL). */
static size_t cases_of(options *o, bench_case **cases, npy_matrix *file)
{
    *file = (npy_matrix){0};
    if (o->matrix) return matrix_cases(o->matrix, cases);
    *cases = &o->single;
    if (!o->input) return 1;
    char message[4400];
    bool want_bf16 = o->dtype_given && o->single.dtype == TOPK_BF16;
    if (!npy_read(o->input, want_bf16, file, message, sizeof message)) {
        fprintf(stderr, "topk-bench: --input %s\n", message);
        exit(2);
    }
    if (o->dtype_given && o->single.dtype != file->dtype) {
        fprintf(stderr, "topk-bench: --input %s holds %s, not the --dtype %s asked for\n", o->input,
                dtype_name(file->dtype), dtype_name(o->single.dtype));
        exit(2);
    }
    o->single = (bench_case){file->rows, file->cols, o->single.k, file->dtype};
    if (o->single.k > o->single.vocab) {
        fprintf(stderr, "topk-bench: --top-k is larger than the file's vocab (its second dimension)\ntry topk-bench --help\n");
        exit(2);
    }
    return 1;
}

static void list_cases(const bench_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++)
        printf("%lld %lld %lld %s\n", (long long)cases[i].batch, (long long)cases[i].vocab, (long long)cases[i].k,
               dtype_name(cases[i].dtype));
}

/* Checks what the backends can do with the flags; exits when they cannot. */
static void check_backends(const options *o, topk_ctx *const ctx[])
{
    for (int b = 0; b < o->backend_count; b++) {
        topk_backend backend = topk_ctx_backend(ctx[b]);
        if ((o->flags & TOPK_DEVICE_POINTERS) && backend != TOPK_BACKEND_OFFLOAD) {
            fprintf(stderr, "topk-bench: --device-pointers needs the offload backend; a context runs %s\n",
                    topk_backend_name(backend));
            exit(1);
        }
        if (o->threads && topk_ctx_set_param(ctx[b], TOPK_PARAM_THREADS, o->threads) != TOPK_OK) {
            fprintf(stderr, "topk-bench: the library refused --threads %d\n", o->threads);
            exit(1);
        }
    }
    if (o->flags & TOPK_DEVICE_POINTERS) {
        const char *why_not = device_memory_unavailable();
        if (why_not) {
            fprintf(stderr, "topk-bench: --device-pointers: %s\n", why_not);
            exit(1);
        }
    }
}

/* The command line, for the tuning table's comments. */
static void command_line(int argc, char **argv, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < argc && n + 1 < size; i++) {
        int w = snprintf(out + n, size - n, "%s%s", i ? " " : "", i ? argv[i] : "topk-bench");
        if (w < 0) break;
        n += (size_t)w;
    }
}

int main(int argc, char **argv)
{
    options o = parse_options(argc, argv);
    if (o.dump) {
        dump_input(&o);
        return 0;
    }
    if (o.from_count) return plot_files(&o);
    bench_case *cases;
    npy_matrix file;
    size_t count = cases_of(&o, &cases, &file);
    if (o.list) {
        list_cases(cases, count);
        return 0;
    }
    /* TOPK_BACKEND overrides every context's backend, the reference oracle's too: refuse rather than
     * check a backend against itself. */
    const char *env_backend = getenv("TOPK_BACKEND");
    if (env_backend && *env_backend) {
        fprintf(stderr, "topk-bench: TOPK_BACKEND is set; unset it and choose with --backend\n");
        return 2;
    }
    /* While tuning, a knob left at 0 must mean the built-in heuristic, not an older table's choice. */
    if (o.autotune) setenv("TOPK_TUNING_FILE", "off", 1);

    topk_ctx *ctx[MAX_BACKENDS], *reference = create_ctx(TOPK_BACKEND_REFERENCE);
    for (int b = 0; b < o.backend_count; b++) ctx[b] = create_ctx(o.backends[b]);
    check_backends(&o, ctx);
    int threads = o.threads ? o.threads : omp_get_max_threads();
    const char *order = o.flags & TOPK_SMALLEST ? "smallest" : "largest";
    fprintf(o.format == REPORT_TABLE ? stdout : stderr,
            "topk-bench: libtopk %s, %d threads, %s, %s first, per case %d warmup + at least %d calls and %g s, "
            "at most %g s\n",
            topk_version_string(), threads, o.input ? o.input : "seeded normal data", order, o.timing.warmup,
            o.timing.iters, o.timing.min_time, o.timing.max_time);

    if (o.autotune) {
        char command[2048];
        command_line(argc, argv, command, sizeof command);
        autotune_job job = {o.autotune, ctx[0], reference, cases, count, (uint64_t)o.seed, o.flags, o.timing, command};
        int status = autotune(&job);
        topk_ctx_free(ctx[0]);
        topk_ctx_free(reference);
        if (o.matrix) free(cases);
        return status;
    }

    report_begin(o.format, o.profile);
    plot_point *points = NULL;
    size_t point_count = 0;
    int failures = 0;
    double started = bench_now();
    for (size_t i = 0; i < count; i++) {
        const bench_case *shape = &cases[i];
        if (bench_now() - started > 1) /* progress, once the run is long enough to want it */
            fprintf(stderr, "topk-bench: [%zu/%zu] %lld x %lld, k %lld, %s (%.0f s so far)\n", i + 1, count,
                    (long long)shape->batch, (long long)shape->vocab, (long long)shape->k, dtype_name(shape->dtype),
                    bench_now() - started);
        case_data d;
        case_data_init(&d, shape, o.stride, file.data, (uint64_t)o.seed, o.flags, reference);
        for (int b = 0; b < o.backend_count; b++) {
            topk_backend backend = topk_ctx_backend(ctx[b]);
            int floor_threads = backend == TOPK_BACKEND_OFFLOAD ? 0 : threads;
            bench_row row = {topk_backend_name(backend), o.input ? o.input : "seeded", *shape, d.stride,
                             o.flags & TOPK_SMALLEST, threads, case_measure(ctx[b], &d, o.timing, o.profile, floor_threads)};
            report_row(o.format, &row);
            if (!row.r.indices_equal || !row.r.values_equal) {
                fprintf(stderr, "topk-bench: %s backend, %lld x %lld, k %lld, %s: %s differ from the reference "
                                "backend's\n", row.backend, (long long)shape->batch, (long long)shape->vocab,
                        (long long)shape->k, dtype_name(shape->dtype), row.r.indices_equal ? "value bits" : "indices");
                failures++;
            }
            points = bench_realloc(points, (point_count + 1) * sizeof *points);
            plot_point *p = &points[point_count++];
            *p = (plot_point){.batch = shape->batch, .vocab = shape->vocab, .k = shape->k, .us = row.r.time.median_s * 1e6};
            snprintf(p->source, sizeof p->source, "libtopk %s", row.backend);
            snprintf(p->dtype, sizeof p->dtype, "%s", dtype_name(shape->dtype));
        }
        case_data_free(&d);
    }
    report_end(o.format);
    int status = failures ? 1 : 0;
    if (failures)
        fprintf(stderr, "topk-bench: %d of %zu measurements FAILED the check against the reference\n", failures,
                count * (size_t)o.backend_count);
    if (o.plot) {
        char message[4400], title[256];
        snprintf(title, sizeof title, "topk-bench %s: median us per call (%s first)",
                 o.matrix ? o.matrix : o.input ? o.input : "one shape", order);
        if (plot_png(o.plot, title, points, point_count, message, sizeof message))
            fprintf(stderr, "topk-bench: drew %s\n", o.plot);
        else {
            fprintf(stderr, "topk-bench: %s\n", message);
            status = 1;
        }
    }
    free(points);
    free(file.data);
    if (o.matrix) free(cases);
    for (int b = 0; b < o.backend_count; b++) topk_ctx_free(ctx[b]);
    topk_ctx_free(reference);
    return status;
}
