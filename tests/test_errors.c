/*
 * Every bad call gets its own status and writes nothing.
 *
 * topk_select's arguments are checked on every backend (validation happens before dispatch, but a
 * backend that reads or writes before it would still corrupt the caller's buffers). Outputs start as
 * a sentinel pattern and must come back byte for byte. Sizes that overflow 64-bit byte offsets are
 * passed with a tiny buffer: validation must reject them without touching memory.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen.h"

enum { B = 2, V = 8, K = 3, OUT_ELEMENTS = 64 };

/* One topk_select call and the status it must return. */
typedef struct bad_call {
    const char *what;
    topk_ctx *ctx;
    const void *input;
    topk_dtype dtype;
    int64_t batch, vocab, row_stride, k;
    unsigned flags;
    void *values;
    int64_t *indices;
    topk_status expected;
} bad_call;

static unsigned char values_out[OUT_ELEMENTS * 4];
static int64_t indices_out[OUT_ELEMENTS];

/* A sentinel that varies byte to byte, so a shifted or partial write is visible too. */
static void fill_sentinel(void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = (unsigned char)(0xC3 ^ (i * 37));
}

static void expect_status(const char *backend, bad_call call)
{
    unsigned char values_before[sizeof values_out], indices_before[sizeof indices_out];
    fill_sentinel(values_out, sizeof values_out);
    fill_sentinel(indices_out, sizeof indices_out);
    memcpy(values_before, values_out, sizeof values_out);
    memcpy(indices_before, indices_out, sizeof indices_out);
    topk_status s = topk_select(call.ctx, call.input, call.dtype, call.batch, call.vocab, call.row_stride, call.k,
                                call.flags, call.values, call.indices);
    cr_assert(s == call.expected, "%s, %s: returned \"%s\", expected \"%s\"", backend, call.what, topk_strerror(s),
              topk_strerror(call.expected));
    if (call.expected == TOPK_OK && call.k > 0) return; /* the valid call does write */
    cr_assert(memcmp(values_before, values_out, sizeof values_out) == 0, "%s, %s: wrote values", backend, call.what);
    cr_assert(memcmp(indices_before, indices_out, sizeof indices_out) == 0, "%s, %s: wrote indices", backend,
              call.what);
}

