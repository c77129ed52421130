/*
 * Test data: a seeded PRNG and the encoding of test values into each dtype's bits.
 *
 * Everything is built from bits that the tests choose, so a failing case can be reproduced from its
 * seed alone, and NaN payloads, signed zeros and denormals are exactly what the test asked for.
 */
#ifndef TOPK_TEST_GEN_H
#define TOPK_TEST_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "topk.h"

/* splitmix64: tiny, good enough for test data, and the same stream on every platform. */
typedef struct rng {
    uint64_t state;
} rng;

uint64_t rng_next(rng *r);
/* Uniform in [0, n). */
uint64_t rng_below(rng *r, uint64_t n);
/* Roughly normal with standard deviation ~1.7 (a sum of four uniforms): most values near 0, some far. */
double rng_normalish(rng *r);

/* fp32, fp16, bf16: every dtype the tests run. */
extern const topk_dtype all_dtypes[3];

/* Bytes of one element, written here rather than taken from topk_dtype_size, which is under test. */
int dtype_bytes(topk_dtype dtype);
const char *dtype_name(topk_dtype dtype);

/* The bits of v rounded to nearest-even in dtype (NaN becomes that dtype's quiet NaN). */
uint32_t encode_f32(topk_dtype dtype, float v);

/* A NaN of dtype with the given sign and payload; a zero payload is bumped to 1 so it stays a NaN. */
uint32_t nan_bits(topk_dtype dtype, bool negative, uint32_t payload);
/* +inf or -inf. */
uint32_t inf_bits(topk_dtype dtype, bool negative);
/* A denormal (exponent field 0) with the given nonzero mantissa, masked to the dtype's width. */
uint32_t denormal_bits(topk_dtype dtype, bool negative, uint32_t mantissa);

/* Element access by bits, for any dtype. */
void store_bits(topk_dtype dtype, void *base, int64_t i, uint32_t bits);
uint32_t load_bits(topk_dtype dtype, const void *base, int64_t i);

/* A batch x row_stride matrix (the last row only vocab long) of normal-ish values. Odd rows also get
 * specials (NaNs, infinities, signed zeros, denormals) at random places. The padding between vocab and
 * row_stride holds NaN and -inf, which would win a largest or smallest selection, so a backend that
 * reads past vocab is caught. Returns malloc'd memory of exactly the size the API may read. */
void *random_matrix(topk_dtype dtype, int64_t batch, int64_t vocab, int64_t row_stride, uint64_t seed);

/* The number of elements the API may read: (batch - 1) * row_stride + vocab. */
int64_t matrix_elements(int64_t batch, int64_t vocab, int64_t row_stride);

#endif
