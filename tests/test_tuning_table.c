/*
 * Tuning tables (src/tuning.c, format in tuning/README.md): the parser accepts a good table and names
 * the line and the fault of every malformed one, refuses other versions; the lookup picks the fastest
 * value of the nearest shape, and nothing when no shape is near; the tables compiled into the library
 * parse; and a table that forces odd splits never changes a result, bit for bit against the oracle.
 * The parser is compiled into this test (it is hidden inside the library); the end-to-end tests go
 * through the public API with TOPK_TUNING_FILE.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gen.h"
#include "oracle.h"
#include "tuning.h"

/* tuning.c asks the backend for a GPU's name, which the library keeps hidden: this copy of tuning.c
 * gets the name a library without a GPU gives. */
const char *topk_gpu_device_name(topk_gpu *gpu)
{
    (void)gpu;
    return "unknown";
}

static topk_status parse(const char *text, const char *backend, const char *device, topk_tuning **t, char *msg,
                         size_t size)
{
    return topk_tuning_parse(text, strlen(text), "t.txt", backend, device, t, msg, size);
}

static int64_t choose(const topk_tuning *t, topk_param param, topk_dtype dtype, int64_t batch, int64_t vocab,
                      int64_t k)
{
    topk_problem p = {.dtype = dtype, .batch = batch, .vocab = vocab, .row_stride = vocab, .k = k};
    return topk_tuning_choose(t, param, &p);
}

static const char good[] = "# libtopk tuning v1\n"
                           "# a comment, then a blank line\n"
                           "\n"
                           "cpu devA bf16 1 50304 50 threads 1 9.5   # trailing comment\n"
                           "cpu devA bf16 1 50304 50 threads 2 7.25\n"
                           "cpu devA bf16 32 50304 50 threads 1 200\n"
                           "cpu devA bf16 32 50304 50 threads 2 120\n"
                           "cpu devA bf16 1 50304 50 chunk 16384 7.0\n"
                           "cpu devA bf16 1 50304 50 chunk 65536 8.0\n"
                           "cpu devB bf16 1 50304 50 threads 3 1.0\n"
                           "cpu * fp32 1 128256 50 threads 1 12\n"
                           "\toffload devA bf16 1 50304 50 teams_per_row 8 40\r\n"
                           "offload devA bf16 1 50304 50 teams_per_row 16 30\n"
                           "offload devA bf16 256 151936 50 shrink_at 200 140\n"
                           "offload devA bf16 256 151936 50 shrink_at 4096 180\n";

Test(tuning_table, good_table_keeps_the_rows_of_its_backend_and_device)
{
    topk_tuning *t = NULL;
    char msg[256];
    cr_assert_eq(parse(good, "cpu", "devA", &t, msg, sizeof msg), TOPK_OK, "%s", msg);
    cr_assert_str_empty(msg);
    cr_assert_eq(choose(t, TOPK_PARAM_THREADS, TOPK_BF16, 1, 50304, 50), omp_get_max_threads() >= 2 ? 2 : 1,
                 "the faster of the two thread counts measured on the very shape");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 1, 50304, 50), 16384);
    cr_assert_eq(choose(t, TOPK_PARAM_THREADS, TOPK_F32, 1, 128256, 50), 1, "device * matches any device");
    cr_assert_eq(choose(t, TOPK_PARAM_TEAMS_PER_ROW, TOPK_BF16, 1, 50304, 50), 0, "no offload rows kept for cpu");
    topk_tuning_free(t);

    cr_assert_eq(parse(good, "offload", "devA", &t, msg, sizeof msg), TOPK_OK, "%s", msg);
    cr_assert_eq(choose(t, TOPK_PARAM_TEAMS_PER_ROW, TOPK_BF16, 1, 50304, 50), 16);
    cr_assert_eq(choose(t, TOPK_PARAM_TEAMS_PER_ROW, TOPK_BF16, 4, 50304, 50), 4,
                 "another batch keeps the measured teams in flight: 16 teams for 1 row are 4 a row for 4 rows");
    cr_assert_eq(choose(t, TOPK_PARAM_TEAMS_PER_ROW, TOPK_BF16, 2, 50304, 25), 8);
    cr_assert_eq(choose(t, TOPK_PARAM_THREADS, TOPK_BF16, 1, 50304, 50), 0);
    cr_assert_eq(choose(t, TOPK_PARAM_SHRINK_AT, TOPK_BF16, 256, 151936, 50), 200, "the faster shrink_at");
    cr_assert_eq(choose(t, TOPK_PARAM_SHRINK_AT, TOPK_BF16, 64, 151936, 50), 200, "kept as measured at another batch");
    topk_tuning_free(t);

    cr_assert_eq(parse(good, "cpu", "devB", &t, msg, sizeof msg), TOPK_OK);
    cr_assert_eq(choose(t, TOPK_PARAM_THREADS, TOPK_BF16, 1, 50304, 50), omp_get_max_threads() >= 3 ? 3 : omp_get_max_threads(),
                 "a measured thread count never exceeds what the process was given");
    topk_tuning_free(t);
    cr_assert_eq(parse(good, "cpu", NULL, NULL, msg, sizeof msg), TOPK_OK, "check only");
}

