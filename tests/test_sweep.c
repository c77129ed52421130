/*
 * Shape sweep: every backend against the oracle (and non-reference backends against the reference
 * backend too) over batch, vocab, k, row stride, dtype and direction, on seeded random data.
 *
 * Vocab sizes bracket powers of two (31/32/33, 4097) and real vocabularies (50304, 151936), since
 * kernels change strategy at such sizes. Up to 4097 the whole cross product runs; above it the
 * reference's O(V log V) sort per row dominates, so only batches 1-3 run, on fewer strides.
 * Each dtype x vocab is one parameterized test per backend, so a failure names its slice and the
 * offload tests can be run alone (--filter 'sweep/offload').
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "gen.h"

typedef struct sweep_slice {
    topk_dtype dtype;
    int64_t vocab;
} sweep_slice;

static const int64_t vocabs[] = {1, 2, 31, 32, 33, 1000, 4097, 50304, 151936};
enum { VOCAB_COUNT = sizeof vocabs / sizeof vocabs[0], LIST_MAX = 8 };

/* Above this vocab a row costs the reference (and the oracle) milliseconds to sort. */
static const int64_t big_vocab = 4097;

static sweep_slice slices[3 * VOCAB_COUNT];

static struct criterion_test_params sweep_params(void)
{
    size_t n = 0;
    for (size_t d = 0; d < 3; d++)
        for (size_t v = 0; v < VOCAB_COUNT; v++) slices[n++] = (sweep_slice){all_dtypes[d], vocabs[v]};
    return cr_make_param_array(sweep_slice, slices, n);
}

static int batches_for(int64_t vocab, int64_t *out)
{
    static const int64_t all[] = {1, 2, 3, 7, 32};
    int count = vocab > big_vocab ? 3 : 5;
    for (int i = 0; i < count; i++) out[i] = all[i];
    return count;
}

/* Dense rows, rows with an odd gap (misaligns every row after the first), and rows far apart. */
static int strides_for(int64_t vocab, int64_t batch, int64_t *out)
{
    int n = 0;
    n = append_unique(out, n, vocab);
    n = append_unique(out, n, vocab + 3);
    if (batch > 1 && (vocab <= big_vocab || batch == 2)) n = append_unique(out, n, 3 * vocab + 17);
    return n;
}

static int ks_for(int64_t vocab, int64_t *out)
{
    static const int64_t wanted[] = {0, 1, 2, 50};
    int n = 0;
    for (int i = 0; i < 4; i++) n = append_unique(out, n, wanted[i] < vocab ? wanted[i] : vocab);
    n = append_unique(out, n, vocab - 1);
    return append_unique(out, n, vocab);
}

static void sweep(topk_backend backend, const sweep_slice *slice)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    topk_ctx *reference = open_backend_or_skip(TOPK_BACKEND_REFERENCE);
    int64_t batches[LIST_MAX], strides[LIST_MAX], ks[LIST_MAX];
    int batch_count = batches_for(slice->vocab, batches), k_count = ks_for(slice->vocab, ks);
    for (int b = 0; b < batch_count; b++) {
        int stride_count = strides_for(slice->vocab, batches[b], strides);
        for (int s = 0; s < stride_count; s++) {
            uint64_t seed = ((uint64_t)slice->vocab * 1000003u + (uint64_t)batches[b]) * 7919u +
                            (uint64_t)strides[s] * 31u + (uint64_t)slice->dtype;
            void *input = random_matrix(slice->dtype, batches[b], slice->vocab, strides[s], seed);
            char data[64];
            snprintf(data, sizeof data, "random_matrix seed %llu", (unsigned long long)seed);
            for (int smallest = 0; smallest < 2; smallest++) {
                select_case c = {backend, slice->dtype, batches[b], slice->vocab, strides[s], 0, smallest, data};
                selection oracle = oracle_selection(&c, input, true);
                check_each_k(ctx, reference, &c, input, &oracle, ks, k_count);
                selection_free(&oracle);
            }
            free(input);
        }
    }
    topk_ctx_free(reference);
    topk_ctx_free(ctx);
}

ParameterizedTestParameters(sweep, reference) { return sweep_params(); }
ParameterizedTest(sweep_slice *slice, sweep, reference) { sweep(TOPK_BACKEND_REFERENCE, slice); }

ParameterizedTestParameters(sweep, cpu) { return sweep_params(); }
ParameterizedTest(sweep_slice *slice, sweep, cpu) { sweep(TOPK_BACKEND_CPU, slice); }

ParameterizedTestParameters(sweep, offload) { return sweep_params(); }
ParameterizedTest(sweep_slice *slice, sweep, offload) { sweep(TOPK_BACKEND_OFFLOAD, slice); }
