/*
 * The offload backend against the reference backend, bit for bit, over what its kernels treat
 * specially: vocabularies from 1 to 30011 with k 1, 2, 50, V/2, V-1, V, 2048, 2049 and 2300; every dtype;
 * padded rows and rows that start off an aligned address; teams per row from the plan's choice to 40; the
 * floor raised as often as it can be (TOPK_PARAM_SHRINK_AT 1: at k + 1 candidates), by default or only when
 * the buffer is full (4096); data
 * made of ties, all-equal rows, sorted rows, raw bit patterns, NaNs with payloads, infinities and signed
 * zeros; host and device pointers; largest and smallest. Then long rows, where the merge tree is two levels
 * deep, k runs to 5000 and one row holds 16.7M elements.
 *
 * Every case's shape, flags and knobs come from its position in the grid, so a failure names one case that
 * can be rerun alone. By default a third of the grid and half of the long rows run (a few seconds through
 * OpenMP's host fallback: ctest's parity_offload_host, TOPK_OFFLOAD_HOST=1); TOPK_PARITY_FULL=1 runs all
 * 983 cases, as ci/gpu-check does on the GPU.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "device_mem.h"
#include "gen.h"

enum pattern { NORMAL, RAW_BITS, FEW_VALUES, ALL_EQUAL, ASCENDING, DESCENDING, SPECIALS, PATTERNS };
static const char *const pattern_names[] = {"normal",    "raw-bits",   "few-values", "all-equal",
                                            "ascending", "descending", "specials"};

typedef struct parity_case {
    int64_t batch, vocab, k, pad; /* row stride = vocab + pad */
    topk_dtype dtype;
    enum pattern pattern;
    unsigned flags; /* TOPK_SMALLEST, TOPK_DEVICE_POINTERS */
    int64_t teams_per_row;
    int offset;        /* elements the input starts past an aligned address */
    int64_t shrink_at; /* TOPK_PARAM_SHRINK_AT */
} parity_case;

static bool full_grid(void)
{
    const char *full = getenv("TOPK_PARITY_FULL");
    return full && !strcmp(full, "1");
}

/* The bits of one element of the pattern at column c. */
static uint32_t pattern_bits(enum pattern p, topk_dtype dtype, int64_t c, int64_t vocab, rng *r)
{
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, 1.0f, -1.0f};
    switch (p) {
    case NORMAL: return encode_f32(dtype, (float)rng_normalish(r));
    case RAW_BITS: return (uint32_t)rng_next(r);
    case FEW_VALUES: return encode_f32(dtype, (float)((int)rng_below(r, 4) - 1));
    case ALL_EQUAL: return encode_f32(dtype, 0.5f);
    case ASCENDING: return encode_f32(dtype, (float)c / (float)vocab);
    case DESCENDING: return encode_f32(dtype, -(float)c / (float)vocab);
    case SPECIALS:
        if (rng_below(r, 5) == 0) return nan_bits(dtype, rng_below(r, 2), (uint32_t)rng_next(r));
        return encode_f32(dtype, specials[rng_below(r, 6)]);
    case PATTERNS: break;
    }
    return 0;
}

/* batch rows of `stride` elements, the padding filled like the row so that reading it would show. */
static void fill_input(void *data, const parity_case *pc, rng *r)
{
    int64_t stride = pc->vocab + pc->pad;
    for (int64_t i = 0; i < pc->batch * stride; i++)
        store_bits(pc->dtype, data, i, pattern_bits(pc->pattern, pc->dtype, i % stride, pc->vocab, r));
}

