/*
 * Adversarial rows: the data that breaks fast selection kernels. Ties defeat "strictly greater than
 * the threshold" filters and unstable merges; NaNs, infinities, signed zeros and denormals break key
 * transforms; values that are distinct in fp32 but equal after rounding catch a backend that ranks in
 * reduced precision; all-equal rows make every element a candidate. Every backend, both directions,
 * every dtype, against the oracle (and the reference backend), with k cutting inside runs of ties.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "gen.h"
#include "oracle.h"

typedef uint32_t (*element_maker)(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r);

typedef struct pattern {
    const char *name;
    element_maker make;
} pattern;

static uint32_t enc(topk_dtype dtype, double v) { return encode_f32(dtype, (float)v); }

/* Each row its own constant: a number, -0.0, a NaN (with one payload, so the output bits are known). */
static uint32_t all_equal(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)r;
    switch (row % 3) {
    case 0: return enc(dtype, 1.5);
    case 1: return enc(dtype, -0.0);
    default: return nan_bits(dtype, true, 3);
    }
}

static uint32_t three_values(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    static const double values[] = {-1.0, 0.5, 2.0};
    return enc(dtype, values[rng_below(r, 3)]);
}

/* Non-decreasing (fp16/bf16 round neighbours together, which adds runs of ties). */
static uint32_t ascending(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)row, (void)r;
    return enc(dtype, (double)(column - vocab / 2) * 0.37);
}

static uint32_t descending(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)row, (void)r;
    return enc(dtype, (double)(vocab / 2 - column) * 0.37);
}

/* A quarter NaNs of both signs and many payloads (quiet and signalling) among ordinary numbers. */
static uint32_t nans_mixed(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    if (rng_below(r, 4) == 0) return nan_bits(dtype, rng_next(r) & 1, (uint32_t)rng_next(r));
    return enc(dtype, rng_normalish(r));
}

/* Every element a NaN: all equal, so the output is index order and must keep each payload. */
static uint32_t all_nans(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    return nan_bits(dtype, rng_next(r) & 1, (uint32_t)rng_next(r));
}

/* The ends of the order: +-inf, the largest finite values, a few NaNs, and ordinary numbers. */
static uint32_t extremes(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    bool negative = rng_next(r) & 1;
    switch (rng_below(r, 8)) {
    case 0:
    case 1: return inf_bits(dtype, negative);
    case 2: return inf_bits(dtype, negative) - 1; /* the largest finite magnitude */
    case 3: return nan_bits(dtype, negative, (uint32_t)rng_next(r));
    default: return enc(dtype, rng_normalish(r));
    }
}

/* Mostly +0.0 and -0.0, which compare equal as floats but not in the contract, among tiny values. */
static uint32_t signed_zeros(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    bool negative = rng_next(r) & 1;
    switch (rng_below(r, 6)) {
    case 0: return denormal_bits(dtype, negative, 1);
    case 1: return enc(dtype, negative ? -1.0 : 1.0);
    default: return enc(dtype, negative ? -0.0 : 0.0);
    }
}

/* Denormals of both signs with zeros and the smallest normals around them. */
static uint32_t denormals(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    bool negative = rng_next(r) & 1;
    uint32_t mantissa = (uint32_t)rng_next(r);
    switch (rng_below(r, 8)) {
    case 0: return enc(dtype, negative ? -0.0 : 0.0);
    case 1: return denormal_bits(dtype, negative, 0xFFFFFFFFu) + 1; /* the smallest normal */
    default: return denormal_bits(dtype, negative, rng_below(r, 2) ? mantissa : mantissa & 7);
    }
}

/* Distinct fp32 values a few fp32 ulps apart around three bases: in fp16 and bf16 they round onto a
 * handful of equal values (long runs of ties); in fp32 they stay distinct, which catches a backend
 * that ranks fp32 in a narrower precision. */
static uint32_t rounding_collisions(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    static const double bases[] = {1.0, -3.0, 1000.0};
    double base = bases[rng_below(r, 3)];
    return enc(dtype, base * (1.0 + (double)rng_below(r, 256) * 0x1p-20));
}

/* An eighth distinct large values, half one repeated value, the rest distinct small values: k = V/4
 * (largest) and k = V/2 (smallest) stop in the middle of the run. */
static uint32_t run_of_ties(topk_dtype dtype, int64_t column, int64_t vocab, int64_t row, rng *r)
{
    (void)column, (void)vocab, (void)row;
    uint64_t category = rng_below(r, 8);
    if (category == 0) return enc(dtype, 10.0 + (double)(rng_next(r) >> 11) * 0x1p-53 * 10.0);
    if (category < 5) return enc(dtype, 1.0);
    return enc(dtype, -10.0 - (double)(rng_next(r) >> 11) * 0x1p-53 * 10.0);
}

static const pattern patterns[] = {
    {"all_equal", all_equal},
    {"three_values", three_values},
    {"ascending", ascending},
    {"descending", descending},
    {"nans_mixed", nans_mixed},
    {"all_nans", all_nans},
    {"extremes", extremes},
    {"signed_zeros", signed_zeros},
    {"denormals", denormals},
    {"rounding_collisions", rounding_collisions},
    {"run_of_ties", run_of_ties},
};
enum { PATTERN_COUNT = sizeof patterns / sizeof patterns[0] };

static const int64_t vocabs[] = {1, 2, 3, 8, 33, 300, 4097, 50304};
enum { VOCAB_COUNT = sizeof vocabs / sizeof vocabs[0], SMALL_VOCAB = 40, K_MAX = 64 };

