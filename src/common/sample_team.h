/*
 * Whole-row sampling operations for a team of threads, compiled for the host and for the GPU (declare
 * target): the GPU runs them with a team of SAMPLE_TEAM_MAX (256) threads per row (sample_gpu.c; the fused
 * sampler's root team has the selection's 64-256, sample_fused.c), the cpu backend with a "team" of one
 * thread per row (rows spread over OpenMP threads), the offload host fallback with one or two.
 *
 * The one primitive is a search in best-first order: the smallest prefix of a row's members, taken
 * best first under the sampling order (composite = key << 32 | ~column), whose measure (count, or
 * integer weight) reaches a target. It is a radix search on the 64-bit composite, 8 bits a pass from
 * the top: each pass adds every matching member's measure into 256 bins, the bin where the cumulative
 * measure (from the best bin down) reaches the target settles one more digit, and the search ends as
 * soon as that bin holds one member, which is then the answer. The measures are integers, so the
 * bins' sums do not depend on which thread adds what first: every team size finds the same element.
 * Top-k is a search by count (its answer is the k-th best, the floor of the kept set); top-p a search
 * by weight for ceil(p * S); the draw a search by weight for R + 1.
 *
 * No pass sorts anything and the row is never copied: each pass reads the row again (the cpu backend
 * keeps the row's float weights in a cache, so it computes the exponentials once).
 *
 * Its names (sample_team, sample_barrier, sample_team_*) stand apart from offload/team.h's team engine on
 * purpose: this one also runs as a one-thread "team" inside the cpu backend's worksharing loop, where no
 * barrier may be, and it searches integer masses, not counts of composites.
 */
#ifndef TOPK_SAMPLE_TEAM_H
#define TOPK_SAMPLE_TEAM_H

#include "sample_math.h"

#define SAMPLE_BINS 256
#define SAMPLE_TEAM_MAX 256 /* most threads in a team */
#define SAMPLE_LIST 1024    /* the GPU serves top_k up to this from a top-k list (offload/sample_fused.c) */
/* The nucleus lists' default lengths (TOPK_PARAM_SAMPLE_LIST 0), both the longest list: on an H100 min-p
 * 0.1 alone over 128256 logits took 195-381 us with 1024 against 4130-11176 us with 128, whose list the
 * ~700 kept tokens did not fit (bench/RESULTS.md, tenth session); the cpu backend's selection costs about
 * the same at any such k. */
#define SAMPLE_NUCLEUS_GPU 1024
#define SAMPLE_NUCLEUS_CPU 1024
#define SAMPLE_TOP_MAX TOPK_TOP_LOGPROBS_MAX /* the most top logprobs a row asks for */

/* A team's shared memory. On the GPU it lives in shared memory; a one-thread team has its own. */
typedef struct sample_mem {
    uint64_t mass[SAMPLE_BINS];
    uint32_t count[SAMPLE_BINS];
    uint64_t part[SAMPLE_TEAM_MAX]; /* one partial result per thread */
    uint64_t word[4];               /* results broadcast to the team */
    uint64_t top[SAMPLE_TOP_MAX];   /* the logprobs' top n, gathered by the team */
    uint32_t fill;                  /* entries of top gathered so far */
} sample_mem;

enum sample_kind { SAMPLE_LOGITS, SAMPLE_PROBS };

#pragma omp declare target

typedef struct sample_team {
    sample_mem *m;
    int tid, nt;
} sample_team;

/* A barrier; a one-thread team needs none (and may run inside a worksharing loop, where none is allowed). */
SAMPLE_INLINE void sample_barrier(sample_team t)
{
    if (t.nt > 1) {
        _Pragma("omp barrier")
    }
}

/* One row as the searches see it: its elements' composites, and which of them are members with what
 * weight. */
typedef struct sample_view {
    const char *row;
    int dtype, kind;
    int64_t vocab;
    sample_scale sc;    /* SAMPLE_LOGITS: values to weights */
    double prob_scale;  /* SAMPLE_PROBS: probabilities to weights */
    uint64_t floor;     /* members have composite >= floor */
    float min_p;        /* SAMPLE_LOGITS: members also have w >= min_p */
    const float *cache; /* SAMPLE_LOGITS, optional: the row's float weights, computed once */
} sample_view;

/* A probability as the helpers read it: NaN, negative and +inf count as 0. */
SAMPLE_INLINE float sample_prob_value(uint32_t bits)
{
    float p = sample_bits_to_f32(bits);
    return p > 0.0f && p != __builtin_inff() ? p : 0.0f;
}

