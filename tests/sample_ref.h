/*
 * An independent sampler for the tests: the filters of topk_sample in double precision, with a full sort
 * of every row, and its own Philox-4x32-10 (written from the Random123 description, not from the
 * library's code). Tokens can only be compared where the draw, a filter's cut or the min-p bar is not
 * within rounding of a boundary: the results say when a row is that close ("ambiguous").
 */
#ifndef TOPK_TEST_SAMPLE_REF_H
#define TOPK_TEST_SAMPLE_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "topk.h"

/* How close (in normalised probability) to a boundary a row counts as ambiguous. */
#define REF_TOLERANCE 3e-6

typedef struct ref_params {
    double temperature, top_p, min_p;
    int64_t top_k;
} ref_params;

/* Philox-4x32-10 of counter ctr under key. */
void ref_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The value of an element as a double (NaN stays NaN). */
double ref_decode(topk_dtype dtype, uint32_t bits);

/* The row's distribution after every filter, in double: probs[0..vocab), 0 for filtered-out tokens.
 * Returns false (ambiguous) when a top-p or min-p cut is within REF_TOLERANCE of its bar. */
bool ref_distribution(topk_dtype dtype, const void *row, int64_t vocab, ref_params p, double *probs);

typedef struct ref_pick {
    int64_t token;
    double prob;
    bool ambiguous; /* a cut or the draw is within REF_TOLERANCE of a boundary: do not compare */
} ref_pick;

/* Row `row_index` of a call with this seed and offset. */
ref_pick ref_sample(topk_dtype dtype, const void *row, int64_t vocab, ref_params p, uint64_t seed, uint64_t offset,
                    uint64_t row_index);

/* The row's best element under the sampling order (NaN as -inf, +0 above -0, ties to the smaller index). */
int64_t ref_argmax(topk_dtype dtype, const void *row, int64_t vocab);

#endif
