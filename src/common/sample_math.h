/*
 * The per-element and per-list math of sampling, compiled for the host and for the GPU (declare
 * target) from this one text, so that every backend computes every bit the same way.
 *
 * Weights are integers. A token's weight is W = trunc(w * 2^s) with w = exp((x - max) / T) in (0, 1]
 * computed by sample_exp below (our own: range reduction by ln 2 and a fixed degree-7 polynomial,
 * float only, no libm, no fused multiply-add since the library builds with -ffp-contract=off), and
 * s = 62 - floor(log2(vocab)), so that the sum of a whole row stays below 2^63. Every sum of weights is
 * then an integer sum, exact and independent of order: any split over threads, teams or SIMD lanes
 * gives the same bits, which is what makes the backends agree without a prescribed reduction tree.
 * The price: a token with w < 2^-s (for vocab 128256: below 2^-46, i.e. logit more than ~32 T under
 * the best) has weight 0 and is never drawn; all such tokens together hold less than vocab^2 / 2^63 of
 * the mass.
 *
 * The draw: Philox-4x32-10 (Salmon et al., Random123) with key (seed lo, seed hi) and counter
 * (offset lo, offset hi, row lo, row hi) gives four words x0..x3; r = x1 << 32 | x0 is a uniform
 * 64-bit fraction u = r / 2^64, and the drawn integer is R = floor(u * S) = mulhi(r, S) in [0, S),
 * where S is the kept mass. The token is the first one, in best-first order (the contract's total
 * order), at which the cumulative kept mass exceeds R. No float uniform is made, and no log is needed.
 */
#ifndef TOPK_SAMPLE_MATH_H
#define TOPK_SAMPLE_MATH_H

#include <stdbool.h>
#include <stdint.h>

#include "keys.h"
#include "topk.h"

#define SAMPLE_INLINE static inline __attribute__((always_inline))

/* One row's filters after validation: top_k 0 or >= vocab is "off", top_p 1 is "off", min_p 0 is
 * "off"; temperature 0 (or top_k 1) is greedy. */
typedef struct sample_row {
    float temperature, top_p, min_p;
    int64_t top_k;
} sample_row;

/* A call's per-row parameter arrays, each batch values or NULL (the call's scalar then serves every
 * row). On the GPU they are device memory: the caller's with TOPK_DEVICE_POINTERS, else a copy. */
typedef struct sample_arrays {
    const float *temperatures;
    const int64_t *top_ks;
    const float *top_ps, *min_ps;
} sample_arrays;

/* What a row's draw gave. */
typedef struct sample_pick {
    int64_t token;
    float prob;
} sample_pick;

/* topk_sample_logprobs's outputs (topk.h), each NULL when not asked for; top_n is 0 without top outputs.
 * Kernels get them as five scalars, not as this struct (DESIGN.md: structs are not passed to a region). */
typedef struct sample_logprobs {
    float *raw, *processed;
    int64_t top_n;
    int64_t *top_tokens;
    float *top_logprobs;
} sample_logprobs;

#pragma omp declare target

typedef union sample_f32 {
    float f;
    uint32_t u;
} sample_f32;

typedef union sample_f64 {
    double f;
    uint64_t u;
} sample_f64;

SAMPLE_INLINE float sample_bits_to_f32(uint32_t u)
{
    sample_f32 v;
    v.u = u;
    return v.f;
}

SAMPLE_INLINE uint32_t sample_f32_bits(float f)
{
    sample_f32 v;
    v.f = f;
    return v.u;
}

/* The element's bits (16-bit dtypes in the low half). */
SAMPLE_INLINE uint32_t sample_bits_at(const char *row, int dtype, int64_t column)
{
    if (dtype == TOPK_F32) return ((const uint32_t *)row)[column];
    return ((const uint16_t *)row)[column];
}

/* The sampling key: the contract's ordered key (keys.h) with NaN ranked as -inf, and 16-bit keys moved
 * to the top half, so that keys of every dtype are 32-bit and compare like the values they stand for. */
SAMPLE_INLINE uint32_t sample_key(int dtype, uint32_t bits)
{
    if (dtype == TOPK_F32) return (bits & 0x7FFFFFFFu) > 0x7F800000u ? 0x007FFFFFu : topk_key_f32(bits);
    if (dtype == TOPK_F16) return ((bits & 0x7FFFu) > 0x7C00u ? 0x03FFu : topk_key_f16(bits)) << 16;
    return ((bits & 0x7FFFu) > 0x7F80u ? 0x007Fu : topk_key_bf16(bits)) << 16;
}

