/*
 * Test data generation. The encoders here are the tests' own (round to nearest even, written from the
 * IEEE layouts) so the data does not depend on the library or on compiler support for _Float16.
 */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

uint64_t rng_next(rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

double rng_normalish(rng *r)
{
    double sum = 0;
    for (int i = 0; i < 4; i++) sum += (double)(rng_next(r) >> 11) * 0x1p-53;
    return (sum - 2.0) * 3.0;
}

const topk_dtype all_dtypes[3] = {TOPK_F32, TOPK_F16, TOPK_BF16};

int dtype_bytes(topk_dtype dtype) { return dtype == TOPK_F32 ? 4 : 2; }

const char *dtype_name(topk_dtype dtype)
{
    switch (dtype) {
    case TOPK_F32: return "fp32";
    case TOPK_F16: return "fp16";
    case TOPK_BF16: return "bf16";
    }
    return "unknown-dtype";
}

static uint32_t float_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return bits;
}

/* Drops the low `shift` bits of x, rounding to nearest with ties to even. */
static uint32_t shift_round_even(uint32_t x, int shift)
{
    if (shift == 0) return x;
    if (shift > 31) return 0;
    uint32_t kept = x >> shift, rest = x & ((1u << shift) - 1), half = 1u << (shift - 1);
    return kept + (rest > half || (rest == half && (kept & 1)));
}

static uint16_t f32_to_bf16(uint32_t bits)
{
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    /* A carry out of the mantissa correctly bumps the exponent, up to infinity. */
    return (uint16_t)(((bits >> 16) & 0x8000u) | shift_round_even(bits & 0x7FFFFFFFu, 16));
}

static uint16_t f32_to_f16(uint32_t bits)
{
    uint32_t sign = (bits >> 16) & 0x8000u, mag = bits & 0x7FFFFFFFu;
    if (mag > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
    if (mag >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* 65520 and up round to infinity */
    uint32_t exponent = mag >> 23;
    if (exponent < 113) { /* below 2^-14: an fp16 denormal (units of 2^-24) or zero */
        if (exponent == 0) return (uint16_t)sign;
        uint32_t significand = (mag & 0x7FFFFFu) | 0x800000u; /* value = significand * 2^(exponent-150) */
        return (uint16_t)(sign | shift_round_even(significand, (int)(126 - exponent)));
    }
    /* Rebias 127 -> 15 and round 23 mantissa bits to 10; a carry moves into the exponent. */
    return (uint16_t)(sign | shift_round_even(mag - (112u << 23), 13));
}

uint32_t encode_f32(topk_dtype dtype, float v)
{
    uint32_t bits = float_bits(v);
    switch (dtype) {
    case TOPK_F32: return bits;
    case TOPK_F16: return f32_to_f16(bits);
    case TOPK_BF16: return f32_to_bf16(bits);
    }
    return 0;
}

/* Field layout of each dtype: mantissa width and the exponent field's all-ones value in place. */
static int mantissa_width(topk_dtype dtype) { return dtype == TOPK_F32 ? 23 : dtype == TOPK_F16 ? 10 : 7; }

static uint32_t exponent_ones(topk_dtype dtype)
{
    return dtype == TOPK_F32 ? 0x7F800000u : dtype == TOPK_F16 ? 0x7C00u : 0x7F80u;
}

static uint32_t sign_bit(topk_dtype dtype, bool negative)
{
    return negative ? (dtype == TOPK_F32 ? 0x80000000u : 0x8000u) : 0;
}

uint32_t nan_bits(topk_dtype dtype, bool negative, uint32_t payload)
{
    uint32_t mask = (1u << mantissa_width(dtype)) - 1;
    payload &= mask;
    if (!payload) payload = 1;
    return sign_bit(dtype, negative) | exponent_ones(dtype) | payload;
}

uint32_t inf_bits(topk_dtype dtype, bool negative) { return sign_bit(dtype, negative) | exponent_ones(dtype); }

uint32_t denormal_bits(topk_dtype dtype, bool negative, uint32_t mantissa)
{
    uint32_t mask = (1u << mantissa_width(dtype)) - 1;
    mantissa &= mask;
    if (!mantissa) mantissa = 1;
    return sign_bit(dtype, negative) | mantissa;
}

void store_bits(topk_dtype dtype, void *base, int64_t i, uint32_t bits)
{
    if (dtype == TOPK_F32) {
        memcpy((char *)base + i * 4, &bits, 4);
    } else {
        uint16_t half = (uint16_t)bits;
        memcpy((char *)base + i * 2, &half, 2);
    }
}

uint32_t load_bits(topk_dtype dtype, const void *base, int64_t i)
{
    if (dtype == TOPK_F32) {
        uint32_t bits;
        memcpy(&bits, (const char *)base + i * 4, 4);
        return bits;
    }
    uint16_t half;
    memcpy(&half, (const char *)base + i * 2, 2);
    return half;
}

int64_t matrix_elements(int64_t batch, int64_t vocab, int64_t row_stride)
{
    return (batch - 1) * row_stride + vocab;
}

static uint32_t random_special(topk_dtype dtype, rng *r)
{
    bool negative = rng_next(r) & 1;
    switch (rng_below(r, 4)) {
    case 0: return nan_bits(dtype, negative, (uint32_t)rng_next(r));
    case 1: return inf_bits(dtype, negative);
    case 2: return sign_bit(dtype, negative); /* a signed zero */
    default: return denormal_bits(dtype, negative, (uint32_t)rng_next(r));
    }
}

void *random_matrix(topk_dtype dtype, int64_t batch, int64_t vocab, int64_t row_stride, uint64_t seed)
{
    rng r = {seed};
    void *m = malloc((size_t)matrix_elements(batch, vocab, row_stride) * (size_t)dtype_bytes(dtype));
    for (int64_t row = 0; row < batch; row++) {
        int64_t start = row * row_stride;
        bool specials = row & 1;
        for (int64_t c = 0; c < vocab; c++) {
            uint32_t bits = specials && rng_below(&r, 16) == 0 ? random_special(dtype, &r)
                                                               : encode_f32(dtype, (float)rng_normalish(&r));
            store_bits(dtype, m, start + c, bits);
        }
        if (row == batch - 1) break;
        for (int64_t c = vocab; c < row_stride; c++)
            store_bits(dtype, m, start + c, (c & 1) ? inf_bits(dtype, true) : nan_bits(dtype, false, 5));
    }
    return m;
}
