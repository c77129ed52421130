/*
 * Tiny cases whose answers are written out by hand from the contract, not computed. They check the
 * oracle itself (everything else trusts it), then every backend; and they check that the comparison
 * used everywhere does notice a wrong answer, so a passing suite means something.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "check.h"
#include "gen.h"
#include "oracle.h"

enum { MAX_ELEMENTS = 16 };

typedef struct known_answer {
    const char *name;
    topk_dtype dtype;
    int64_t batch, vocab, row_stride, k;
    bool smallest;
    uint32_t bits[MAX_ELEMENTS];       /* the input, (batch - 1) * row_stride + vocab elements */
    int64_t expected[MAX_ELEMENTS];    /* batch x k column indices, best first */
} known_answer;

/* fp32 bits */
#define ONE 0x3F800000u
#define TWO 0x40000000u
#define THREE 0x40400000u
#define FIVE 0x40A00000u
#define SEVEN 0x40E00000u
#define NINE 0x41100000u
#define NEG_ZERO 0x80000000u
#define INF 0x7F800000u
#define NEG_INF 0xFF800000u
#define QNAN 0x7FC00000u

static const known_answer cases[] = {
    /* NaN on top, then the two 1s by index, then +0.0 above -0.0. */
    {"nan-ones-zeros", TOPK_F32, 1, 5, 5, 5, false, {ONE, QNAN, NEG_ZERO, 0, ONE}, {1, 0, 4, 3, 2}},
    {"nan-ones-zeros", TOPK_F32, 1, 5, 5, 5, true, {ONE, QNAN, NEG_ZERO, 0, ONE}, {2, 3, 0, 4, 1}},
    /* A negative signalling NaN and a positive one rank equal (index order), above +inf. */
    {"infinities-nans", TOPK_F32, 1, 5, 5, 5, false, {NEG_INF, INF, 0xFF800123u, THREE, 0x7F800001u}, {2, 4, 1, 3, 0}},
    {"infinities-nans", TOPK_F32, 1, 5, 5, 5, true, {NEG_INF, INF, 0xFF800123u, THREE, 0x7F800001u}, {0, 3, 1, 2, 4}},
    {"infinities-nans", TOPK_F32, 1, 5, 5, 2, false, {NEG_INF, INF, 0xFF800123u, THREE, 0x7F800001u}, {2, 4}},
    /* k stops inside a run of 5s: the smaller indices win. */
    {"tie-cut", TOPK_F32, 1, 5, 5, 2, false, {TWO, FIVE, FIVE, FIVE, ONE}, {1, 2}},
    {"tie-cut", TOPK_F32, 1, 5, 5, 3, true, {TWO, FIVE, FIVE, FIVE, ONE}, {4, 0, 1}},
    /* Two rows with a NaN in the padding between them, which must never be picked. */
    {"strided", TOPK_F32, 2, 2, 3, 1, false, {SEVEN, NINE, QNAN, NINE, SEVEN}, {1, 0}},
    {"strided", TOPK_F32, 2, 2, 3, 2, true, {SEVEN, NINE, QNAN, NINE, SEVEN}, {0, 1, 1, 0}},
    /* fp16: 1.0, +-smallest denormal, +-0, negative NaN. */
    {"fp16-denormals", TOPK_F16, 1, 6, 6, 3, false, {0x3C00, 0x0001, 0x8001, 0x0000, 0x8000, 0xFE01}, {5, 0, 1}},
    {"fp16-denormals", TOPK_F16, 1, 6, 6, 6, true, {0x3C00, 0x0001, 0x8001, 0x0000, 0x8000, 0xFE01}, {2, 4, 3, 1, 0, 5}},
    /* fp16: smallest normal, largest denormal, zeros, and their negatives, already in order. */
    {"fp16-normal-edge", TOPK_F16, 1, 6, 6, 6, false, {0x0400, 0x03FF, 0x0000, 0x8000, 0x83FF, 0x8400}, {0, 1, 2, 3, 4, 5}},
    {"fp16-normal-edge", TOPK_F16, 1, 6, 6, 6, true, {0x0400, 0x03FF, 0x0000, 0x8000, 0x83FF, 0x8400}, {5, 4, 3, 2, 1, 0}},
    /* bf16: 1.0, the next bf16 up, 1.0 again, -inf, a NaN. */
    {"bf16-neighbours", TOPK_BF16, 1, 5, 5, 4, false, {0x3F80, 0x3F81, 0x3F80, 0xFF80, 0x7FC1}, {4, 1, 0, 2}},
    {"bf16-neighbours", TOPK_BF16, 1, 5, 5, 2, true, {0x3F80, 0x3F81, 0x3F80, 0xFF80, 0x7FC1}, {3, 0}},
    /* bf16 NaNs only, four payloads and signs: index order, bits kept. */
    {"bf16-all-nan", TOPK_BF16, 1, 4, 4, 4, false, {0x7FC0, 0xFFC0, 0x7F81, 0xFF81}, {0, 1, 2, 3}},
    {"bf16-all-nan", TOPK_BF16, 1, 4, 4, 2, true, {0x7FC0, 0xFFC0, 0x7F81, 0xFF81}, {0, 1}},
};
enum { CASE_COUNT = sizeof cases / sizeof cases[0] };

