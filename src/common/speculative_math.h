/*
 * Chain speculative sampling (topk_chain_speculative_sample), one row at a time by a team, compiled for the
 * host and for the GPU (declare target) from this one text: the cpu backend runs it with one-thread teams,
 * offload/speculative_gpu.c with a team of threads per row. Every bit of the result is decided by integer
 * arithmetic or by single IEEE operations whose rounding is fixed, so any team size gives the same tokens.
 *
 * Acceptance of draft token d at position j: with r the row's 64-bit Philox word for position j, d is
 * accepted iff r * q(d) < p(d) * 2^64 in exact arithmetic, i.e. with probability
 * min(2^64, ceil(2^64 p / q)) / 2^64, min(1, p/q) to within 2^-64. The comparison is made on the floats'
 * integer mantissas and exponents (spec_accepts), so it is exact on every target without a wide float.
 *
 * Draws (the correction token from normalize(max(0, p - q)), the bonus token from p): each token's integer
 * weight is W = trunc(x * 2^(s - E)) with x = max(0, (double)p - (double)q) (or p), 2^E > the row's largest
 * x and s = 62 - floor(log2 V), so a row's weights sum below 2^63 and every sum is exact in any order.
 * The token is the first index (in index order) whose cumulative weight exceeds R = mulhi(r, S), S the
 * total: an inverse CDF that a team computes from its threads' contiguous chunks (each chunk's sum, then
 * the one chunk that holds R), which any split finds the same way. Quantisation: each weight loses < 1 of
 * a total >= 2^(s-1), so the drawn distribution is within V / 2^(s-1) <= 2V^2 / 2^62 in total variation of
 * the exact one (3.7e-9 at V = 128256, 2^-45 at V = 16), plus V / 2^64 from R.
 */
#ifndef TOPK_SPECULATIVE_MATH_H
#define TOPK_SPECULATIVE_MATH_H

#include "sample_team.h"

#pragma omp declare target

/* A probability as the speculative sampler reads it: NaN, negative and +inf count as 0 (as the renorm
 * helpers read them). */
SAMPLE_INLINE float spec_prob(const float *probs, int64_t i) { return sample_prob_value(sample_f32_bits(probs[i])); }

/* A finite float x >= 0 as m * 2^e with an integer mantissa m < 2^24. */
SAMPLE_INLINE uint64_t spec_mantissa(float x, int *e)
{
    uint32_t u = sample_f32_bits(x), biased = (u >> 23) & 0xFFu;
    *e = (biased ? (int)biased : 1) - 150;
    return biased ? (u & 0x7FFFFFu) | 0x800000u : u & 0x7FFFFFu;
}

/* Whether r * q < p * 2^64 exactly, for p, q finite and >= 0 (spec_prob's): the acceptance test. */
SAMPLE_INLINE bool spec_accepts(uint64_t r, float p, float q)
{
    int ep, eq;
    uint64_t mp = spec_mantissa(p, &ep), mq = spec_mantissa(q, &eq);
    if (!mp) return false;         /* p = 0: r * q < 0 never holds */
    if (!mq || !r) return true;    /* 0 < p * 2^64 */
    uint64_t hi = sample_mulhi(r, mq), lo = r * mq; /* r * mq < 2^88 */
    int d = ep + 64 - eq;                           /* test: r * mq < mp * 2^d */
    if (d >= 88) return true;
    if (d >= 0) {
        uint64_t rhs_lo = d < 64 ? mp << d : 0, rhs_hi = d == 0 ? 0 : d < 64 ? mp >> (64 - d) : mp << (d - 64);
        return hi < rhs_hi || (hi == rhs_hi && lo < rhs_lo);
    }
    /* r * mq * 2^-d < mp < 2^24, with r * mq >= 1 */
    return -d < 24 && hi == 0 && lo < ((uint64_t)1 << 24) && (lo << -d) < mp;
}

/* Row `row`'s 64-bit Philox word for position j (acceptance at j < S, the final draw at S): counter
 * (offset, row, 2^31 | j) under seed, or with per-row seeds (offsets[row] or offset, 0, 2^31 | j) under
 * seeds[row]. The set top bit keeps these counters apart from topk_sample's (whose counters' top word is
 * row >> 32 = 0), so the same seed and offset give a speculative call and a sampling call independent bits. */
SAMPLE_INLINE uint64_t spec_random(uint64_t seed, uint64_t offset, const uint64_t *seeds, const uint64_t *offsets,
                                   int64_t row, int64_t j)
{
    uint64_t o = offsets ? offsets[row] : offset, tag = (uint64_t)(0x80000000u | (uint32_t)j) << 32;
    return seeds ? sample_philox(seeds[row], o, tag) : sample_philox(seed, o, tag | (uint32_t)row);
}

/* What a draw weighs: max(0, p - q) (residual) or p (q NULL), in double (one rounding, the same everywhere). */
SAMPLE_INLINE double spec_mass(const float *p, const float *q, int64_t i)
{
    double x = (double)spec_prob(p, i) - (q ? (double)spec_prob(q, i) : 0.0);
    return x > 0.0 ? x : 0.0;
}