static void bad_select_arguments(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    const char *name = backend_label(backend);
    float input[B * V];
    for (int i = 0; i < B * V; i++) input[i] = (float)(i * 7 % 5);
    const int64_t big = (int64_t)1 << 40;
    /* A valid call, then one thing wrong at a time. */
    const bad_call valid = {"a valid call", ctx, input, TOPK_F32, B, V, V, K, 0, values_out, indices_out, TOPK_OK};
#define CALL(what_, expected_, ...)                                                                                    \
    do {                                                                                                               \
        bad_call c = valid;                                                                                            \
        c.what = what_, c.expected = expected_, __VA_ARGS__;                                                           \
        expect_status(name, c);                                                                                        \
    } while (0)
    expect_status(name, valid);
    CALL("NULL context", TOPK_ERR_NULL_POINTER, c.ctx = NULL);
    CALL("NULL input", TOPK_ERR_NULL_POINTER, c.input = NULL);
    CALL("NULL values with k > 0", TOPK_ERR_NULL_POINTER, c.values = NULL);
    CALL("NULL indices with k > 0", TOPK_ERR_NULL_POINTER, c.indices = NULL);
    CALL("k < 0", TOPK_ERR_BAD_K, c.k = -1);
    CALL("k = INT64_MIN", TOPK_ERR_BAD_K, c.k = INT64_MIN);
    CALL("k > vocab", TOPK_ERR_BAD_K, c.k = V + 1);
    CALL("k = INT64_MAX", TOPK_ERR_BAD_K, c.k = INT64_MAX);
    CALL("row stride < vocab", TOPK_ERR_BAD_STRIDE, c.row_stride = V - 1);
    CALL("row stride 0", TOPK_ERR_BAD_STRIDE, c.row_stride = 0);
    CALL("row stride negative", TOPK_ERR_BAD_STRIDE, c.row_stride = -V);
    CALL("batch 0", TOPK_ERR_BAD_SHAPE, c.batch = 0);
    CALL("batch negative", TOPK_ERR_BAD_SHAPE, c.batch = -1);
    CALL("batch INT64_MIN", TOPK_ERR_BAD_SHAPE, c.batch = INT64_MIN);
    CALL("vocab 0 (k 0)", TOPK_ERR_BAD_SHAPE, c.vocab = 0, c.k = 0);
    CALL("vocab negative (k 0)", TOPK_ERR_BAD_SHAPE, c.vocab = -1, c.k = 0);
    /* Too big to exist: the 16-float buffer must never be read past. */
    CALL("batch x stride overflows (2^40 x 2^40)", TOPK_ERR_BAD_SHAPE, c.batch = big, c.row_stride = big);
    CALL("rows fit in elements, not in bytes (2 x 2^62 fp32)", TOPK_ERR_BAD_SHAPE, c.row_stride = (int64_t)1 << 62,
         c.vocab = 1, c.k = 1);
    CALL("one row too long for byte offsets (2^62 fp32)", TOPK_ERR_BAD_SHAPE, c.batch = 1,
         c.vocab = (int64_t)1 << 62, c.row_stride = (int64_t)1 << 62, c.k = 0);
    CALL("the int64 index output overflows (2^61 rows of fp16)", TOPK_ERR_BAD_SHAPE, c.dtype = TOPK_F16,
         c.batch = (int64_t)1 << 61, c.vocab = 1, c.row_stride = 1, c.k = 1);
    CALL("everything INT64_MAX", TOPK_ERR_BAD_SHAPE, c.batch = INT64_MAX, c.vocab = INT64_MAX,
         c.row_stride = INT64_MAX, c.k = 1);
    CALL("dtype 7", TOPK_ERR_BAD_DTYPE, c.dtype = (topk_dtype)7);
    CALL("dtype -1", TOPK_ERR_BAD_DTYPE, c.dtype = (topk_dtype)-1);
    /* k == 0 selects nothing: valid, writes nothing, and the outputs may be NULL. */
    CALL("k 0", TOPK_OK, c.k = 0);
    CALL("k 0 with NULL outputs", TOPK_OK, c.k = 0, c.values = NULL, c.indices = NULL);
    CALL("unknown flag bit 4", TOPK_ERR_BAD_PARAM, c.flags = 4u);
    CALL("unknown flag bit 31 with smallest", TOPK_ERR_BAD_PARAM, c.flags = TOPK_SMALLEST | 0x80000000u);
    if (backend != TOPK_BACKEND_OFFLOAD)
        CALL("device pointers on a host backend", TOPK_ERR_BAD_MEMORY, c.flags = TOPK_DEVICE_POINTERS);
    /* Shapes that are valid but whose workspace cannot exist: the reference (and the cpu backend, which
     * hands rows of 2^32 or more to it) sorts a row in vocab x 16 bytes. 2^62 bytes is beyond any
     * address space, and 2^60 x 16 wraps size_t: both must be TOPK_ERR_OUT_OF_MEMORY before the input
     * is read. The offload backend refuses rows of 2^32 or more outright. */
    topk_status huge_row = backend == TOPK_BACKEND_OFFLOAD ? TOPK_ERR_BAD_SHAPE : TOPK_ERR_OUT_OF_MEMORY;
    CALL("a 2^58-element bf16 row (a 2^62-byte workspace)", huge_row, c.dtype = TOPK_BF16, c.batch = 1,
         c.vocab = (int64_t)1 << 58, c.row_stride = (int64_t)1 << 58, c.k = 1);
    CALL("a 2^60-element fp16 row (its workspace size wraps size_t)", huge_row, c.dtype = TOPK_F16, c.batch = 1,
         c.vocab = (int64_t)1 << 60, c.row_stride = (int64_t)1 << 60, c.k = 2);
#undef CALL
    topk_ctx_free(ctx);
}

/* Each backend's test carries its name, so that a filter on "offload" runs the offload one alone. */
Test(errors, reference) { bad_select_arguments(TOPK_BACKEND_REFERENCE); }
Test(errors, cpu) { bad_select_arguments(TOPK_BACKEND_CPU); }
Test(errors, offload) { bad_select_arguments(TOPK_BACKEND_OFFLOAD); }

