/*
 * Team-level building blocks of the selection kernels: one OpenMP team (a CUDA block on the GPU, a few
 * host threads under OpenMP's host fallback) cooperating on a buffer of "composites".
 *
 * A composite (topk_composite, src/common/keys.h) is one element as a single 64-bit unsigned number:
 *     (ordered key << 32) | ~column
 * so that a larger composite is exactly a better element under the contract's total order (larger key
 * first, then smaller column). Composites are unique within a row, and 0 is never a real element (it
 * would need column 2^32 - 1, which a row of < 2^32 elements does not have), so 0 pads and marks "none".
 *
 * Everything here is written for any number of threads in a team: the GPU runs 64-256 (plan.c), the
 * host fallback one or two. Barriers are `omp barrier` (bar.sync on the GPU); team-shared data lives in
 * one team_mem that the region places in GPU shared memory.
 */
#ifndef TOPK_TEAM_H
#define TOPK_TEAM_H

#include <omp.h>
#include <stdbool.h>
#include <stdint.h>

#include "sizes.h"

typedef struct team_mem {
    uint64_t buf[TOPK_CAP];
    uint32_t hist[2][TOPK_BINS]; /* one is counted while the other is cleared */
    uint32_t group[TOPK_GROUPS];
    uint32_t sum[3];             /* team_sum's rotating accumulators */
    uint32_t fill;               /* entries used in the selection's buffer; compaction output counter */
    uint32_t found_bin, found_above;
    uint32_t last;               /* the team took the last ticket of a merge node */
} team_mem;

#pragma omp declare target

typedef struct team {
    team_mem *m;
    int tid, nt;
    unsigned sums;   /* team_sum calls so far (the same in every thread) */
    unsigned passes; /* radix passes so far: picks the histogram to count into */
} team;

TOPK_INLINE void team_barrier(void) { _Pragma("omp barrier") }

/* A device-wide fence (membar.gl on the GPU). It must be an orphaned flush in a declare-target
 * function: a flush lexically inside the teams region is rejected, and the atomic fences crash the
 * NVPTX backend (../shared/gpu/NOTES.md). */
static void topk_device_fence(void) { _Pragma("omp flush") }

TOPK_INLINE void team_start(team *t, team_mem *m)
{
    t->m = m;
    t->tid = omp_get_thread_num();
    t->nt = omp_get_num_threads();
    t->sums = 0;
    t->passes = 0;
    for (int b = t->tid; b < 2 * TOPK_BINS; b += t->nt) m->hist[b / TOPK_BINS][b % TOPK_BINS] = 0;
    if (t->tid == 0) m->sum[0] = m->sum[1] = m->sum[2] = 0;
    team_barrier();
}

/* The sum of x over the team, with one barrier. Call k adds into slot k % 3 and clears the slot of
 * call k - 1, whose readers all passed this call's barrier; call k + 1's slot was cleared before it. */
TOPK_INLINE uint32_t team_sum(team *t, uint32_t x)
{
    uint32_t *slot = &t->m->sum[t->sums % 3];
    if (x) {
#pragma omp atomic update
        *slot += x;
    }
    team_barrier();
    uint32_t total = *slot;
    if (t->tid == 0) t->m->sum[(t->sums + 2) % 3] = 0;
    t->sums++;
    return total;
}

/* Radix select, one 8-bit digit per pass from the top of the key down. A pass counts, into the
 * histogram radix_hist gives, the entries that match the digits settled so far (radix_matches), then
 * radix_settle finds the bucket that holds the need-th best and settles its digit. It stops as soon as
 * that bucket holds exactly the entries still needed, with the lower bits of the floor zero: then
 * {c >= floor} is still exactly the wanted set. top_shift is the lowest bit of the top digit: 56 for
 * 32-bit keys, 40 for 16-bit keys. The caller writes the counting loop, so the entries may sit in a
 * buffer (team_select) or in the threads' registers (selection.h). */
typedef struct radix {
    uint64_t prefix; /* the digits settled so far, lower bits zero */
    uint64_t settled; /* mask of those digits' bits */
    uint32_t need;   /* entries still wanted among those matching prefix */
    int shift;       /* lowest bit of the digit being counted */
    int column_shift; /* the top digit of the column bits that can differ (radix_column_shift) */
    uint32_t *hist;  /* this pass's histogram */
    bool done;       /* the floor `prefix` is final */
} radix;

/* Composites hold ~column in their low 32 bits, and every column of a row is below vocab, so the bits
 * of ~column above vocab - 1's highest bit are the same in every entry: a pass over them would settle
 * nothing. Ties of keys (common with 16-bit keys) go on from the digit that holds that highest bit. */