SAMPLE_INLINE uint64_t view_composite(sample_view v, int64_t i)
{
    uint32_t bits = sample_bits_at(v.row, v.dtype, i);
    if (v.kind == SAMPLE_PROBS) {
        sample_f32 p;
        p.f = sample_prob_value(bits);
        bits = p.u;
    }
    return topk_composite(sample_key(v.dtype, bits), i);
}

SAMPLE_INLINE float view_w(sample_view v, int64_t i)
{
    return v.cache ? v.cache[i] : sample_w(v.sc, sample_value(v.dtype, sample_bits_at(v.row, v.dtype, i)));
}

/* The integer weight of element i (composite c) as a member, 0 if it is not one. */
SAMPLE_INLINE uint64_t view_mass(sample_view v, int64_t i, uint64_t c)
{
    if (c < v.floor) return 0;
    if (v.kind == SAMPLE_PROBS) return sample_prob_fixed(v.prob_scale, sample_prob_value(sample_bits_at(v.row, TOPK_F32, i)));
    float w = view_w(v, i);
    return w < v.min_p ? 0 : sample_fixed(v.sc, w);
}

/* The best composite of the row. */
SAMPLE_INLINE uint64_t sample_team_best(sample_team t, sample_view v)
{
    uint64_t best = 0;
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
        uint64_t c = view_composite(v, i);
        best = c > best ? c : best;
    }
    if (t.nt == 1) return best;
    t.m->part[t.tid] = best;
    sample_barrier(t);
    if (t.tid == 0) {
        for (int j = 1; j < t.nt; j++) best = t.m->part[j] > best ? t.m->part[j] : best;
        t.m->word[0] = best;
    }
    sample_barrier(t);
    best = t.m->word[0];
    sample_barrier(t);
    return best;
}

/* The members' total weight. */
SAMPLE_INLINE uint64_t sample_team_mass(sample_team t, sample_view v)
{
    uint64_t sum = 0;
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) sum += view_mass(v, i, view_composite(v, i));
    if (t.nt == 1) return sum;
    t.m->part[t.tid] = sum;
    sample_barrier(t);
    if (t.tid == 0) {
        for (int j = 1; j < t.nt; j++) sum += t.m->part[j];
        t.m->word[0] = sum;
    }
    sample_barrier(t);
    sum = t.m->word[0];
    sample_barrier(t);
    return sum;
}

/* Fills the cache with the row's float weights (the cpu backend's one-thread teams). */
SAMPLE_INLINE void sample_team_fill_cache(sample_team t, sample_view v, float *cache)
{
    for (int64_t i = t.tid; i < v.vocab; i += t.nt)
        cache[i] = sample_w(v.sc, sample_value(v.dtype, sample_bits_at(v.row, v.dtype, i)));
    sample_barrier(t);
}

/* The member at which the best-first cumulative measure (count when !by_mass, else weight) first
 * reaches target (1 <= target <= the members' total), as its composite. */
SAMPLE_INLINE uint64_t sample_team_search(sample_team t, sample_view v, bool by_mass, uint64_t target)
{
    sample_mem *m = t.m;
    uint64_t prefix = 0, settled = 0, need = target;
    int shift = 56;
    for (;;) {
        for (int b = t.tid; b < SAMPLE_BINS; b += t.nt) {
            m->mass[b] = 0;
            m->count[b] = 0;
        }
        sample_barrier(t);
        for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
            uint64_t c = view_composite(v, i);
            if ((c ^ prefix) & settled) continue;
            uint64_t x = by_mass ? view_mass(v, i, c) : (uint64_t)(c >= v.floor);
            if (!x) continue;
            uint32_t b = (uint32_t)(c >> shift) & (SAMPLE_BINS - 1);
            if (t.nt == 1) { /* a one-thread team: no locked instructions */
                m->mass[b] += x;
                m->count[b] += 1;
                continue;
            }
#pragma omp atomic update
            m->mass[b] += x;
#pragma omp atomic update
            m->count[b] += 1;
        }
        sample_barrier(t);
        if (t.tid == 0) {
            uint64_t above = 0;
            int b = SAMPLE_BINS - 1;
            for (; b > 0 && above + m->mass[b] < need; b--) above += m->mass[b];
            m->word[1] = (uint64_t)b;
            m->word[2] = above;
        }
        sample_barrier(t);
        uint32_t bin = (uint32_t)m->word[1];
        bool single = m->count[bin] == 1;
        need -= m->word[2];
        prefix |= (uint64_t)bin << shift;
        settled |= (uint64_t)(SAMPLE_BINS - 1) << shift;
        sample_barrier(t);
        if (shift == 0) return prefix; /* every bit settled: prefix is the member itself */
        if (single) break;
        shift -= 8;
    }
    /* The settled bin holds exactly one member: find it. */
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
        uint64_t c = view_composite(v, i);
        if ((c ^ prefix) & settled) continue;
        if (by_mass ? view_mass(v, i, c) != 0 : c >= v.floor) m->word[3] = c;
    }
    sample_barrier(t);
    uint64_t found = m->word[3];
    sample_barrier(t);
    return found;
}