/* The bits of the value whose sampling key is `key` (the inverse of sample_key, except that NaN's key gives
 * -inf's bits, which sample_value reads as NaN is read anyway). 16-bit dtypes in the low half. */
SAMPLE_INLINE uint32_t sample_key_bits(int dtype, uint32_t key)
{
    if (dtype == TOPK_F32) return key & 0x80000000u ? key ^ 0x80000000u : ~key;
    uint32_t half = key >> 16;
    return half & 0x8000u ? half ^ 0x8000u : half ^ 0xFFFFu;
}

/* The value as a float, exactly; NaN becomes -inf. */
SAMPLE_INLINE float sample_value(int dtype, uint32_t bits)
{
    uint32_t f;
    if (dtype == TOPK_F32) {
        f = bits;
    } else if (dtype == TOPK_BF16) {
        f = bits << 16;
    } else {
        uint32_t sign = (bits & 0x8000u) << 16, e = (bits >> 10) & 0x1Fu, m = bits & 0x3FFu;
        if (e == 0) {
            float v = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
            return sign ? -v : v;
        }
        f = e == 31 ? sign | 0x7F800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
    }
    if ((f & 0x7FFFFFFFu) > 0x7F800000u) return -__builtin_inff();
    return sample_bits_to_f32(f);
}

/* The key of -inf, which also stands for NaN: a row whose best key is this has nothing to draw. */
SAMPLE_INLINE bool sample_key_is_minus_inf(uint32_t key) { return key <= 0x007FFFFFu; }

/* exp(z) for z <= 0 (z = -inf allowed), deterministic on every target: z = n ln2 + r with |r| <= ~0.35
 * (ln 2 split in a 9-bit head, so n * head is exact), e^r by Horner on the degree-7 Taylor polynomial
 * (truncation error < 6e-9), times 2^n built from bits. Below -86 it returns 0, so every result is 0
 * or a normal float (no denormals, whose flushing could differ between targets). exp(0) is exactly 1. */
SAMPLE_INLINE float sample_exp(float z)
{
    if (!(z >= -86.0f)) return 0.0f;
    float kf = z * 1.44269502162933349609375f;
    int n = (int)(kf - 0.5f);
    float nf = (float)n;
    float r = (z - nf * 0.693359375f) - nf * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * sample_bits_to_f32((uint32_t)(n + 127) << 23);
}

/* How a row turns values into weights: w = exp((x - max) * (1 / T)), or, when the row's best is +inf,
 * w = 1 for the +inf tokens and 0 for all others (they share the mass equally). */
typedef struct sample_scale {
    float max, inv_t;
    bool inf_max;
    float scale; /* 2^s */
} sample_scale;

/* s = 62 - floor(log2(n)): n weights of at most 2^s sum to less than 2^63. */
SAMPLE_INLINE float sample_weight_scale(int64_t n)
{
    int s = 62;
    for (int64_t v = n; v > 1; v >>= 1) s--;
    return sample_bits_to_f32((uint32_t)(s + 127) << 23);
}

SAMPLE_INLINE sample_scale sample_scale_make(float max, float temperature, int64_t vocab)
{
    sample_scale sc = {.max = max, .inv_t = 1.0f / temperature, .inf_max = max == __builtin_inff()};
    sc.scale = sample_weight_scale(vocab);
    return sc;
}

/* The float weight w in [0, 1]. */
SAMPLE_INLINE float sample_w(sample_scale sc, float x)
{
    if (sc.inf_max) return x == sc.max ? 1.0f : 0.0f;
    float d = x - sc.max;
    return sample_exp(d == 0.0f ? 0.0f : d * sc.inv_t);
}

/* The integer weight W = trunc(w * 2^s). */
SAMPLE_INLINE uint64_t sample_fixed(sample_scale sc, float w) { return (uint64_t)(w * sc.scale); }

/* Probabilities given to the renormalising helpers become weights the same way, scaled by a power of
 * two so that the row's largest is below 2^s: Q = trunc(p * 2^(s - E)), p_max < 2^E. Entries that are
 * not finite and > 0 weigh 0. */
