/*
 * The input matrix: standard normal values from a fixed seed, the same bits on every machine, so that
 * bench/peers/common.py (every peer's input) can build the very same matrix in NumPy and
 * `topk-bench --dump` can prove it.
 *
 * The recipe (common.py follows it step for step; change both or neither):
 *   1. Element (r, c) of the logical batch x vocab matrix has number j = r * vocab + c, so the values do
 *      not depend on the stride.
 *   2. Its own splitmix64 stream starts from state  s = next(seed + j * GAMMA),  i.e. the j-th output of
 *      splitmix64 seeded with `seed`, where next() adds GAMMA to the state and mixes it (see below).
 *   3. Marsaglia's polar method on that stream: u = 2 * unit(next(s)) - 1, v = 2 * unit(next(s)) - 1,
 *      unit(x) = (x >> 11) * 2^-53, s2 = u*u + v*v, retried until 0 < s2 < 1; the value is
 *      u * sqrt(-2 * ln(s2) / s2) in double. Only +, -, *, / and sqrt are used, which IEEE rounds the
 *      same everywhere; ln is our own series below because libm and NumPy's SIMD log may differ in the
 *      last bit (and cos/sin, which Box-Muller needs, likewise: hence the polar form).
 *   4. Rounded to fp32 (round to nearest even), then for fp16/bf16 from those fp32 bits to 16 bits, again
 *      round to nearest even, by the integer code below.
 *   5. Padding columns (vocab <= c < row_stride) alternate NaN and -inf: NaN ranks first when selecting
 *      the largest and -inf when selecting the smallest, so a backend that reads past vocab gets caught.
 * Built with -ffp-contract=off: a fused multiply-add would change the bits.
 */
#include <math.h>
#include <string.h>

#include "bench.h"

#define GAMMA 0x9E3779B97F4A7C15u

static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += GAMMA);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static double unit_interval(uint64_t x) { return (double)(x >> 11) * 0x1p-53; }

/* ln(x) for 0 < x < 1: x = m * 2^e with sqrt(1/2) <= m < sqrt(2), and ln(m) = 2 atanh(t), t = (m-1)/(m+1),
 * |t| < 0.172, summed as 2t (1 + t^2/3 + t^4/5 + ...) by Horner; 12 terms leave an error below 1e-19. */
static double log_series(double x)
{
    int e;
    double m = frexp(x, &e);
    if (m < 0x1.6a09e667f3bcdp-1) {
        m *= 2;
        e -= 1;
    }
    double t = (m - 1) / (m + 1), t2 = t * t, series = 0;
    for (int n = 11; n >= 0; n--) series = series * t2 + 1.0 / (2 * n + 1);
    return e * 0x1.62e42fefa39efp-1 + 2 * t * series;
}

static double normal_at(uint64_t seed, uint64_t j)
{
    uint64_t master = seed + j * GAMMA;
    uint64_t stream = splitmix64_next(&master);
    double u, v, s2;
    do {
        u = 2 * unit_interval(splitmix64_next(&stream)) - 1;
        v = 2 * unit_interval(splitmix64_next(&stream)) - 1;
        s2 = u * u + v * v;
    } while (s2 >= 1 || s2 == 0);
    return u * sqrt(-2 * log_series(s2) / s2);
}

static uint32_t f32_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return bits;
}

/* Finite inputs only, which is all that normal_at makes. */
static uint16_t bf16_from_f32(uint32_t bits) { return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16); }

static uint16_t f16_from_f32(uint32_t bits)
{
    uint32_t sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFFFFFFu;
    if (magnitude >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520 rounds to inf */
    if (magnitude >= 0x38800000u) {                                 /* >= 2^-14: normal in fp16 */
        uint32_t rebiased = magnitude - 0x38000000u;                 /* exponent bias 127 -> 15 */
        return (uint16_t)(sign | ((rebiased + 0xFFFu + ((rebiased >> 13) & 1)) >> 13));
    }
    uint32_t exponent = magnitude >> 23;
    if (exponent < 102) return (uint16_t)sign; /* below 2^-25: rounds to zero */
    /* Subnormal: the value in units of 2^-24 is mantissa >> shift, rounded to nearest even. */
    uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u, shift = 126 - exponent;
    uint32_t result = mantissa >> shift, rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (result & 1))) result++;
    return (uint16_t)(sign | result);
}

/* NaN, then -inf, then NaN ...: see step 5. */
static void fill_padding(char *element, topk_dtype dtype, int64_t padding_column)
{
    static const uint32_t nan_bits[] = {[TOPK_F32] = 0x7FC00000u, [TOPK_F16] = 0x7E00u, [TOPK_BF16] = 0x7FC0u};
    static const uint32_t minus_inf_bits[] = {[TOPK_F32] = 0xFF800000u, [TOPK_F16] = 0xFC00u, [TOPK_BF16] = 0xFF80u};
    uint32_t bits = padding_column % 2 ? minus_inf_bits[dtype] : nan_bits[dtype];
    if (dtype == TOPK_F32) {
        memcpy(element, &bits, 4);
    } else {
        uint16_t half_bits = (uint16_t)bits;
        memcpy(element, &half_bits, 2);
    }
}

void matrix_fill(void *data, topk_dtype dtype, int64_t batch, int64_t vocab, int64_t row_stride, uint64_t seed)
{
    size_t elem = (size_t)topk_dtype_size(dtype);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < batch; r++) {
        char *row = (char *)data + (size_t)(r * row_stride) * elem;
        for (int64_t c = 0; c < vocab; c++) {
            uint32_t bits = f32_bits((float)normal_at(seed, (uint64_t)(r * vocab + c)));
            if (dtype == TOPK_F32) {
                memcpy(row + (size_t)c * 4, &bits, 4);
            } else {
                uint16_t half_bits = dtype == TOPK_F16 ? f16_from_f32(bits) : bf16_from_f32(bits);
                memcpy(row + (size_t)c * 2, &half_bits, 2);
            }
        }
        for (int64_t c = vocab; c < row_stride; c++) fill_padding(row + (size_t)c * elem, dtype, c - vocab);
    }
}

static double f16_as_double(uint16_t bits)
{
    int exponent = (bits >> 10) & 0x1F, mantissa = bits & 0x3FF;
    double magnitude = exponent == 0    ? ldexp(mantissa, -24)
                       : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                        : ldexp(mantissa | 0x400, exponent - 25);
    return bits & 0x8000 ? -magnitude : magnitude;
}

double value_as_double(const void *values, topk_dtype dtype, int64_t i)
{
    if (dtype == TOPK_F32) {
        float f;
        memcpy(&f, (const char *)values + (size_t)i * 4, 4);
        return f;
    }
    uint16_t bits;
    memcpy(&bits, (const char *)values + (size_t)i * 2, 2);
    if (dtype == TOPK_F16) return f16_as_double(bits);
    uint32_t widened = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &widened, 4);
    return f;
}