Test(errors, ctx_create)
{
    topk_ctx *ctx = (topk_ctx *)&ctx; /* not NULL, so that setting it to NULL shows */
    cr_assert(topk_ctx_create(NULL, TOPK_BACKEND_CPU) == TOPK_ERR_NULL_POINTER);
    cr_assert(topk_ctx_create(&ctx, (topk_backend)9) == TOPK_ERR_BAD_BACKEND);
    cr_assert(ctx == NULL, "a failed topk_ctx_create must set *ctx to NULL");
    ctx = (topk_ctx *)&ctx;
    cr_assert(topk_ctx_create(&ctx, (topk_backend)-1) == TOPK_ERR_BAD_BACKEND);
    cr_assert(ctx == NULL, "a failed topk_ctx_create must set *ctx to NULL");

    /* Without a GPU, asking for offload fails; with one, it must really be the offload backend. */
    ctx = (topk_ctx *)&ctx;
    topk_status s = topk_ctx_create(&ctx, TOPK_BACKEND_OFFLOAD);
    cr_assert(s == TOPK_OK || s == TOPK_ERR_NO_DEVICE, "offload: %s", topk_strerror(s));
    if (s == TOPK_OK)
        cr_assert(topk_ctx_backend(ctx) == TOPK_BACKEND_OFFLOAD);
    else
        cr_assert(ctx == NULL, "a failed topk_ctx_create must set *ctx to NULL");
    topk_ctx_free(ctx);

    /* AUTO is resolved at creation: never reported as AUTO, and without a GPU it is the cpu. */
    cr_assert(topk_ctx_create(&ctx, TOPK_BACKEND_AUTO) == TOPK_OK);
    topk_backend resolved = topk_ctx_backend(ctx);
    cr_assert(resolved == TOPK_BACKEND_CPU || (resolved == TOPK_BACKEND_OFFLOAD && s == TOPK_OK),
              "auto resolved to %s", backend_label(resolved));
    topk_ctx_free(ctx);
    topk_ctx_free(NULL);
}

/*
 * No usable GPU: asking for the offload backend returns TOPK_ERR_NO_DEVICE and never aborts, also under
 * OMP_TARGET_OFFLOAD=MANDATORY (with which libomptarget aborts the process at a target region that
 * cannot run on a device), and AUTO quietly runs the cpu. ctest runs this as errors_no_gpu_mandatory
 * with CUDA_VISIBLE_DEVICES="" (so a GPU host has no GPU either) and MANDATORY; without that setting
 * it skips, since a GPU may be there.
 */
Test(errors, no_device)
{
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (!visible || *visible) cr_skip_test("needs CUDA_VISIBLE_DEVICES=\"\" (the ctest entry errors_no_gpu_mandatory)");
    topk_ctx *ctx = (topk_ctx *)&ctx; /* not NULL, so that setting it to NULL shows */
    topk_status s = topk_ctx_create(&ctx, TOPK_BACKEND_OFFLOAD);
    cr_assert(s == TOPK_ERR_NO_DEVICE, "offload with no GPU: \"%s\"", topk_strerror(s));
    cr_assert(ctx == NULL, "a failed topk_ctx_create must set *ctx to NULL");

    setenv("TOPK_BACKEND", "offload", 1); /* the same through the environment */
    ctx = (topk_ctx *)&ctx;
    s = topk_ctx_create(&ctx, TOPK_BACKEND_CPU);
    unsetenv("TOPK_BACKEND");
    cr_assert(s == TOPK_ERR_NO_DEVICE && ctx == NULL, "TOPK_BACKEND=offload with no GPU: \"%s\"", topk_strerror(s));

    cr_assert(topk_ctx_create(&ctx, TOPK_BACKEND_AUTO) == TOPK_OK);
    cr_assert(topk_ctx_backend(ctx) == TOPK_BACKEND_CPU, "auto with no GPU ran %s", backend_label(topk_ctx_backend(ctx)));
    /* the cpu backend only records a device number */
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_DEVICE, 3) == TOPK_OK, "the cpu backend ignores the device");
    float input[4] = {1, 4, 2, 3}, values[2];
    int64_t indices[2];
    cr_assert(topk_select(ctx, input, TOPK_F32, 1, 4, 4, 2, 0, values, indices) == TOPK_OK);
    cr_assert(indices[0] == 1 && indices[1] == 3 && values[0] == 4 && values[1] == 3);
    cr_assert(topk_select(ctx, input, TOPK_F32, 1, 4, 4, 2, TOPK_DEVICE_POINTERS, values, indices) ==
              TOPK_ERR_BAD_MEMORY);
    topk_ctx_free(ctx);
}