Test(tuning_table, nearest_shape)
{
    static const char table[] = "# libtopk tuning v1\n"
                                "cpu d bf16 1 50304 50 chunk 4096 10\n"
                                "cpu d bf16 32 50304 50 chunk 8192 10\n"
                                "cpu d bf16 4 50304 50 chunk 16384 10\n"  /* 2 octaves from 1 and from 16 */
                                "cpu d bf16 16 50304 50 chunk 65536 10\n"
                                "cpu d fp32 1 50304 50 chunk 32768 10\n";
    topk_tuning *t = NULL;
    char msg[256];
    cr_assert_eq(parse(table, "cpu", "d", &t, msg, sizeof msg), TOPK_OK, "%s", msg);
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 1, 50304, 50), 4096, "the exact shape");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 2, 50304, 50), 4096, "1 octave from B=1 and from B=4: the first");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 3, 50304, 50), 16384, "log2 3 is nearer 2 than 0");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 20, 50304, 50), 65536);
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 32, 50304, 60), 8192, "k is a dimension too");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 1, 100000, 100), 4096, "~2 octaves: still near");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 1, 16777216, 2048), 0, "too far: the built-in heuristic");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 128, 50304, 50), 8192, "2 octaves from B=32: near");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_BF16, 256, 50304, 50), 0, "3 octaves from B=32: too far");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_F16, 1, 50304, 50), 0, "another dtype never matches");
    cr_assert_eq(choose(t, TOPK_PARAM_CHUNK, TOPK_F32, 1, 50304, 50), 32768);
    cr_assert_eq(choose(NULL, TOPK_PARAM_CHUNK, TOPK_F32, 1, 50304, 50), 0, "no table");
    topk_tuning_free(t);
}

/* One malformed table: the fault, the line it must be reported on, and words the message must hold. */
typedef struct bad_table {
    const char *text;
    int line;
    const char *says;
} bad_table;

static bad_table bad_tables[] = {
    {"", 0, "empty"},
    {"cpu d bf16 1 50304 50 threads 1 9\n", 1, "not a libtopk tuning table"},
    {"# libtopk tuning v2\ncpu d bf16 1 50304 50 threads 1 9\n", 1, "version 2, but this library reads version 1"},
    {"# libtopk tuning v0\n", 1, "version 0"},
    {"# libtopk tuning vX\n", 1, "not a number"},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1\n", 2, "expected 9 columns"},
    {"# libtopk tuning v1\n\ncpu d bf16 1 50304 50 threads 1 9 7\n", 3, "got more than 9"},
    {"# libtopk tuning v1\ngpu d bf16 1 50304 50 threads 1 9\n", 2, "backend \"gpu\""},
    {"# libtopk tuning v1\ncpu a/b bf16 1 50304 50 threads 1 9\n", 2, "device \"a/b\""},
    {"# libtopk tuning v1\ncpu d fp64 1 50304 50 threads 1 9\n", 2, "dtype \"fp64\""},
    {"# libtopk tuning v1\ncpu d bf16 0 50304 50 threads 1 9\n", 2, "batch \"0\""},
    {"# libtopk tuning v1\ncpu d bf16 -1 50304 50 threads 1 9\n", 2, "batch \"-1\""},
    {"# libtopk tuning v1\ncpu d bf16 1 5e4 50 threads 1 9\n", 2, "vocab \"5e4\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50 51 threads 1 9\n", 2, "k \"51\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 warps 1 9\n", 2, "param \"warps\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 teams_per_row 1 9\n", 2, "not a knob of the cpu backend"},
    {"# libtopk tuning v1\noffload d bf16 1 50304 50 chunk 4096 9\n", 2, "not a knob of the offload backend"},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 0 9\n", 2, "value \"0\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 5000 9\n", 2, "value \"5000\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1 0\n", 2, "us \"0\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1 nan\n", 2, "us \"nan\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1 -3\n", 2, "us \"-3\""},
    {"# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1 9us\n", 2, "us \"9us\""},
};