/* A team's reduction of one uint64 per thread (sum or max), broadcast to the team. */
SAMPLE_INLINE uint64_t spec_team_reduce(sample_team t, uint64_t mine, bool max)
{
    if (t.nt == 1) return mine;
    t.m->part[t.tid] = mine;
    sample_barrier(t);
    if (t.tid == 0) {
        uint64_t all = t.m->part[0];
        for (int j = 1; j < t.nt; j++) all = max ? (t.m->part[j] > all ? t.m->part[j] : all) : all + t.m->part[j];
        t.m->word[0] = all;
    }
    sample_barrier(t);
    uint64_t all = t.m->word[0];
    sample_barrier(t);
    return all;
}

/* The inverse-CDF draw from the weights of spec_mass(p, q, .) over [0, vocab) with random word r; -1 when
 * they all weigh 0. Thread tid owns the contiguous chunk [tid * c, (tid + 1) * c). */
SAMPLE_INLINE int64_t spec_team_draw(sample_team t, const float *p, const float *q, int64_t vocab, uint64_t r)
{
    int64_t chunk = (vocab + t.nt - 1) / t.nt, begin = t.tid * chunk, end = begin + chunk < vocab ? begin + chunk : vocab;
    sample_f64 most = {0.0};
    for (int64_t i = begin; i < end; i++) {
        sample_f64 x = {spec_mass(p, q, i)};
        most.u = x.u > most.u ? x.u : most.u; /* doubles >= 0 order as their bits */
    }
    most.u = spec_team_reduce(t, most.u, true);
    if (most.f == 0.0) return -1;
    /* 2^(s - 1) / 2^E with 2^E <= most < 2^(E + 1), from the exponent's bits: most * scale is in [2^(s-1), 2^s) */
    sample_f64 unit = {.u = (uint64_t)(2046 - (most.u >> 52)) << 52};
    double scale = sample_prob_scale(1.0f, vocab) * unit.f;
    uint64_t mine = 0;
    for (int64_t i = begin; i < end; i++) mine += (uint64_t)(spec_mass(p, q, i) * scale);
    uint64_t total = spec_team_reduce(t, mine, false); /* leaves each thread's chunk sum in part[] */
    uint64_t drawn = sample_mulhi(r, total);
    uint64_t below = 0;
    for (int j = 0; j < t.tid; j++) below += t.m->part[j];
    if (below <= drawn && drawn < below + mine)
        for (int64_t i = begin; i < end; i++) {
            below += (uint64_t)(spec_mass(p, q, i) * scale);
            if (below > drawn) {
                t.m->word[3] = (uint64_t)i;
                break;
            }
        }
    sample_barrier(t);
    int64_t token = (int64_t)t.m->word[3];
    sample_barrier(t);
    return token;
}

/* One row of topk_chain_speculative_sample (topk.h): draft[j * vocab ..] is q_j, target[j * vocab ..] p_j,
 * ids[0..S) the draft tokens; writes out[0..S] and the row's counts. */
SAMPLE_INLINE void spec_team_row(sample_team t, const float *draft, const int64_t *ids, const float *target,
                                 int64_t S, int64_t vocab, uint64_t seed, uint64_t offset, const uint64_t *seeds,
                                 const uint64_t *offsets, int64_t row, int64_t *out, int64_t *accepted,
                                 int64_t *emitted)
{
    if (t.tid == 0) {
        int64_t stop = S, independent = 0;
        for (int64_t j = 0; j < S; j++) {
            int64_t d = ids[j];
            bool known = d >= 0 && d < vocab;
            float p = known ? spec_prob(target + j * vocab, d) : 0.0f, q = known ? spec_prob(draft + j * vocab, d) : 0.0f;
            bool yes = spec_accepts(spec_random(seed, offset, seeds, offsets, row, j), p, q);
            independent += yes;
            if (!yes && stop == S) stop = j;
        }
        t.m->word[1] = (uint64_t)stop;
        t.m->word[2] = (uint64_t)independent;
    }
    sample_barrier(t);
    int64_t stop = (int64_t)t.m->word[1], independent = (int64_t)t.m->word[2];
    sample_barrier(t);
    uint64_t r = spec_random(seed, offset, seeds, offsets, row, S);
    const float *p = target + stop * vocab, *q = stop < S ? draft + stop * vocab : 0;
    int64_t token = spec_team_draw(t, p, q, vocab, r);
    if (token < 0 && q) token = spec_team_draw(t, p, 0, vocab, r); /* no residual mass: draw from p */
    if (t.tid == 0) {
        for (int64_t j = 0; j <= S; j++) out[j] = j < stop ? ids[j] : j == stop ? (token < 0 ? 0 : token) : -1;
        if (accepted) *accepted = independent;
        if (emitted) *emitted = stop;
    }
}

#pragma omp end declare target

#endif