/* topk_sample for one row, the whole row at a time: see sample_math.h for the definition it computes
 * (sample_from_list is the same for a row's top-k list). */
SAMPLE_INLINE sample_pick sample_team_draw_row(sample_team t, sample_view v, sample_row rp, uint64_t random, float *cache)
{
    v.kind = SAMPLE_LOGITS;
    v.floor = 0;
    v.min_p = 0.0f;
    v.cache = 0;
    uint64_t best = sample_team_best(t, v);
    int64_t column = topk_composite_column(best);
    float max = sample_value(v.dtype, sample_bits_at(v.row, v.dtype, column));
    sample_pick pick = {column, 1.0f};
    if (rp.temperature == 0.0f || rp.top_k == 1 || max == -__builtin_inff()) return pick;
    v.sc = sample_scale_make(max, rp.temperature, v.vocab);
    if (cache) {
        sample_team_fill_cache(t, v, cache);
        v.cache = cache;
    }
    if (rp.top_k > 0 && rp.top_k < v.vocab) v.floor = sample_team_search(t, v, false, (uint64_t)rp.top_k);
    uint64_t total = sample_team_mass(t, v);
    if (rp.top_p < 1.0f) v.floor = sample_team_search(t, v, true, sample_top_p_target(rp.top_p, total));
    v.min_p = rp.min_p;
    uint64_t kept = rp.top_p < 1.0f || rp.min_p > 0.0f ? sample_team_mass(t, v) : total;
    uint64_t chosen = sample_team_search(t, v, true, sample_mulhi(random, kept) + 1);
    pick.token = topk_composite_column(chosen);
    pick.prob = sample_ratio(view_mass(v, pick.token, chosen), kept);
    return pick;
}

/* topk_sample for a row without a top-k filter (sample_nucleus_length) from a list of its best: true, with
 * thread 0's *pick sample_team_draw_row's own, bit for bit, when the row's kept set lies inside the list;
 * false when it may not (the caller then goes the whole-row way). list[0..n): the row's n best under the
 * sampling order, best first, not led by a NaN (so the row has none: the library's order ranks NaN first),
 * and n >= 2 unless n == vocab; w[0..n): scratch the team shares.
 *
 * Why it is the same draw: sample_team_draw_row keeps the best-first prefix whose mass first reaches
 * target = ceil(p * S) (S: the whole row's mass), less min-p's cuts, and draws in best-first order. The
 * list is that order's first n, so when the list's mass reaches the target the prefix ends inside it, and
 * when min-p cuts everything below the list (sample_min_p_cuts_below) nothing outside it is kept either
 * way: in both cases sample_list_draw_to draws the same token with the same kept mass. S costs one pass
 * over the row, only for top-p rows whose list is not the whole row; min-p alone needs none. */
SAMPLE_INLINE bool sample_team_nucleus(sample_team t, sample_view v, const uint64_t *list, uint64_t *w, int64_t n,
                                       sample_row rp, uint64_t random, sample_pick *pick)
{
    float max = sample_value(v.dtype, sample_bits_at(v.row, v.dtype, topk_composite_column(list[0])));
    *pick = (sample_pick){topk_composite_column(list[0]), 1.0f};
    if (max == -__builtin_inff() || n == 1) return true; /* n == 1 == vocab */
    v.kind = SAMPLE_LOGITS;
    v.floor = 0;
    v.min_p = 0.0f;
    v.cache = 0;
    v.sc = sample_scale_make(max, rp.temperature, v.vocab);
    for (int64_t j = t.tid; j < n; j += t.nt) w[j] = sample_list_weight(v.row, v.dtype, v.sc, rp, list[j]);
    sample_barrier(t);
    uint64_t listed = sample_list_mass(w, n), target = listed; /* every thread sums: no broadcast needed */
    if (rp.top_p < 1.0f) target = sample_top_p_target(rp.top_p, n < v.vocab ? sample_team_mass(t, v) : listed);
    int64_t last_column = topk_composite_column(list[n - 1]);
    float last = sample_w(v.sc, sample_value(v.dtype, sample_bits_at(v.row, v.dtype, last_column)));
    bool inside = n == v.vocab || (rp.top_p < 1.0f && target <= listed) || sample_min_p_cuts_below(last, rp.min_p);
    if (inside && t.tid == 0) *pick = sample_list_draw_to(list, w, n, target, random);
    return inside;
}