static select_case case_of(const known_answer *a, topk_backend backend)
{
    return (select_case){backend, a->dtype, a->batch, a->vocab, a->row_stride, a->k, a->smallest, a->name};
}

/* The input matrix and the expected outputs (values = the input's bits at the expected indices). */
static void materialise(const known_answer *a, void *input, selection *expected)
{
    for (int64_t i = 0; i < matrix_elements(a->batch, a->vocab, a->row_stride); i++)
        store_bits(a->dtype, input, i, a->bits[i]);
    for (int64_t r = 0; r < a->batch; r++) {
        for (int64_t j = 0; j < a->k; j++) {
            int64_t column = a->expected[r * a->k + j];
            expected->indices[r * a->k + j] = column;
            store_bits(a->dtype, expected->values, r * a->k + j, a->bits[r * a->row_stride + column]);
        }
    }
    expected->row_len = a->k;
}

Test(known_answers, oracle)
{
    for (int i = 0; i < CASE_COUNT; i++) {
        uint32_t input[MAX_ELEMENTS], values[MAX_ELEMENTS];
        int64_t indices[MAX_ELEMENTS];
        selection expected = {values, indices, 0};
        materialise(&cases[i], input, &expected);
        select_case c = case_of(&cases[i], TOPK_BACKEND_REFERENCE);
        selection got = oracle_selection(&c, input, false);
        char data[64];
        snprintf(data, sizeof data, "%s, computed by the oracle", cases[i].name);
        c.data = data;
        assert_same(&c, &got, &expected, "the hand-written answer");
        selection_free(&got);
    }
}

static void backend_answers(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    for (int i = 0; i < CASE_COUNT; i++) {
        uint32_t input[MAX_ELEMENTS], values[MAX_ELEMENTS];
        int64_t indices[MAX_ELEMENTS];
        selection expected = {values, indices, 0};
        materialise(&cases[i], input, &expected);
        select_case c = case_of(&cases[i], backend);
        selection got = run_select(ctx, &c, input);
        assert_same(&c, &got, &expected, "the hand-written answer");
        selection_free(&got);
    }
    topk_ctx_free(ctx);
}

Test(known_answers, reference) { backend_answers(TOPK_BACKEND_REFERENCE); }
Test(known_answers, cpu) { backend_answers(TOPK_BACKEND_CPU); }
Test(known_answers, offload) { backend_answers(TOPK_BACKEND_OFFLOAD); }

/* Plausible wrong answers to the first case ([1, NaN, -0.0, +0.0, 1], largest, k = 5) must each be
 * reported by find_difference, and the oracle must not produce any of them. */
Test(known_answers, wrong_answers_are_caught)
{
    const known_answer *a = &cases[0];
    uint32_t input[MAX_ELEMENTS], values[MAX_ELEMENTS];
    int64_t indices[MAX_ELEMENTS];
    selection right = {values, indices, 0};
    materialise(a, input, &right);
    select_case c = case_of(a, TOPK_BACKEND_REFERENCE);
    selection oracle = oracle_selection(&c, input, false);

    static const struct {
        const char *what;
        int64_t indices[5];
        uint32_t changed_value; /* replaces the value at rank 0 when nonzero */
    } wrong[] = {
        {"zeros in float order (-0.0 == +0.0, by index)", {1, 0, 4, 2, 3}, 0},
        {"ties by larger index first", {1, 4, 0, 3, 2}, 0},
        {"NaN ranked last, as IEEE comparisons would", {0, 4, 3, 2, 1}, 0},
        {"the right index with the NaN canonicalised", {1, 0, 4, 3, 2}, 0x7FC00001u},
    };
    char difference[256];
    cr_assert(!find_difference(&c, &oracle, &right, difference, sizeof difference), "oracle: %s", difference);
    for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
        uint32_t wrong_values[5];
        selection bad = {wrong_values, (int64_t *)wrong[w].indices, 5};
        for (int j = 0; j < 5; j++) wrong_values[j] = input[wrong[w].indices[j]];
        if (wrong[w].changed_value) wrong_values[0] = wrong[w].changed_value;
        cr_assert(find_difference(&c, &bad, &right, difference, sizeof difference),
                  "the checker accepted a wrong answer: %s", wrong[w].what);
        cr_assert(find_difference(&c, &oracle, &bad, difference, sizeof difference),
                  "the oracle gave a wrong answer: %s", wrong[w].what);
    }
    selection_free(&oracle);
}