Test(errors, params)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_CPU);
    static const topk_param params[] = {TOPK_PARAM_THREADS, TOPK_PARAM_DEVICE, TOPK_PARAM_TEAMS_PER_ROW,
                                        TOPK_PARAM_CHUNK};
    for (int i = 0; i < 4; i++) {
        int64_t value = -7;
        cr_assert(topk_ctx_set_param(ctx, params[i], 5 + i) == TOPK_OK, "set param %d", (int)params[i]);
        cr_assert(topk_ctx_get_param(ctx, params[i], &value) == TOPK_OK && value == 5 + i,
                  "param %d: set %d, read back %lld", (int)params[i], 5 + i, (long long)value);
        /* A rejected value leaves the old one in place. */
        cr_assert(topk_ctx_set_param(ctx, params[i], -2) == TOPK_ERR_BAD_PARAM, "param %d = -2", (int)params[i]);
        cr_assert(topk_ctx_get_param(ctx, params[i], &value) == TOPK_OK && value == 5 + i,
                  "param %d changed by a rejected set", (int)params[i]);
        cr_assert(topk_ctx_set_param(ctx, params[i], 0) == TOPK_OK, "0 (choose for me) is always valid");
    }
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_THREADS, -1) == TOPK_ERR_BAD_PARAM);
    /* Values that would wrap when narrowed to int are out of range, not silently something else. */
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_THREADS, ((int64_t)1 << 32) + 1) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_DEVICE, (int64_t)1 << 32) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_TEAMS_PER_ROW, (int64_t)1 << 31) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_CHUNK, INT64_MAX) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_DEVICE, -1) == TOPK_OK, "device -1 means the default device");
    /* threads of a GPU team: whole warps up to 1024 (every backend keeps the value; offload uses it) */
    static const int64_t team_threads_bad[] = {16, 48, 1056, 2048, -32};
    for (int i = 0; i < 5; i++)
        cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_TEAM_THREADS, team_threads_bad[i]) == TOPK_ERR_BAD_PARAM,
                  "team threads %lld accepted", (long long)team_threads_bad[i]);
    static const int64_t team_threads_good[] = {32, 64, 256, 1024, 0};
    for (int i = 0; i < 5; i++) {
        int64_t value = -7;
        cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_TEAM_THREADS, team_threads_good[i]) == TOPK_OK);
        cr_assert(topk_ctx_get_param(ctx, TOPK_PARAM_TEAM_THREADS, &value) == TOPK_OK && value == team_threads_good[i]);
    }
    /* candidates a GPU team keeps before it raises its floor: 1..4096 */
    static const int64_t shrink_at_bad[] = {-1, 4097, (int64_t)1 << 32};
    for (int i = 0; i < 3; i++)
        cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_SHRINK_AT, shrink_at_bad[i]) == TOPK_ERR_BAD_PARAM,
                  "shrink_at %lld accepted", (long long)shrink_at_bad[i]);
    static const int64_t shrink_at_good[] = {1, 257, 4096, 0};
    for (int i = 0; i < 4; i++) {
        int64_t value = -7;
        cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_SHRINK_AT, shrink_at_good[i]) == TOPK_OK);
        cr_assert(topk_ctx_get_param(ctx, TOPK_PARAM_SHRINK_AT, &value) == TOPK_OK && value == shrink_at_good[i]);
    }
    cr_assert(topk_ctx_set_param(ctx, (topk_param)17, 1) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, (topk_param)-1, 1) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(NULL, TOPK_PARAM_THREADS, 1) == TOPK_ERR_NULL_POINTER);

    int64_t untouched = 1234;
    cr_assert(topk_ctx_get_param(ctx, (topk_param)17, &untouched) == TOPK_ERR_BAD_PARAM);
    cr_assert(untouched == 1234, "a failed get_param wrote its output");
    cr_assert(topk_ctx_get_param(NULL, TOPK_PARAM_THREADS, &untouched) == TOPK_ERR_NULL_POINTER);
    cr_assert(topk_ctx_get_param(ctx, TOPK_PARAM_THREADS, NULL) == TOPK_ERR_NULL_POINTER);
    topk_ctx_free(ctx);
}

Test(errors, strerror)
{
    const char *seen[TOPK_STATUS_COUNT];
    for (int s = 0; s < TOPK_STATUS_COUNT; s++) {
        seen[s] = topk_strerror((topk_status)s);
        cr_assert(seen[s] && *seen[s], "status %d has no message", s);
        cr_assert(strcmp(seen[s], "unknown status") != 0, "status %d is called unknown", s);
        for (int t = 0; t < s; t++)
            cr_assert(strcmp(seen[s], seen[t]) != 0, "statuses %d and %d share the message \"%s\"", t, s, seen[s]);
    }
    static const int unknown[] = {TOPK_STATUS_COUNT, TOPK_STATUS_COUNT + 1, 1000, -1};
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(topk_strerror((topk_status)unknown[i]), "unknown status", "status %d", unknown[i]);
}