/* topk_softmax for one row. A row with nothing but -inf and NaN puts probability 1 on its first
 * element (the best under the sampling order), like topk_sample. */
SAMPLE_INLINE void sample_team_softmax_row(sample_team t, sample_view v, float temperature, float *out)
{
    v.kind = SAMPLE_LOGITS;
    v.floor = 0;
    v.min_p = 0.0f;
    v.cache = 0;
    int64_t best = topk_composite_column(sample_team_best(t, v));
    float max = sample_value(v.dtype, sample_bits_at(v.row, v.dtype, best));
    if (max == -__builtin_inff()) {
        for (int64_t i = t.tid; i < v.vocab; i += t.nt) out[i] = i == best ? 1.0f : 0.0f;
        return;
    }
    v.sc = sample_scale_make(max, temperature, v.vocab);
    uint64_t total = sample_team_mass(t, v);
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) out[i] = sample_ratio(view_mass(v, i, 0), total);
}

/* topk_top_k_mask_logits for one row: the bits of the top_k set, -inf elsewhere. */
SAMPLE_INLINE void sample_team_mask_row(sample_team t, sample_view v, int64_t top_k, char *out)
{
    v.kind = SAMPLE_LOGITS;
    v.floor = 0;
    uint64_t floor = top_k > 0 && top_k < v.vocab ? sample_team_search(t, v, false, (uint64_t)top_k) : 0;
    uint32_t minus_inf = v.dtype == TOPK_F32 ? 0xFF800000u : v.dtype == TOPK_F16 ? 0xFC00u : 0xFF80u;
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
        uint32_t bits = view_composite(v, i) >= floor ? sample_bits_at(v.row, v.dtype, i) : minus_inf;
        if (v.dtype == TOPK_F32) ((uint32_t *)out)[i] = bits;
        else ((uint16_t *)out)[i] = (uint16_t)bits;
    }
}

/* topk_top_k_renorm_probs (top_p >= 1) or topk_top_p_renorm_probs (top_k == 0) for one row of fp32
 * probabilities. A row whose kept mass is 0 is written as zeros. */
SAMPLE_INLINE void sample_team_renorm_row(sample_team t, sample_view v, int64_t top_k, float top_p, float *out)
{
    v.kind = SAMPLE_PROBS;
    v.dtype = TOPK_F32;
    v.floor = 0;
    int64_t best = topk_composite_column(sample_team_best(t, v));
    v.prob_scale = sample_prob_scale(sample_prob_value(sample_bits_at(v.row, TOPK_F32, best)), v.vocab);
    if (top_k > 0 && top_k < v.vocab) v.floor = sample_team_search(t, v, false, (uint64_t)top_k);
    uint64_t total = sample_team_mass(t, v);
    if (total && top_p < 1.0f) {
        v.floor = sample_team_search(t, v, true, sample_top_p_target(top_p, total));
        total = sample_team_mass(t, v);
    }
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
        uint64_t q = view_mass(v, i, view_composite(v, i));
        out[i] = q ? sample_ratio(q, total) : 0.0f;
    }
}

/* Column `column`'s raw log-probability (topk.h): (x - max) / T - lse in double, rounded once to float,
 * where lse = log(S / 2^s), the row's log-sum-exp less max / T (S its integer mass at T). A row of -inf and
 * NaN puts probability 1 on its best; a row with +inf shares it among its +inf tokens (as sample_w does). */
SAMPLE_INLINE float sample_raw_logprob(sample_view v, double temperature, double lse, uint64_t best, int64_t column)
{
    float x = sample_value(v.dtype, sample_bits_at(v.row, v.dtype, column)), minus_inf = -__builtin_inff();
    if (v.sc.max == minus_inf) return column == topk_composite_column(best) ? 0.0f : minus_inf;
    if (v.sc.inf_max) return x == v.sc.max ? (float)-lse : minus_inf;
    if (x == minus_inf) return minus_inf;
    return (float)(((double)x - (double)v.sc.max) / temperature - lse);
}

