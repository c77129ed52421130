/*
 * The named matrices of --matrix, and the dtype names. Each matrix is a list of grids; a grid stands for
 * every combination of its batches, vocabularies, k and dtypes (lists end at the first 0 or NULL), and a
 * shape that two grids share runs once. bench/peers/common.py has the same table (change both together);
 * bench/cpu-matrix and bench/gpu-bench compare `topk-bench --list` with it before they time anything.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct case_grid {
    int64_t batches[8], vocabs[5], ks[3];
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

/* The nanochat decode step: one model, vocab 50304, bf16 logits, sampling with k 50-200, batch 1-32. */
static const case_grid nanochat[] = {
    {{1, 2, 4, 8, 16, 32}, {50304}, {50, 100, 200}, {"bf16"}},
};

/* The vocabularies of common LLMs (Llama 2, GPT-2/nanochat, Llama 3, Qwen 2, Gemma 3) from one row to
 * a serving batch. */
static const case_grid llm[] = {
    {{1, 4, 16, 64, 256}, {32000, 50304, 128256, 151936, 262144}, {50}, {"bf16"}},
};

/* Many short rows: classifiers, MoE routing, beam search over small candidate sets. */
static const case_grid small_vocab[] = {
    {{4096}, {1024, 2048, 4096}, {50}, {"fp32", "bf16"}},
};

typedef struct grid_list {
    const case_grid *grids;
    size_t count;
} grid_list;
#define GRIDS(list) {list, sizeof list / sizeof list[0]}

/* A matrix is the grids of its parts, in order: seeds is nanochat's then the foundation's. */
enum { MAX_PARTS = 2 };
static const struct {
    const char *name;
    grid_list parts[MAX_PARTS];
} matrices[] = {
    {"seeds", {GRIDS(nanochat), GRIDS(foundation)}},
    {"llm", {GRIDS(llm)}},
    {"small-vocab", {GRIDS(small_vocab)}},
    {"foundation", {GRIDS(foundation)}},
    {"decode", {GRIDS(decode)}},
};
enum { MATRIX_COUNT = sizeof matrices / sizeof matrices[0] };

/* "all" comes last: every other matrix. */
const char *matrix_name(size_t i) { return i < MATRIX_COUNT ? matrices[i].name : i == MATRIX_COUNT ? "all" : NULL; }

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
    size_t nb = count_sizes(g->batches, 8), nv = count_sizes(g->vocabs, 5), nk = count_sizes(g->ks, 3);
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

static bool same_case(const bench_case *a, const bench_case *b)
{
    return a->batch == b->batch && a->vocab == b->vocab && a->k == b->k && a->dtype == b->dtype;
}

/* Grid g of matrix m, counted through its parts in order; NULL past its last grid. */
static const case_grid *matrix_grid(size_t m, size_t g)
{
    for (size_t p = 0; p < MAX_PARTS; p++) {
        if (g < matrices[m].parts[p].count) return &matrices[m].parts[p].grids[g];
        g -= matrices[m].parts[p].count;
    }
    return NULL;
}

/* Appends the cases of matrix m to *cases (count so far: filled), dropping shapes already there. */
static size_t append_matrix(size_t m, bench_case **cases, size_t filled)
{
    size_t total = 0;
    for (size_t g = 0; matrix_grid(m, g); g++) total += expand_grid(matrix_grid(m, g), NULL);
    bench_case *grown = bench_realloc(*cases, (filled + total) * sizeof *grown);
    for (size_t g = 0; matrix_grid(m, g); g++) {
        size_t end = filled + expand_grid(matrix_grid(m, g), grown + filled);
        for (size_t i = filled; i < end; i++) {
            bool seen = false;
            for (size_t j = 0; j < filled && !seen; j++) seen = same_case(&grown[j], &grown[i]);
            if (!seen) grown[filled++] = grown[i];
        }
    }
    *cases = grown;
    return filled;
}

size_t matrix_cases(const char *name, bench_case **cases)
{
    *cases = NULL;
    size_t filled = 0;
    for (size_t m = 0; m < MATRIX_COUNT; m++)
        if (!strcmp(name, "all") || !strcmp(name, matrices[m].name)) filled = append_matrix(m, cases, filled);
    if (!filled) {
        free(*cases);
        *cases = NULL;
    }
    return filled;
}

const char *const dtype_choices[4] = {[TOPK_F32] = "fp32", [TOPK_F16] = "fp16", [TOPK_BF16] = "bf16", NULL};

const char *dtype_name(topk_dtype dtype) { return dtype_choices[dtype]; }

int dtype_parse(const char *name)
{
    for (int d = 0; d < 3; d++)
        if (strcmp(name, dtype_choices[d]) == 0) return d;
    return -1;
}