/* Criterion may run a test in a fresh process, where the parent's pointers mean nothing: the
 * parameter is an index into bad_tables. */
static int bad_table_index[sizeof bad_tables / sizeof bad_tables[0]];

ParameterizedTestParameters(tuning_table, malformed_line)
{
    for (int i = 0; i < (int)(sizeof bad_table_index / sizeof bad_table_index[0]); i++) bad_table_index[i] = i;
    return cr_make_param_array(int, bad_table_index, sizeof bad_table_index / sizeof bad_table_index[0]);
}

ParameterizedTest(int *index, tuning_table, malformed_line)
{
    const bad_table *b = &bad_tables[*index];
    char msg[512], where[32];
    topk_tuning *t = (topk_tuning *)&msg; /* must come back NULL */
    cr_assert_eq(parse(b->text, "cpu", "d", &t, msg, sizeof msg), TOPK_ERR_BAD_ENV, "accepted: %s", b->text);
    cr_assert_null(t);
    if (b->line) snprintf(where, sizeof where, "t.txt:%d: ", b->line);
    else snprintf(where, sizeof where, "t.txt: ");
    cr_assert(strncmp(msg, where, strlen(where)) == 0, "message \"%s\" should start with \"%s\"", msg, where);
    cr_assert(strstr(msg, b->says), "message \"%s\" should say \"%s\"", msg, b->says);
}

Test(tuning_table, long_line_and_nul_byte)
{
    char text[2200] = "# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1 9 #";
    memset(text + strlen(text), 'x', 1500);
    char msg[256];
    cr_assert_eq(parse(text, "cpu", "d", NULL, msg, sizeof msg), TOPK_ERR_BAD_ENV);
    cr_assert(strstr(msg, "t.txt:2: line longer than"), "%s", msg);
    static const char with_nul[] = "# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1 9\0\n";
    cr_assert_eq(topk_tuning_parse(with_nul, sizeof with_nul - 1, "t.txt", "cpu", "d", NULL, msg, sizeof msg),
                 TOPK_ERR_BAD_ENV);
    cr_assert(strstr(msg, "t.txt:2: a NUL byte"), "%s", msg);
}

Test(tuning_table, builtin_tables_parse)
{
    int n = 0;
    for (const topk_builtin_table *b = topk_builtin_tables; b->text; b++, n++) {
        char msg[512];
        cr_assert_eq(topk_tuning_parse(b->text, strlen(b->text), b->name, "cpu", NULL, NULL, msg, sizeof msg),
                     TOPK_OK, "%s", msg);
    }
    cr_log_info("%d built-in tables", n);
}

Test(tuning_table, device_names)
{
    char name[64];
    topk_tuning_device_name(name, sizeof name, "NVIDIA H200 ");
    cr_assert_str_eq(name, "NVIDIA-H200");
    topk_tuning_device_name(name, sizeof name, "  AMD EPYC 7B13 64-Core Processor");
    cr_assert_str_eq(name, "AMD-EPYC-7B13-64-Core-Processor");
    topk_tuning_device_name(name, sizeof name, "(R)");
    cr_assert_str_eq(name, "R");
    topk_tuning_device_name(name, sizeof name, "");
    cr_assert_str_eq(name, "unknown");
    topk_tuning_cpu_name(name, sizeof name);
    cr_assert(strstr(name, "-x"), "%s", name);
}