/* The offload backend's answer with every buffer in device memory, copied back. */
static selection select_on_device(topk_ctx *ctx, const select_case *c, const void *input, const char *name)
{
    int device = pointer_device();
    size_t elem = (size_t)dtype_bytes(c->dtype), n = (size_t)(c->batch * c->k);
    size_t input_bytes = (size_t)matrix_elements(c->batch, c->vocab, c->row_stride) * elem;
    selection got = {malloc(n * elem), malloc(n * sizeof(int64_t)), c->k};
    memset(got.values, 0xA5, n * elem);
    memset(got.indices, 0xA5, n * sizeof(int64_t));
    void *in = device_copy_in(input, input_bytes, device);
    void *values = device_copy_in(got.values, n * elem, device);
    void *indices = device_copy_in(got.indices, n * sizeof(int64_t), device);
    topk_status s = topk_select(ctx, in, c->dtype, c->batch, c->vocab, c->row_stride, c->k,
                                (c->smallest ? TOPK_SMALLEST : 0) | TOPK_DEVICE_POINTERS, values, indices);
    cr_assert(s == TOPK_OK, "%s: topk_select returned \"%s\"", name, topk_strerror(s));
    device_free(in, device);
    device_copy_out(got.values, values, n * elem, device);
    device_copy_out(got.indices, indices, n * sizeof(int64_t), device);
    return got;
}

static void check_parity(topk_ctx *offload, topk_ctx *reference, const parity_case *pc)
{
    int64_t stride = pc->vocab + pc->pad;
    size_t elem = (size_t)dtype_bytes(pc->dtype);
    char *buffer = malloc((size_t)(pc->batch * stride + pc->offset) * elem);
    char *input = buffer + (size_t)pc->offset * elem;
    rng r = {(uint64_t)(pc->vocab * 7919 + pc->k) * 31 + (uint64_t)pc->pattern * 5 + pc->dtype};
    fill_input(input, pc, &r);

    char data[128], name[256], difference[256];
    snprintf(data, sizeof data, "pattern %s, teams_per_row %lld, shrink_at %lld, offset %d, %s pointers",
             pattern_names[pc->pattern], (long long)pc->teams_per_row, (long long)pc->shrink_at, pc->offset,
             pc->flags & TOPK_DEVICE_POINTERS ? "device" : "host");
    select_case c = {TOPK_BACKEND_REFERENCE, pc->dtype, pc->batch, pc->vocab, stride, pc->k,
                     pc->flags & TOPK_SMALLEST, data};
    selection want = run_select(reference, &c, input);
    c.backend = TOPK_BACKEND_OFFLOAD;
    describe_case(&c, name, sizeof name);
    cr_assert(topk_ctx_set_param(offload, TOPK_PARAM_TEAMS_PER_ROW, pc->teams_per_row) == TOPK_OK, "%s", name);
    cr_assert(topk_ctx_set_param(offload, TOPK_PARAM_SHRINK_AT, pc->shrink_at) == TOPK_OK, "%s", name);
    selection got = pc->flags & TOPK_DEVICE_POINTERS ? select_on_device(offload, &c, input, name)
                                                     : run_select(offload, &c, input);
    /* an expectation, not an assertion: every mismatching case of the slice gets named */
    cr_expect(!find_difference(&c, &got, &want, difference, sizeof difference), "%s differs from the reference at %s",
              name, difference);
    selection_free(&got);
    selection_free(&want);
    free(buffer);
}

/* One vocabulary: every k, pattern and dtype, the rest of the case chosen by its position. */
static void check_vocab(topk_ctx *offload, topk_ctx *reference, size_t vocab_index, int64_t v)
{
    const int64_t ks[] = {1, 2, 50, v / 2, v - 1, v, 2048, 2049, 2300};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        if (ks[ki] < 1 || ks[ki] > v || (ki > 0 && ks[ki] == ks[ki - 1])) continue;
        for (int p = 0; p < PATTERNS; p++)
            for (int d = 0; d < 3; d++) {
                if (!full_grid() && (p + d + (int)ki) % 3) continue;
                unsigned variant = (unsigned)(p * 7 + d * 3 + (int)ki + (int)vocab_index);
                parity_case pc = {
                    .batch = 1 + (int64_t)(variant % 3) * 2,
                    .vocab = v,
                    .k = ks[ki],
                    .pad = variant % 4 == 1 ? 3 : 0,
                    .dtype = all_dtypes[d],
                    .pattern = (enum pattern)p,
                    .flags = (variant % 5 == 2 ? TOPK_SMALLEST : 0) | (variant % 2 ? TOPK_DEVICE_POINTERS : 0),
                    .teams_per_row = (const int64_t[]){0, 1, 3, 40}[variant % 4],
                    .offset = (int)(variant % 3),
                    .shrink_at = (const int64_t[]){0, 1, 4096}[(variant / 4) % 3],
                };
                check_parity(offload, reference, &pc);
            }
    }
}

