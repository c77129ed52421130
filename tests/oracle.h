/*
 * The tests' oracle: the contract's total order written a second, independent way.
 *
 * src/reference.c ranks integer keys made from the bits (src/common/keys.h). The oracle instead decodes
 * every element to a double with its own decoder and ranks with an explicit comparator on
 * (is NaN, value, sign of zero, column index), so a shared mistake in the key transform or the
 * reference's sort cannot hide in both.
 */
#ifndef TOPK_TEST_ORACLE_H
#define TOPK_TEST_ORACLE_H

#include <stdbool.h>
#include <stdint.h>

#include "topk.h"

/* The value of one element of dtype, exactly (every fp32, fp16 and bf16 value is a double). NaNs
 * decode to a NaN whose payload does not matter: the order treats all NaNs as equal. */
double oracle_decode(topk_dtype dtype, const void *element);

/* The contract's answer for a batch x vocab matrix (row r at input + r * row_stride elements): the
 * best k of each row, best first, as input bits and column indices, dense batch x k. */
void oracle_select(const void *input, topk_dtype dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                   int64_t k, bool smallest, void *values, int64_t *indices);

#endif
