/*
 * Ordered keys: the contract's total order as unsigned integer order.
 *
 * Every value maps to an unsigned key such that a ranks above b exactly when key(a) > key(b):
 * positive floats get their sign bit set, negative floats are bit-inverted (so -0.0 sits just below
 * +0.0), and every NaN, whatever its sign and payload, becomes the all-ones key above +inf. fp16 and
 * bf16 keep 16-bit keys read straight from their bits: no conversion to fp32 anywhere.
 *
 * Selecting the smallest instead is one XOR with the key's all-ones mask: the order flips, NaN drops to
 * the bottom, and "larger key, then smaller index" still picks the winners.
 *
 * These functions are compiled for the host and for the GPU (declare target), so every backend ranks
 * with exactly the same arithmetic.
 */
#ifndef TOPK_KEYS_H
#define TOPK_KEYS_H

#include <stdint.h>

#pragma omp declare target

static inline uint32_t topk_key_f32(uint32_t bits)
{
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFFFFFu;
    return bits ^ ((uint32_t)((int32_t)bits >> 31) | 0x80000000u);
}

static inline uint32_t topk_key_f16(uint32_t bits)
{
    if ((bits & 0x7FFFu) > 0x7C00u) return 0xFFFFu;
    return bits ^ ((0u - (bits >> 15)) & 0x7FFFu) ^ 0x8000u;
}

static inline uint32_t topk_key_bf16(uint32_t bits)
{
    if ((bits & 0x7FFFu) > 0x7F80u) return 0xFFFFu;
    return bits ^ ((0u - (bits >> 15)) & 0x7FFFu) ^ 0x8000u;
}

/* One element as one 64-bit unsigned number, its composite: (ordered key << 32) | ~column. A larger
 * composite is exactly a better element under the contract's order (larger key first, then the smaller
 * column), one integer compare; the composites of a row are unique, and 0 is no element of a row of fewer
 * than 2^32 - 1 (it would need that column), so 0 pads. Every backend selects, merges and sorts these;
 * the sampler makes them from its own key (sample_key, which ranks NaN as -inf). */
static inline __attribute__((always_inline)) uint64_t topk_composite(uint32_t key, int64_t column)
{
    return (uint64_t)key << 32 | (uint32_t)~(uint32_t)column;
}

/* The column of a composite. */
static inline __attribute__((always_inline)) int64_t topk_composite_column(uint64_t composite)
{
    return (int64_t)(uint32_t)~(uint32_t)composite;
}

#pragma omp end declare target

#endif