/* Gathers the row's best n (1 <= n <= vocab; floor is the n-th best's composite, or 0 for all) into
 * m->top, best first. */
SAMPLE_INLINE void sample_team_gather_top(sample_team t, sample_view v, uint64_t floor, int64_t n)
{
    sample_mem *m = t.m;
    if (t.tid == 0) m->fill = 0;
    sample_barrier(t);
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
        uint64_t c = view_composite(v, i);
        if (c < floor) continue;
        uint32_t at;
        if (t.nt == 1) {
            at = m->fill++;
        } else {
#pragma omp atomic capture
            at = m->fill++;
        }
        m->top[at] = c;
    }
    sample_barrier(t);
    if (t.tid == 0)
        for (int64_t j = 1; j < n; j++) { /* insertion sort of at most SAMPLE_TOP_MAX composites */
            uint64_t c = m->top[j];
            int64_t i = j;
            for (; i > 0 && m->top[i - 1] < c; i--) m->top[i] = m->top[i - 1];
            m->top[i] = c;
        }
}

/* topk_sample_logprobs's outputs for row r, after its draw gave `pick` (which only thread 0 reads; the
 * writes are thread 0's). list[0..listed): the row's best under the sampling order as sampling composites,
 * when the caller has them (listed may be 0): list[0] is then the row's best, and the top n come from the
 * list when it holds them. The raw log-sum-exp costs one pass over the row (its integer mass at the raw
 * temperature: exact in any order); top n beyond the list a count search and a gather. */
SAMPLE_INLINE void sample_team_logprobs(sample_team t, sample_view v, sample_row rp, const uint64_t *list,
                                        int64_t listed, sample_pick pick, sample_logprobs lp, int64_t r)
{
    v.kind = SAMPLE_LOGITS;
    v.floor = 0;
    v.min_p = 0.0f;
    v.cache = 0;
    uint64_t best = listed ? list[0] : sample_team_best(t, v);
    float max = sample_value(v.dtype, sample_bits_at(v.row, v.dtype, topk_composite_column(best)));
    double temperature = rp.temperature > 0.0f ? rp.temperature : 1.0f; /* greedy rows: raw under T = 1 */
    v.sc = sample_scale_make(max, (float)temperature, v.vocab);
    double lse = 0.0;
    if (max != -__builtin_inff() && (lp.raw || lp.top_logprobs))
        lse = sample_log((double)sample_team_mass(t, v) / (double)v.sc.scale);
    int64_t n = lp.top_n < v.vocab ? lp.top_n : v.vocab;
    const uint64_t *top = list;
    if (n > listed) {
        sample_team_gather_top(t, v, n < v.vocab ? sample_team_search(t, v, false, (uint64_t)n) : 0, n);
        top = t.m->top;
    }
    if (t.tid != 0) return;
    if (lp.raw) lp.raw[r] = sample_raw_logprob(v, temperature, lse, best, pick.token);
    if (lp.processed) lp.processed[r] = (float)sample_log((double)pick.prob);
    for (int64_t j = 0; j < lp.top_n; j++) {
        int64_t column = j < n ? topk_composite_column(top[j]) : -1;
        if (lp.top_tokens) lp.top_tokens[r * lp.top_n + j] = column;
        if (lp.top_logprobs)
            lp.top_logprobs[r * lp.top_n + j] =
                column < 0 ? -__builtin_inff() : sample_raw_logprob(v, temperature, lse, best, column);
    }
}

/* The logprobs of a row whose parameters (from device memory) are out of range: NaN, and top tokens -1. */
SAMPLE_INLINE void sample_logprobs_invalid(sample_logprobs lp, int64_t r)
{
    if (lp.raw) lp.raw[r] = __builtin_nanf("");
    if (lp.processed) lp.processed[r] = __builtin_nanf("");
    for (int64_t j = 0; j < lp.top_n; j++) {
        if (lp.top_tokens) lp.top_tokens[r * lp.top_n + j] = -1;
        if (lp.top_logprobs) lp.top_logprobs[r * lp.top_n + j] = __builtin_nanf("");
    }
}

/* Whether a call asks for any logprobs. */
SAMPLE_INLINE bool sample_logprobs_wanted(sample_logprobs lp) { return lp.raw || lp.processed || lp.top_n > 0; }

#pragma omp end declare target

#endif