SAMPLE_INLINE double sample_prob_scale(float p_max, int64_t vocab)
{
    int s = 62;
    for (int64_t v = vocab; v > 1; v >>= 1) s--;
    sample_f32 m;
    m.f = p_max;
    int e = (int)((m.u >> 23) & 0xFFu) - 126; /* p_max < 2^e for normals; denormals: e = -126 */
    sample_f64 f;
    f.u = (uint64_t)(s - e + 1023) << 52;
    return f.f;
}

SAMPLE_INLINE uint64_t sample_prob_fixed(double scale, float p)
{
    if (!(p > 0.0f) || p == __builtin_inff()) return 0;
    return (uint64_t)((double)p * scale);
}

/* log(y) for a finite normal y > 0, in double, the same bits on every target (no libm, no contraction):
 * y = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(t) with t = (m - 1) / (m + 1), |t| < 0.1716,
 * by its series up to t^21 (the rest is below 3e-18). Used once per row, by the logprobs (topk.h). */
SAMPLE_INLINE double sample_log(double y)
{
    sample_f64 v;
    v.f = y;
    int e = (int)((v.u >> 52) & 0x7FFu) - 1023;
    v.u = (v.u & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    if (v.f > 1.4142135623730951) {
        v.f *= 0.5;
        e++;
    }
    double t = (v.f - 1.0) / (v.f + 1.0), t2 = t * t, series = 1.0 / 21.0;
    for (int j = 19; j >= 1; j -= 2) series = series * t2 + 1.0 / (double)j;
    return (double)e * 0.69314718055994530942 + 2.0 * t * series;
}

/* The high 64 bits of a * b, from 32-bit halves. */
SAMPLE_INLINE uint64_t sample_mulhi(uint64_t a, uint64_t b)
{
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* Philox-4x32-10: returns x1 << 32 | x0 of the block for counter (offset, row) under key seed. */
SAMPLE_INLINE uint64_t sample_philox(uint64_t seed, uint64_t offset, uint64_t row)
{
    uint32_t c0 = (uint32_t)offset, c1 = (uint32_t)(offset >> 32), c2 = (uint32_t)row, c3 = (uint32_t)(row >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint64_t)c1 << 32 | c0;
}

/* Row r's parameters: its entry of each per-row array, else the call's scalar. */
SAMPLE_INLINE sample_row sample_row_at(sample_arrays a, sample_row every, int64_t r)
{
    return (sample_row){.temperature = a.temperatures ? a.temperatures[r] : every.temperature,
                        .top_p = a.top_ps ? a.top_ps[r] : every.top_p,
                        .min_p = a.min_ps ? a.min_ps[r] : every.min_p,
                        .top_k = a.top_ks ? a.top_ks[r] : every.top_k};
}

/* Whether a row's parameters are in range (topk.h): temperature finite and >= 0 (> 0 for topk_softmax,
 * where 0 has no meaning), top_k in [0, vocab], top_p in (0, 1], min_p in [0, 1]. The host checks
 * parameters it can read before a call; a kernel checks those it reads from device memory. NaN fails
 * every comparison, so it is out of range everywhere. */
SAMPLE_INLINE bool sample_row_valid(sample_row rp, int64_t vocab, bool zero_temperature_allowed)
{
    float t = rp.temperature;
    bool t_ok = t == t && t <= 3.4028234663852886e38f && (zero_temperature_allowed ? t >= 0.0f : t > 0.0f);
    return t_ok && rp.top_k >= 0 && rp.top_k <= vocab && rp.top_p > 0.0f && rp.top_p <= 1.0f && rp.min_p >= 0.0f &&
           rp.min_p <= 1.0f;
}

/* Row `row`'s random bits (topk.h): (offset, row) under seed; with per-row seeds, (offsets[row] or
 * offset, 0) under seeds[row], so that the row's position does not matter. */
SAMPLE_INLINE uint64_t sample_row_random(uint64_t seed, uint64_t offset, const uint64_t *seeds,
                                         const uint64_t *offsets, int64_t row)
{
    uint64_t o = offsets ? offsets[row] : offset;
    return seeds ? sample_philox(seeds[row], o, 0) : sample_philox(seed, o, (uint64_t)row);
}

/* The least mass a top-p prefix must reach: ceil(p * S) in double, within [1, S]. */
SAMPLE_INLINE uint64_t sample_top_p_target(float top_p, uint64_t total)
{
    double want = (double)top_p * (double)total;
    uint64_t t = want >= 18446744073709551615.0 ? total : (uint64_t)want;
    if ((double)t < want) t++;
    if (t > total) t = total;
    return t ? t : 1;
}

/* weight / total as a float (the division in double, then one rounding to float). */
SAMPLE_INLINE float sample_ratio(uint64_t weight, uint64_t total)
{
    return (float)((double)weight / (double)total);
}

/* How many of a row's best topk_sample needs, when a top-k list serves it: 1 for a greedy row, top_k
 * for a real top-k filter of at most `most` (each backend's list limit), else 0: the row is sampled the
 * whole-row way. Either way gives the same draw (sample_from_list computes sample_team_draw_row's function
 * on the row's top n). */
SAMPLE_INLINE int64_t sample_list_length(sample_row rp, int64_t vocab, int64_t most)
{
    if (rp.temperature == 0.0f || rp.top_k == 1) return 1;
    return rp.top_k > 1 && rp.top_k < vocab && rp.top_k <= most ? rp.top_k : 0;
}

/* How many of a row's best topk_sample tries to draw from when the row has no top-k filter but top-p or
 * min-p (temperature > 0): `nucleus` (the caller's list length, 0: none; at most vocab), else 0. Unlike a
 * top-k list the nucleus list serves only when the row's kept set turns out to lie inside it
 * (sample_team_nucleus); the draw is then the same, else the row goes the whole-row way. */
SAMPLE_INLINE int64_t sample_nucleus_length(sample_row rp, int64_t vocab, int64_t nucleus)
{
    bool no_top_k = rp.top_k == 0 || rp.top_k >= vocab;
    bool filtered = rp.top_p < 1.0f || rp.min_p > 0.0f;
    return rp.temperature > 0.0f && rp.top_k != 1 && no_top_k && filtered ? (nucleus < vocab ? nucleus : vocab) : 0;
}

/* sample_exp is not monotone to the last bit (its range reduction and its polynomial each round), but
 * nearly: for every float z <= 0, sample_exp(z') <= sample_exp(z) * (1 + 2^-23) for all z' <= z (an
 * exhaustive scan of every float, tests/test_sample_nucleus.c: the worst is 2^-23.6). So when the
 * weight w of a row's n-th best satisfies w * (1 + 2^-22) < min_p, every token below the n-th (whose
 * logit, and so whose z, is at most the n-th's) has weight < min_p: min-p cuts the whole rest of the row. */
SAMPLE_INLINE bool sample_min_p_cuts_below(float w, float min_p)
{
    return (double)w * (1.0 + 0x1p-22) < (double)min_p;
}

/* A NaN of the dtype (raw bits). The library's order ranks NaN first and sampling ranks it as -inf, so
 * a selected list that starts with one cannot serve sample_from_list. */
SAMPLE_INLINE bool sample_bits_are_nan(int dtype, uint32_t bits)
{
    if (dtype == TOPK_F32) return (bits & 0x7FFFFFFFu) > 0x7F800000u;
    return (bits & 0x7FFFu) > (dtype == TOPK_F16 ? 0x7C00u : 0x7F80u);
}

/* Sampling from a row's candidates given best first: list[0..n) are composites in descending order (the
 * row's top n under the sampling order, n >= 1). The whole of topk_sample's filtering after top-k, in
 * three steps that a team can share out (offload/sample_fused.c) or one thread run in turn
 * (sample_from_list): the scale, from the best; every entry's weight; the top-p prefix, min-p and the
 * draw, in list order. Weights are integers, so who computes which does not change the draw. */

/* The row's scale from its best value; false when the pick is list[0] with probability 1 (greedy, one
 * entry, or a best of -inf: nothing else has weight). */
SAMPLE_INLINE bool sample_list_scale_of(float max, int64_t vocab, int64_t n, sample_row rp, sample_scale *sc)
{
    if (n == 1 || rp.temperature == 0.0f || max == -__builtin_inff()) return false;
    *sc = sample_scale_make(max, rp.temperature, vocab);
    return true;
}

/* The same, reading the best value from the row. */
SAMPLE_INLINE bool sample_list_scale(const char *row, int dtype, int64_t vocab, const uint64_t *list, int64_t n,
                                     sample_row rp, sample_scale *sc)
{
    return sample_list_scale_of(sample_value(dtype, sample_bits_at(row, dtype, topk_composite_column(list[0]))),
                                vocab, n, rp, sc);
}

/* The top bit of a list weight (weights are < 2^63) marks an entry that min-p cuts: min-p applies after
 * top-p, which still counts that weight. */
#define SAMPLE_MIN_P_CUT ((uint64_t)1 << 63)

/* The list weight of an entry of value x. */
SAMPLE_INLINE uint64_t sample_list_weight_of(sample_scale sc, sample_row rp, float x)
{
    float wf = sample_w(sc, x);
    uint64_t weight = sample_fixed(sc, wf);
    return wf < rp.min_p ? weight | SAMPLE_MIN_P_CUT : weight;
}

/* The list weight of the entry with composite c, reading its value from the row. */
SAMPLE_INLINE uint64_t sample_list_weight(const char *row, int dtype, sample_scale sc, sample_row rp, uint64_t c)
{
    return sample_list_weight_of(sc, rp, sample_value(dtype, sample_bits_at(row, dtype, topk_composite_column(c))));
}

/* The draw from list weights w[0..n) when the top-p prefix must reach `target` (top-p's ceil(p * S), S the
 * kept set's mass before top-p: the list's own for a top-k list, the whole row's for a nucleus list; a
 * target above the list's mass keeps the whole list). */
SAMPLE_INLINE sample_pick sample_list_draw_to(const uint64_t *list, const uint64_t *w, int64_t n, uint64_t target,
                                              uint64_t random)
{
    const uint64_t cut = SAMPLE_MIN_P_CUT;
    uint64_t mass = 0, kept = 0;
    int64_t end = 0;
    for (; end < n && mass < target; end++) mass += w[end] & ~cut;
    for (int64_t j = 0; j < end; j++) kept += (w[j] & cut) ? 0 : w[j];
    uint64_t drawn = sample_mulhi(random, kept), below = 0;
    for (int64_t j = 0; j < end; j++) {
        uint64_t x = (w[j] & cut) ? 0 : w[j];
        below += x;
        if (below > drawn) return (sample_pick){topk_composite_column(list[j]), sample_ratio(x, kept)};
    }
    return (sample_pick){topk_composite_column(list[0]), 1.0f}; /* not reached: drawn < kept */
}

/* The mass of list weights w[0..n), min-p's cut ones included (top-p counts them). */
SAMPLE_INLINE uint64_t sample_list_mass(const uint64_t *w, int64_t n)
{
    uint64_t total = 0;
    for (int64_t j = 0; j < n; j++) total += w[j] & ~SAMPLE_MIN_P_CUT;
    return total;
}

/* The draw from a top-k list's weights w[0..n): top-p over the list's own mass. */
SAMPLE_INLINE sample_pick sample_list_draw(const uint64_t *list, const uint64_t *w, int64_t n, sample_row rp,
                                           uint64_t random)
{
    uint64_t total = sample_list_mass(w, n);
    return sample_list_draw_to(list, w, n, rp.top_p < 1.0f ? sample_top_p_target(rp.top_p, total) : total, random);
}

/* The three steps by one thread, on the entries' values as they were selected: values[j] (elements of
 * dtype) is the value of list[j], so the row itself is not needed (the cpu backend passes its selection's
 * values, the sharded sampler the merged candidates' values). w[0..n) is scratch. */
SAMPLE_INLINE sample_pick sample_from_list(const char *values, int dtype, int64_t vocab, const uint64_t *list,
                                           int64_t n, uint64_t *w, sample_row rp, uint64_t random)
{
    sample_scale sc;
    if (!sample_list_scale_of(sample_value(dtype, sample_bits_at(values, dtype, 0)), vocab, n, rp, &sc))
        return (sample_pick){topk_composite_column(list[0]), 1.0f};
    for (int64_t j = 0; j < n; j++) w[j] = sample_list_weight_of(sc, rp, sample_value(dtype, sample_bits_at(values, dtype, j)));
    return sample_list_draw(list, w, n, rp, random);
}

#pragma omp end declare target

#endif
