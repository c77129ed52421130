/*
 * Tuning parameters change how the work is split, never the answer. The cpu backend cuts a long row
 * into segments by thread count and chunk length and merges the segments' winners; the offload
 * backend shares a row among teams. Ties that straddle a segment boundary, segments shorter than k and
 * a last segment shorter than the others are where such merges go wrong, so long rows (bf16 and fp16
 * random data are full of ties, and a constant row is nothing but ties) run under many settings.
 * On a small machine the defaults never split a row; these settings force it.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "gen.h"

typedef struct tuning {
    int64_t threads, chunk, teams_per_row;
} tuning;

/* Long enough that even 2 threads get a row each; the cpu backend gives a thread >= 32768 elements. */
static const struct {
    int64_t batch, vocab;
} shapes[] = {{1, 151936}, {3, 50304}, {2, 70001}};

static void fill_constant(topk_dtype dtype, void *m, int64_t elements)
{
    for (int64_t i = 0; i < elements; i++) store_bits(dtype, m, i, encode_f32(dtype, 0.75f));
}

static void run_tuned(topk_backend backend, const tuning *t)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_THREADS, t->threads) == TOPK_OK);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_CHUNK, t->chunk) == TOPK_OK);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_TEAMS_PER_ROW, t->teams_per_row) == TOPK_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t batch = shapes[s].batch, vocab = shapes[s].vocab, stride = vocab + 1;
        /* Around the sizes that matter for segments: k near vocab / segments, and k close to vocab. */
        const int64_t ks[] = {1, 50, 1000, vocab / 5, vocab / 3, vocab / 2 + 1, vocab};
        for (int d = 0; d < 3; d++) {
            for (int constant = 0; constant < 2; constant++) {
                uint64_t seed = (uint64_t)(s * 10 + (size_t)d);
                void *input = random_matrix(all_dtypes[d], batch, vocab, stride, seed);
                if (constant) fill_constant(all_dtypes[d], input, matrix_elements(batch, vocab, stride));
                char data[160];
                snprintf(data, sizeof data, "%s, threads %lld chunk %lld teams_per_row %lld",
                         constant ? "every element 0.75" : "random_matrix", (long long)t->threads,
                         (long long)t->chunk, (long long)t->teams_per_row);
                for (int smallest = 0; smallest < 2; smallest++) {
                    select_case c = {backend, all_dtypes[d], batch, vocab, stride, 0, smallest, data};
                    selection oracle = oracle_selection(&c, input, true);
                    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
                        c.k = ks[i];
                        selection got = run_select(ctx, &c, input);
                        assert_same(&c, &got, &oracle, "the oracle");
                        selection_free(&got);
                    }
                    selection_free(&oracle);
                }
                free(input);
            }
        }
    }
    topk_ctx_free(ctx);
}

static tuning cpu_tunings[] = {
    {1, 0, 0}, {2, 0, 0}, {3, 0, 0}, {8, 0, 0},
    {2, 1, 0}, {3, 1000, 0}, {5, 20000, 0}, {8, 4097, 0}, {16, 33, 0},
};
static tuning offload_tunings[] = {{0, 0, 1}, {0, 0, 2}, {0, 0, 3}, {0, 0, 8}, {0, 0, 33}};

ParameterizedTestParameters(tuning, cpu)
{
    return cr_make_param_array(tuning, cpu_tunings, sizeof cpu_tunings / sizeof cpu_tunings[0]);
}
ParameterizedTest(tuning *t, tuning, cpu) { run_tuned(TOPK_BACKEND_CPU, t); }

ParameterizedTestParameters(tuning, offload)
{
    return cr_make_param_array(tuning, offload_tunings, sizeof offload_tunings / sizeof offload_tunings[0]);
}
ParameterizedTest(tuning *t, tuning, offload) { run_tuned(TOPK_BACKEND_OFFLOAD, t); }