TOPK_INLINE int radix_column_shift(int64_t vocab)
{
    int bits = 0;
    while (bits < 32 && ((uint64_t)(vocab - 1) >> bits) != 0) bits++;
    return bits > 0 ? 8 * ((bits - 1) / 8) : 0;
}

TOPK_INLINE radix radix_start(team *t, uint32_t want, int top_shift, int column_shift)
{
    return (radix){.need = want, .shift = top_shift, .column_shift = column_shift,
                   .hist = t->m->hist[t->passes & 1]};
}

TOPK_INLINE bool radix_matches(radix r, uint64_t c) { return ((c ^ r.prefix) & r.settled) == 0; }

/* Adds one to hist[bin] where `take`. (Aggregating a warp's equal bins with match.any first was slower:
 * match.any costs more than the atomics it saves; offload/NOTES.md.) */
TOPK_INLINE void hist_add(uint32_t *hist, uint32_t bin, bool take)
{
    if (take) {
#pragma omp atomic update
        hist[bin] += 1;
    }
}

TOPK_INLINE uint32_t radix_bin(radix r, uint64_t c) { return (uint32_t)(c >> r.shift) & (TOPK_BINS - 1); }

/* Finds the bucket that holds the need-th best entry (counting from the top bin down) and leaves it
 * in m->found_bin, with the entries of the bins above it in m->found_above; clears `other`. Ends with
 * a barrier. Bins are summed 16 at a time (m->group) and the group, then the bin, found by a scan. */
TOPK_INLINE void radix_find(team *t, const uint32_t *hist, uint32_t *other, uint32_t need)
{
    team_mem *m = t->m;
    for (int g = t->tid; g < TOPK_GROUPS; g += t->nt) {
        uint32_t s = 0;
        for (int j = 0; j < TOPK_BINS / TOPK_GROUPS; j++) s += hist[g * (TOPK_BINS / TOPK_GROUPS) + j];
        m->group[g] = s;
    }
    team_barrier();
    for (int g = t->tid; g < TOPK_GROUPS; g += t->nt) {
        uint32_t above = 0;
        for (int j = g + 1; j < TOPK_GROUPS; j++) above += m->group[j];
        if (above < need && need <= above + m->group[g]) {
            for (int b = (g + 1) * (TOPK_BINS / TOPK_GROUPS) - 1;; b--) {
                if (above + hist[b] >= need) {
                    m->found_bin = (uint32_t)b;
                    m->found_above = above;
                    break;
                }
                above += hist[b];
            }
        }
    }
    for (int b = t->tid; b < TOPK_BINS; b += t->nt) other[b] = 0;
    team_barrier();
}

#if defined(__NVPTX__)
/* The same on the GPU for teams of whole warps with at most TOPK_BINS threads: thread i owns the
 * TOPK_BINS / nt bins just below bin TOPK_BINS - i * (TOPK_BINS / nt), so thread order is bin order from
 * the top; a warp scan (shfl.up) and the warps' totals give every thread the count above its bins. */
TOPK_INLINE void radix_find_warps(team *t, const uint32_t *hist, uint32_t *other, uint32_t need)
{
    team_mem *m = t->m;
    int per = TOPK_BINS / t->nt, top = TOPK_BINS - 1 - t->tid * per;
    unsigned lane = (unsigned)t->tid & 31u, warp = (unsigned)t->tid >> 5;
    uint32_t mine = 0;
    for (int j = 0; j < per; j++) mine += hist[top - j];
    uint32_t upto = mine; /* inclusive scan over the warp */
    for (int d = 1; d < 32; d <<= 1) {
        uint32_t y = (uint32_t)__nvvm_shfl_sync_up_i32(0xFFFFFFFFu, (int)upto, d, 0);
        if (lane >= (unsigned)d) upto += y;
    }
    if (lane == 31) m->group[warp] = upto;
    for (int j = 0; j < per; j++) other[top - j] = 0;
    team_barrier();
    uint32_t above = upto - mine;
    for (unsigned w = 0; w < warp; w++) above += m->group[w];
    if (above < need && need <= above + mine) {
        for (int j = 0;; j++) {
            if (above + hist[top - j] >= need) {
                m->found_bin = (uint32_t)(top - j);
                m->found_above = above;
                break;
            }
            above += hist[top - j];
        }
    }
    team_barrier();
}
#endif