/* Writes text to a fresh temporary file; returns its path (static storage). */
static const char *temp_table(const char *text)
{
    static char path[] = "/tmp/topk-tuning-XXXXXX";
    strcpy(path, "/tmp/topk-tuning-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert(f && fputs(text, f) >= 0 && fclose(f) == 0);
    return path;
}

Test(tuning_table, public_api_and_environment)
{
    char msg[256];
    const char *path = temp_table(good);
    cr_assert_eq(topk_tuning_check(path, msg, sizeof msg), TOPK_OK, "%s", msg);
    setenv("TOPK_TUNING_FILE", path, 1);
    topk_ctx *ctx;
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_CPU), TOPK_OK);
    cr_assert(strstr(topk_ctx_tuning_device(ctx), "-x"), "cpu device name: %s", topk_ctx_tuning_device(ctx));
    topk_ctx_free(ctx);
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_REFERENCE), TOPK_OK);
    cr_assert_str_empty(topk_ctx_tuning_device(ctx));
    topk_ctx_free(ctx);
    remove(path);

    path = temp_table("# libtopk tuning v1\ncpu d bf16 1 50304 50 threads 1\n");
    cr_assert_eq(topk_tuning_check(path, msg, sizeof msg), TOPK_ERR_BAD_ENV);
    cr_assert(strstr(msg, ":2: expected 9 columns"), "%s", msg);
    cr_assert_eq(topk_tuning_check(path, NULL, 0), TOPK_ERR_BAD_ENV);
    setenv("TOPK_TUNING_FILE", path, 1);
    ctx = (topk_ctx *)&msg;
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_CPU), TOPK_ERR_BAD_ENV, "a malformed table fails loudly");
    cr_assert_null(ctx);
    remove(path);

    setenv("TOPK_TUNING_FILE", "/nonexistent/table.txt", 1);
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_CPU), TOPK_ERR_BAD_ENV, "a missing table fails loudly");
    cr_assert_eq(topk_tuning_check("/nonexistent/table.txt", msg, sizeof msg), TOPK_ERR_BAD_ENV);
    cr_assert(strstr(msg, "cannot open"), "%s", msg);
    setenv("TOPK_TUNING_FILE", "off", 1);
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_CPU), TOPK_OK);
    topk_ctx_free(ctx);
    cr_assert_eq(topk_tuning_check(NULL, msg, sizeof msg), TOPK_ERR_NULL_POINTER);
}

/* A table for any device ("*") that cuts rows into many small segments on many threads, teams into odd
 * numbers, and has the GPU teams raise their floor at every wave (shrink_at 1): the results must still be
 * the oracle's, and the profile shows the table was used. */
static const char forcing[] = "# libtopk tuning v1\n"
                              "cpu * fp32 1 70001 50 threads 3 1\n"
                              "cpu * fp16 1 70001 50 threads 3 1\n"
                              "cpu * bf16 1 70001 50 threads 3 1\n"
                              "cpu * fp32 1 70001 50 chunk 1000 1\n"
                              "cpu * fp16 1 70001 50 chunk 1000 1\n"
                              "cpu * bf16 1 70001 50 chunk 1000 1\n"
                              "offload * fp32 1 70001 50 teams_per_row 7 1\n"
                              "offload * fp16 1 70001 50 teams_per_row 7 1\n"
                              "offload * bf16 1 70001 50 teams_per_row 7 1\n"
                              "offload * fp32 1 70001 50 shrink_at 1 1\n"
                              "offload * fp16 1 70001 50 shrink_at 1 1\n"
                              "offload * bf16 1 70001 50 shrink_at 1 1\n";