typedef struct vocab_slice {
    size_t index; /* in vocabs: varies the cases' shapes and knobs */
    int64_t vocab;
} vocab_slice;

static const int64_t vocabs[] = {1, 2, 7, 64, 100, 1000, 4097, 30011};
enum { VOCABS = sizeof vocabs / sizeof vocabs[0] };
static vocab_slice slices[VOCABS];

ParameterizedTestParameters(parity, offload)
{
    for (size_t i = 0; i < VOCABS; i++) slices[i] = (vocab_slice){i, vocabs[i]};
    return cr_make_param_array(vocab_slice, slices, VOCABS);
}

ParameterizedTest(vocab_slice *slice, parity, offload)
{
    topk_ctx *offload = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    topk_ctx *reference = open_backend_or_skip(TOPK_BACKEND_REFERENCE);
    check_vocab(offload, reference, slice->index, slice->vocab);
    topk_ctx_free(offload);
    topk_ctx_free(reference);
}

/* Long rows: the merge tree two levels deep, wide k, many rows. Without TOPK_PARITY_FULL every other one. */
static const parity_case long_rows[] = {
    {1, 500000, 50, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
    {1, 500000, 2048, 0, TOPK_BF16, NORMAL, TOPK_DEVICE_POINTERS, 300, 1},
    {1, 500000, 2048, 0, TOPK_F32, ALL_EQUAL, TOPK_DEVICE_POINTERS, 0, 0},
    {1, 500000, 2000, 0, TOPK_F32, ASCENDING, TOPK_DEVICE_POINTERS, 0, 0},
    {2, 300000, 5000, 0, TOPK_F16, FEW_VALUES, TOPK_DEVICE_POINTERS, 0, 0},
    {3, 151936, 1024, 0, TOPK_F32, NORMAL, 0, 0, 0},
    {3, 151936, 200, 5, TOPK_BF16, SPECIALS, TOPK_SMALLEST | TOPK_DEVICE_POINTERS, 0, 1},
    {300, 4096, 64, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
    {33, 32000, 40, 0, TOPK_F16, RAW_BITS, TOPK_DEVICE_POINTERS, 0, 0},
    {2, 70000, 70000, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
    {1, 16777216, 2048, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
    /* several rows' merge trees at k = 2048 (test_stream saw a wrong synchronous row here, run 34) */
    {2, 151936, 2048, 0, TOPK_F32, NORMAL, TOPK_SMALLEST | TOPK_DEVICE_POINTERS, 0, 0},
    {2, 151936, 2048, 0, TOPK_F32, SPECIALS, TOPK_SMALLEST | TOPK_DEVICE_POINTERS, 0, 0},
    /* the floor raised every wave, or at the default of a few k, in chunks of ~38K-150K elements */
    {4, 151936, 50, 0, TOPK_BF16, NORMAL, TOPK_DEVICE_POINTERS, 0, 0, 1},
    {4, 151936, 50, 0, TOPK_BF16, ASCENDING, TOPK_DEVICE_POINTERS, 0, 0, 1},
    {2, 128256, 128, 0, TOPK_F32, FEW_VALUES, TOPK_DEVICE_POINTERS, 4, 0, 200},
    {3, 262144, 20, 1, TOPK_F16, DESCENDING, TOPK_SMALLEST | TOPK_DEVICE_POINTERS, 2, 1, 0},
};
enum { LONG_ROWS = sizeof long_rows / sizeof long_rows[0] };
static parity_case long_rows_run[LONG_ROWS];

ParameterizedTestParameters(parity_long_rows, offload)
{
    size_t n = 0;
    for (size_t i = 0; i < LONG_ROWS; i++)
        if (full_grid() || i % 2 == 0) long_rows_run[n++] = long_rows[i];
    return cr_make_param_array(parity_case, long_rows_run, n);
}

ParameterizedTest(parity_case *pc, parity_long_rows, offload)
{
    topk_ctx *offload = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    topk_ctx *reference = open_backend_or_skip(TOPK_BACKEND_REFERENCE);
    check_parity(offload, reference, pc);
    topk_ctx_free(offload);
    topk_ctx_free(reference);
}