/* Ends a pass (every thread has counted): settles a digit; done once the floor is final. */
TOPK_INLINE radix radix_settle(team *t, radix r)
{
    team_mem *m = t->m;
    uint32_t *hist = r.hist, *other = m->hist[(t->passes + 1) & 1];
    team_barrier();
    /* The other histogram's last readers passed this pass's first barrier. */
#if defined(__NVPTX__)
    if (t->nt % 32 == 0 && t->nt <= TOPK_BINS && t->nt >= TOPK_BINS / 8 && t->nt / 32 <= TOPK_GROUPS)
        radix_find_warps(t, hist, other, r.need);
    else
#endif
        radix_find(t, hist, other, r.need);
    uint32_t bin = m->found_bin;
    r.need -= m->found_above;
    r.prefix |= (uint64_t)bin << r.shift;
    r.done = hist[bin] == r.need || r.shift == 0;
    t->passes++;
    r.hist = other;
    r.settled |= (uint64_t)(TOPK_BINS - 1) << r.shift;
    if (r.shift == 32) {
        /* skip to the column bits that differ; the skipped ones are 1 in every entry, so in the floor too */
        uint64_t same = ((uint64_t)1 << 32) - ((uint64_t)1 << (r.column_shift + 8));
        r.prefix |= same;
        r.settled |= same;
        r.shift = r.column_shift;
    } else {
        r.shift -= 8;
    }
    return r;
}

/* The floor P such that exactly `want` of buf[0..n) are >= P (1 <= want <= n). */
TOPK_INLINE uint64_t team_select(team *t, const uint64_t *buf, uint32_t n, uint32_t want, int top_shift,
                                 int column_shift)
{
    radix r = radix_start(t, want, top_shift, column_shift);
    do {
        /* every thread runs the same number of rounds, for hist_add */
        for (uint32_t base = 0; base < n; base += (uint32_t)t->nt) {
            uint32_t i = base + (uint32_t)t->tid;
            uint64_t c = i < n ? buf[i] : 0;
            hist_add(r.hist, radix_bin(r, c), i < n && radix_matches(r, c));
        }
        r = radix_settle(t, r);
    } while (!r.done);
    return r.prefix;
}

/* Moves the entries >= floor (floor >= 1) of src[0..n) to the front of dst, in any order, and returns
 * how many. dst may be src: a round reads all its entries before any thread writes, and writes land
 * below the round's end. Uses m->fill as the output counter. */
TOPK_INLINE uint32_t team_keep(team *t, uint64_t *src, uint32_t n, uint64_t floor, uint64_t *dst)
{
    team_mem *m = t->m;
    if (t->tid == 0) m->fill = 0;
    team_barrier();
    uint32_t round = (uint32_t)t->nt * TOPK_KEEP;
    for (uint32_t base = 0; base < n; base += round) {
        uint64_t e[TOPK_KEEP];
        uint32_t count = 0;
        _Pragma("unroll")
        for (int r = 0; r < TOPK_KEEP; r++) {
            uint32_t i = base + (uint32_t)(r * t->nt + t->tid);
            e[r] = i < n ? src[i] : 0;
            count += e[r] >= floor;
        }
        team_barrier();
        uint32_t at = 0;
        if (count) {
#pragma omp atomic capture
            {
                at = m->fill;
                m->fill += count;
            }
        }
        _Pragma("unroll")
        for (int r = 0; r < TOPK_KEEP; r++)
            if (e[r] >= floor) dst[at++] = e[r];
    }
    team_barrier();
    return m->fill;
}

/* Sorts buf[0..n) best first (descending composites) with a bitonic network over the next power of
 * two, padding with 0 (below every element). buf must have room for that power of two. */
TOPK_INLINE void team_sort(team *t, uint64_t *buf, uint32_t n)
{
    uint32_t size = 1;
    while (size < n) size <<= 1;
    for (uint32_t i = n + (uint32_t)t->tid; i < size; i += (uint32_t)t->nt) buf[i] = 0;
    team_barrier();
    for (uint32_t span = 2; span <= size; span <<= 1) {
        for (uint32_t stride = span >> 1; stride; stride >>= 1) {
            for (uint32_t i = (uint32_t)t->tid; i < size / 2; i += (uint32_t)t->nt) {
                uint32_t lo = ((i & ~(stride - 1)) << 1) | (i & (stride - 1)), hi = lo + stride;
                uint64_t a = buf[lo], b = buf[hi];
                int descending = (lo & span) == 0;
                if (descending ? a < b : a > b) {
                    buf[lo] = b;
                    buf[hi] = a;
                }
            }
            team_barrier();
        }
    }
}

#pragma omp end declare target

#endif