static void never_changes_results(topk_backend backend)
{
    const char *path = temp_table(forcing);
    setenv("TOPK_TUNING_FILE", path, 1);
    topk_ctx *ctx = open_backend_or_skip(backend), *reference = open_backend_or_skip(TOPK_BACKEND_REFERENCE);
    remove(path);
    cr_assert_eq(topk_ctx_set_param(ctx, TOPK_PARAM_PROFILE, 1), TOPK_OK);
    const int64_t ks[] = {1, 7, 50, 64, 300};
    for (int d = 0; d < 3; d++) {
        for (int64_t batch = 1; batch <= 2; batch++) {
            int64_t vocab = 70001, stride = vocab + 3;
            void *input = random_matrix(all_dtypes[d], batch, vocab, stride, 77 + (uint64_t)d);
            for (int smallest = 0; smallest < 2; smallest++) {
                select_case c = {backend, all_dtypes[d], batch, vocab, stride, 0, smallest, "random_matrix, forcing table"};
                selection oracle = oracle_selection(&c, input, true);
                check_each_k(ctx, reference, &c, input, &oracle, ks, sizeof ks / sizeof ks[0]);
                selection_free(&oracle);
            }
            /* The forcing rows are for k = 50; farther k (300) fall back to the heuristics. */
            select_case c = {backend, all_dtypes[d], batch, vocab, stride, 50, false, "random_matrix, forcing table"};
            selection got = run_select(ctx, &c, input);
            selection_free(&got);
            free(input);
            topk_stage_times t;
            cr_assert_eq(topk_ctx_last_profile(ctx, &t), TOPK_OK);
            if (backend == TOPK_BACKEND_CPU) {
                cr_assert_eq(t.threads, omp_get_max_threads() >= 3 ? 3 : omp_get_max_threads(), "threads from the table");
                cr_assert_eq(t.chunk, 1000, "chunk from the table");
            } else {
                /* measured at batch 1: the table's 7 teams stay in flight, so 3 a row for 2 rows */
                cr_assert_eq(t.teams_per_row, batch == 1 ? 7 : 7 / batch, "teams per row from the table");
            }
        }
    }
    topk_ctx_free(ctx);
    topk_ctx_free(reference);
}

/* Named suite/offload like every offload test, so that the TOPK_OFFLOAD_HOST=1 run of ctest picks it. */
Test(table_never_changes_results, cpu) { never_changes_results(TOPK_BACKEND_CPU); }
Test(table_never_changes_results, offload) { never_changes_results(TOPK_BACKEND_OFFLOAD); }

Test(tuning_table, profile_reports_stages)
{
    setenv("TOPK_TUNING_FILE", "off", 1);
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_CPU);
    topk_stage_times t;
    cr_assert_eq(topk_ctx_last_profile(ctx, &t), TOPK_ERR_BAD_PARAM, "profiling is off by default");
    cr_assert_eq(topk_ctx_set_param(ctx, TOPK_PARAM_PROFILE, 2), TOPK_ERR_BAD_PARAM);
    cr_assert_eq(topk_ctx_set_param(ctx, TOPK_PARAM_PROFILE, 1), TOPK_OK);
    cr_assert_eq(topk_ctx_last_profile(ctx, &t), TOPK_ERR_BAD_PARAM, "no profiled call yet");
    void *input = random_matrix(TOPK_F32, 4, 5000, 5000, 3);
    float values[4 * 10];
    int64_t indices[4 * 10];
    cr_assert_eq(topk_select(ctx, input, TOPK_F32, 4, 5000, 5000, 10, 0, values, indices), TOPK_OK);
    cr_assert_eq(topk_ctx_last_profile(ctx, &t), TOPK_OK);
    cr_assert(t.total_us > 0 && t.backend_us > 0 && t.cpu_select_us > 0, "total %g backend %g select %g", t.total_us,
              t.backend_us, t.cpu_select_us);
    cr_assert(t.total_us >= t.backend_us && t.backend_us >= t.cpu_select_us);
    cr_assert_eq(t.gpu_launch_wait_us, 0, "the cpu backend has no GPU stages");
    cr_assert_eq(topk_ctx_last_profile(ctx, NULL), TOPK_ERR_NULL_POINTER);
    cr_assert_eq(topk_ctx_last_profile(NULL, &t), TOPK_ERR_NULL_POINTER);
    free(input);
    topk_ctx_free(ctx);
    setenv("TOPK_PROFILE", "1", 1);
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_CPU), TOPK_OK);
    int64_t on;
    cr_assert_eq(topk_ctx_get_param(ctx, TOPK_PARAM_PROFILE, &on), TOPK_OK);
    cr_assert_eq(on, 1, "TOPK_PROFILE=1 turns it on");
    topk_ctx_free(ctx);
    setenv("TOPK_PROFILE", "yes", 1);
    cr_assert_eq(topk_ctx_create(&ctx, TOPK_BACKEND_CPU), TOPK_ERR_BAD_ENV);
}