static struct criterion_test_params pattern_params(void)
{
    static int indices[PATTERN_COUNT];
    for (int i = 0; i < PATTERN_COUNT; i++) indices[i] = i;
    return cr_make_param_array(int, indices, PATTERN_COUNT);
}

/* Every k for short rows; for long rows, the edges and fixed fractions (run_of_ties' run holds ranks
 * V/8 to 5V/8 when largest, 3V/8 to 7V/8 when smallest). */
static int ks_for(int64_t vocab, int64_t *ks)
{
    int n = 0;
    if (vocab <= SMALL_VOCAB) {
        for (int64_t k = 0; k <= vocab; k++) n = append_unique(ks, n, k);
        return n;
    }
    const int64_t wanted[] = {0, 1, 2, 3, 17, 50, vocab / 8, vocab / 4, vocab / 2, vocab - 1, vocab};
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) n = append_unique(ks, n, wanted[i]);
    return n;
}

/* Whether two elements rank equal in the contract: the same value, all NaNs alike, -0.0 != +0.0. */
static bool rank_equal(topk_dtype dtype, uint32_t a, uint32_t b)
{
    uint32_t pair[2];
    store_bits(dtype, pair, 0, a);
    store_bits(dtype, pair, 1, b);
    double x = oracle_decode(dtype, pair), y = oracle_decode(dtype, (char *)pair + dtype_bytes(dtype));
    if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
    return x == y && signbit(x) == signbit(y);
}

/* k values that stop inside real runs of ties in row 0's ranking: one element in, halfway and one
 * short of the end, for the first run, the runs holding ranks V/4 and V/2, and the longest run. A
 * threshold equal to the k-th key is the case filters get wrong, and fixed fractions rarely hit it. */
static int add_tie_cuts(const select_case *c, const selection *ranking, int64_t *ks, int n)
{
    int64_t longest_start = 0, longest_end = 0;
    bool first = true;
    for (int64_t start = 0, end; start < c->vocab; start = end) {
        uint32_t bits = load_bits(c->dtype, ranking->values, start);
        for (end = start + 1; end < c->vocab && rank_equal(c->dtype, bits, load_bits(c->dtype, ranking->values, end));)
            end++;
        if (end - start < 3) continue;
        if (end - start > longest_end - longest_start) longest_start = start, longest_end = end;
        bool holds_marked_rank = (start <= c->vocab / 4 && c->vocab / 4 < end) || (start <= c->vocab / 2 && c->vocab / 2 < end);
        if (first || holds_marked_rank) {
            n = append_unique(ks, n, start + 1);
            n = append_unique(ks, n, (start + end) / 2);
            n = append_unique(ks, n, end - 1);
        }
        first = false;
    }
    if (longest_end > longest_start) {
        n = append_unique(ks, n, longest_start + 1);
        n = append_unique(ks, n, (longest_start + longest_end) / 2);
        n = append_unique(ks, n, longest_end - 1);
    }
    return n;
}

/* batch rows of the pattern, stride elements apart. */
static void *pattern_matrix(const pattern *p, topk_dtype dtype, int64_t batch, int64_t vocab, int64_t stride,
                            uint64_t seed)
{
    void *m = random_matrix(dtype, batch, vocab, stride, seed); /* for its NaN / -inf padding */
    rng r = {seed};
    for (int64_t row = 0; row < batch; row++)
        for (int64_t c = 0; c < vocab; c++) store_bits(dtype, m, row * stride + c, p->make(dtype, c, vocab, row, &r));
    return m;
}

static void adversarial(topk_backend backend, int pattern_index)
{
    const pattern *p = &patterns[pattern_index];
    topk_ctx *ctx = open_backend_or_skip(backend);
    topk_ctx *reference = open_backend_or_skip(TOPK_BACKEND_REFERENCE);
    char data[64];
    snprintf(data, sizeof data, "pattern %s", p->name);
    for (int d = 0; d < 3; d++) {
        for (int v = 0; v < VOCAB_COUNT; v++) {
            /* Two rows of the longest vocab (the reference sorts every row), else three; the odd stride
             * starts every row after the first misaligned. */
            int64_t vocab = vocabs[v], batch = vocab > 4097 ? 2 : 3, stride = vocab + 5;
            void *input = pattern_matrix(p, all_dtypes[d], batch, vocab, stride, (uint64_t)(pattern_index * 131 + v * 7 + d));
            for (int smallest = 0; smallest < 2; smallest++) {
                select_case c = {backend, all_dtypes[d], batch, vocab, stride, 0, smallest, data};
                selection oracle = oracle_selection(&c, input, true);
                int64_t ks[K_MAX];
                int k_count = ks_for(vocab, ks);
                if (vocab > SMALL_VOCAB) k_count = add_tie_cuts(&c, &oracle, ks, k_count);
                check_each_k(ctx, reference, &c, input, &oracle, ks, k_count);
                selection_free(&oracle);
            }
            free(input);
        }
    }
    topk_ctx_free(reference);
    topk_ctx_free(ctx);
}

ParameterizedTestParameters(adversarial, reference) { return pattern_params(); }
ParameterizedTest(int *pattern_index, adversarial, reference) { adversarial(TOPK_BACKEND_REFERENCE, *pattern_index); }

ParameterizedTestParameters(adversarial, cpu) { return pattern_params(); }
ParameterizedTest(int *pattern_index, adversarial, cpu) { adversarial(TOPK_BACKEND_CPU, *pattern_index); }

ParameterizedTestParameters(adversarial, offload) { return pattern_params(); }
ParameterizedTest(int *pattern_index, adversarial, offload) { adversarial(TOPK_BACKEND_OFFLOAD, *pattern_index); }
