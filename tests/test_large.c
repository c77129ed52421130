/*
 * Matrices of more than 2^31 elements: every row address, element offset and output index must be
 * 64-bit (a 32-bit offset wraps at the row that starts past 2^31 elements, or 2^32 bytes).
 *
 * The matrices are calloc'd: untouched pages read as +0.0 and cost no memory, so a 4 GiB bf16 matrix
 * is cheap to make and to read. A few known values are planted in every row, so the answer is known
 * without sorting 2^31 elements: the planted values best first, then the zeros (all tied) by column.
 * Under UBSan (ci/sanitize) a signed overflow in any offset stops the test.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen.h"

enum { MOST_PLANTED = 4, K = 6 };

/* What a row holds besides zeros: columns and values, best first (distinct columns, values > 0). */
typedef struct planted {
    int count;
    int64_t columns[MOST_PLANTED];
    float values[MOST_PLANTED];
} planted;

/* The expected top K of a row: its planted values, then zeros from column 0 up, skipping planted ones.
 * `below` is a column holding a negative value, which is never among the best K. */
static void expected_row(const planted *p, int64_t below, int64_t *columns, uint16_t *values)
{
    int j = 0;
    for (; j < p->count; j++) columns[j] = p->columns[j], values[j] = (uint16_t)encode_f32(TOPK_BF16, p->values[j]);
    for (int64_t c = 0; j < K; c++) {
        bool taken = c == below;
        for (int i = 0; i < p->count; i++) taken |= p->columns[i] == c;
        if (!taken) columns[j] = c, values[j++] = 0;
    }
}

static void plant(uint16_t *m, int64_t row_start, const planted *p, int64_t below)
{
    for (int i = 0; i < p->count; i++) m[row_start + p->columns[i]] = (uint16_t)encode_f32(TOPK_BF16, p->values[i]);
    m[row_start + below] = (uint16_t)encode_f32(TOPK_BF16, -1.0f);
}

/* Runs the selection and checks every row against expected_row; plan_row says what a row holds. */
typedef void (*row_plan)(int64_t row, int64_t vocab, planted *p, int64_t *below);

static void check_large(topk_backend backend, int64_t batch, int64_t vocab, int64_t stride, row_plan plan_row)
{
    size_t elements = (size_t)((batch - 1) * stride + vocab);
    uint16_t *m = calloc(elements, sizeof *m);
    cr_assert(m, "cannot allocate %zu bf16 elements (%.1f GiB)", elements, (double)elements * 2 / (1 << 30));
    for (int64_t r = 0; r < batch; r++) {
        planted p;
        int64_t below;
        plan_row(r, vocab, &p, &below);
        plant(m, r * stride, &p, below);
    }
    /* the padding's first element would beat everything if a backend read past vocab */
    for (int64_t r = 0; r + 1 < batch && stride > vocab; r++) m[r * stride + vocab] = (uint16_t)nan_bits(TOPK_BF16, false, 1);

    topk_ctx *ctx = open_backend_or_skip(backend);
    size_t n = (size_t)(batch * K);
    uint16_t *values = malloc(n * sizeof *values);
    int64_t *indices = malloc(n * sizeof *indices);
    topk_status s = topk_select(ctx, m, TOPK_BF16, batch, vocab, stride, K, 0, values, indices);
    cr_assert(s == TOPK_OK, "%s B=%lld V=%lld stride=%lld: %s", backend_label(backend), (long long)batch,
              (long long)vocab, (long long)stride, topk_strerror(s));
    for (int64_t r = 0; r < batch; r++) {
        planted p;
        int64_t below, columns[K];
        uint16_t want[K];
        plan_row(r, vocab, &p, &below);
        expected_row(&p, below, columns, want);
        for (int j = 0; j < K; j++)
            cr_assert(indices[r * K + j] == columns[j] && values[r * K + j] == want[j],
                      "%s B=%lld V=%lld stride=%lld: row %lld rank %d is column %lld (bits 0x%04x), expected %lld "
                      "(0x%04x)", backend_label(backend), (long long)batch, (long long)vocab, (long long)stride,
                      (long long)r, j, (long long)indices[r * K + j], values[r * K + j], (long long)columns[j], want[j]);
    }
    free(values);
    free(indices);
    free(m);
    topk_ctx_free(ctx);
}

/* Three values per row at columns that move with the row, one of them in the row's last column. */
static void three_per_row(int64_t row, int64_t vocab, planted *p, int64_t *below)
{
    p->count = 3;
    p->columns[0] = (row * 7919 + 11) % vocab, p->values[0] = 3.0f;
    p->columns[1] = vocab - 1, p->values[1] = 2.0f;
    p->columns[2] = (row * 31 + 5) % (vocab / 2), p->values[2] = 1.5f;
    if (p->columns[0] == p->columns[1] || p->columns[0] == p->columns[2]) p->columns[0] = vocab / 2 + 1;
    *below = (row * 13 + 1) % (vocab / 2);
    while (*below == p->columns[0] || *below == p->columns[2]) ++*below;
}

/* One row of more than 2^31 elements: the best values sit past column 2^31. */
static void one_long_row(int64_t row, int64_t vocab, planted *p, int64_t *below)
{
    (void)row;
    p->count = 4;
    p->columns[0] = ((int64_t)1 << 31) + 50, p->values[0] = 5.0f;
    p->columns[1] = 7, p->values[1] = 4.0f;
    p->columns[2] = ((int64_t)1 << 31) - 1, p->values[2] = 3.0f;
    p->columns[3] = vocab - 1, p->values[3] = 2.5f;
    *below = 1;
}

/* 16385 rows of 131072 (2^31 + 2^17 elements, 4 GiB): the last row starts at element 2^31. */
Test(large, cpu_rows_past_2_31, .timeout = 600) { check_large(TOPK_BACKEND_CPU, 16385, 131072, 131072, three_per_row); }

/* One row of 2^31 + 100 elements: columns past 2^31 in the output, and a row the cpu backend splits. */
Test(large, cpu_one_row_past_2_31, .timeout = 600)
{
    check_large(TOPK_BACKEND_CPU, 1, ((int64_t)1 << 31) + 100, ((int64_t)1 << 31) + 100, one_long_row);
}

/* Three short rows 2^30 + 7 elements apart: the third starts past element 2^31 (byte 2^32), and only
 * the rows' pages are touched, so every backend runs it, the reference and offload included. */
static void strided_past_2_31(topk_backend backend)
{
    check_large(backend, 3, 1000, ((int64_t)1 << 30) + 7, three_per_row);
}

Test(large, reference) { strided_past_2_31(TOPK_BACKEND_REFERENCE); }
Test(large, cpu) { strided_past_2_31(TOPK_BACKEND_CPU); }
Test(large, offload) { strided_past_2_31(TOPK_BACKEND_OFFLOAD); }
