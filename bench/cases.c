/*
 * The named matrices of --matrix, and the dtype names. Each matrix is a list of grids; a grid stands for
 * every combination of its batches, vocabularies, k and dtypes (lists end at the first 0 or NULL).
 * bench/peers/torch_topk.py has the same table: change both together.
 */
#include <string.h>

#include "bench.h"

typedef struct case_grid {
    int64_t batches[4], vocabs[5], ks[3];
    const char *dtypes[3];
} case_grid;

/* The shapes the library is judged by: LLM sampling (vocab 32000 to 151936, small and large k, one row
 * to a few hundred), one square matrix, and one very long row. */
static const case_grid foundation[] = {
    {{1}, {50304}, {50}, {"bf16"}},         {{1}, {50304}, {200}, {"bf16"}},
    {{4}, {50304}, {5}, {"fp16"}},          {{4}, {50304}, {128}, {"fp16"}},
    {{32}, {32000}, {40}, {"fp32"}},        {{32}, {50304}, {50}, {"bf16"}},
    {{4096}, {4096}, {64}, {"fp32"}},       {{1}, {128256}, {50}, {"fp32"}},
    {{64}, {151936}, {1024}, {"fp32"}},     {{256}, {151936}, {50}, {"bf16"}},
    {{1}, {16777216}, {2048}, {"fp32"}},
};

/* Token-by-token decoding on a GPU: few rows, the vocabularies of common models. */
static const case_grid decode[] = {
    {{1, 4, 32}, {32000, 50304, 128256, 151936}, {50, 200}, {"bf16", "fp32"}},
};

static const struct {
    const char *name;
    const case_grid *grids;
    size_t grid_count;
} matrices[] = {
    {"foundation", foundation, sizeof foundation / sizeof foundation[0]},
    {"decode", decode, sizeof decode / sizeof decode[0]},
};

const char *matrix_name(size_t i) { return i < sizeof matrices / sizeof matrices[0] ? matrices[i].name : NULL; }

static size_t count_sizes(const int64_t *list, size_t capacity)
{
    size_t n = 0;
    while (n < capacity && list[n]) n++;
    return n;
}

static size_t count_names(const char *const *list, size_t capacity)
{
    size_t n = 0;
    while (n < capacity && list[n]) n++;
    return n;
}

static size_t expand_grid(const case_grid *g, bench_case *out)
{
    size_t nb = count_sizes(g->batches, 4), nv = count_sizes(g->vocabs, 5), nk = count_sizes(g->ks, 3);
    size_t nd = count_names(g->dtypes, 3), n = 0;
    for (size_t b = 0; b < nb; b++)
        for (size_t v = 0; v < nv; v++)
            for (size_t k = 0; k < nk; k++)
                for (size_t d = 0; d < nd; d++) {
                    if (out) {
                        topk_dtype dtype = (topk_dtype)dtype_parse(g->dtypes[d]);
                        out[n] = (bench_case){g->batches[b], g->vocabs[v], g->ks[k], dtype};
                    }
                    n++;
                }
    return n;
}

size_t matrix_cases(const char *name, bench_case **cases)
{
    for (size_t m = 0; m < sizeof matrices / sizeof matrices[0]; m++) {
        if (strcmp(name, matrices[m].name) != 0) continue;
        size_t total = 0;
        for (size_t g = 0; g < matrices[m].grid_count; g++) total += expand_grid(&matrices[m].grids[g], NULL);
        *cases = bench_realloc(NULL, total * sizeof **cases);
        size_t filled = 0;
        for (size_t g = 0; g < matrices[m].grid_count; g++)
            filled += expand_grid(&matrices[m].grids[g], *cases + filled);
        return filled;
    }
    return 0;
}

static const char *const dtype_names[] = {[TOPK_F32] = "fp32", [TOPK_F16] = "fp16", [TOPK_BF16] = "bf16"};

const char *dtype_name(topk_dtype dtype) { return dtype_names[dtype]; }

int dtype_parse(const char *name)
{
    for (int d = 0; d < 3; d++)
        if (strcmp(name, dtype_names[d]) == 0) return d;
    return -1;
}
