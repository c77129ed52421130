/*
 * A streaming exact top-k for one team: elements arrive in waves, each thread holding TOPK_SLOTS raw
 * 16-byte slots in registers (16 fp32, 32 fp16/bf16, or 8 composites of a candidate list), and the team
 * keeps, in a buffer, a set that always contains the best k seen.
 *
 * The big idea: a running floor. Only composites >= floor enter the buffer. The first wave that brings
 * more than k sets the floor by a radix select over the wave itself, in registers, so that exactly k
 * enter; later, when the buffer would overflow, a radix select over the buffer (team_select) finds the
 * floor under which exactly k remain, the buffer is compacted to those k, and the floor rises. Nothing
 * below the floor can be in the final top k (k entries beat it already), so the filter only drops
 * losers. On random data the floor is good after the first wave and a later wave costs one barrier and
 * no buffer traffic; on adversarial data (ascending rows, all-equal rows) it compacts more often but
 * stays exact, because composites are unique and totally ordered: ties are settled by the column bits.
 *
 * The buffer is team-shared memory (TOPK_CAP entries) for k <= TOPK_SMEM_K, else a slice of the GPU
 * workspace with room for k + one slot per thread and for the final sort.
 */
#ifndef TOPK_SELECTION_H
#define TOPK_SELECTION_H

#include "keys.h"
#include "team.h"

#pragma omp declare target

typedef uint32_t topk_u32x4 __attribute__((vector_size(16)));

enum wave_kind { WAVE_F32, WAVE_F16, WAVE_BF16, WAVE_LIST };

/* Where a stream's slots come from: a run of 16-byte slots, aligned down from the first element.
 * Element e of the stream sits in slot (e + head) / per, lane (e + head) % per. */
typedef struct stream {
    const topk_u32x4 *slots;
    int kind;
    int per;       /* elements per slot: 4, 8 or 2 */
    int64_t head;  /* elements of slot 0 before element 0 */
    int64_t count; /* elements */
    int64_t begin, end; /* slots of this team's part */
    uint32_t flip; /* key XOR for the smallest */
} stream;

/* One wave: thread tid holds slots first + j * nt, j < TOPK_SLOTS. */
typedef struct wave {
    topk_u32x4 v[TOPK_SLOTS];
    int64_t first;
} wave;

/* Slots are whole aligned 16-byte blocks, so the first and the last slot of a row may reach up to 15
 * bytes outside its elements: never outside their aligned block (so never onto another page), and
 * wave_get never uses those lanes. AddressSanitizer still calls such a read an overflow, so an ASan
 * build (the host fallback's: ci/sanitize, tests/fuzz) loads only the elements' bytes of an edge slot. */
#if !defined(__NVPTX__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TOPK_EXACT_EDGE_SLOTS
#endif
#endif

TOPK_INLINE topk_u32x4 slot_load(stream s, int64_t i)
{
#ifdef TOPK_EXACT_EDGE_SLOTS
    int64_t elem = 16 / s.per, from = s.head * elem, to = (s.head + s.count) * elem, lo = 16 * i;
    if (lo < from || lo + 16 > to) {
        topk_u32x4 v = {0, 0, 0, 0};
        int64_t a = lo > from ? lo : from, b = lo + 16 < to ? lo + 16 : to;
        if (a < b) __builtin_memcpy((char *)&v + (a - lo), (const char *)s.slots + a, (size_t)(b - a));
        return v;
    }
#endif
    return s.slots[i];
}

/* Loads a wave of the slots from `at` (this thread: at + tid + j * nt). */
TOPK_INLINE wave wave_load(const team *t, stream s, int64_t at)
{
    wave w;
    w.first = at + t->tid;
    _Pragma("unroll")
    for (int j = 0; j < TOPK_SLOTS; j++) {
        int64_t i = w.first + (int64_t)j * t->nt;
        if (s.kind == WAVE_LIST)
            w.v[j] = i < s.end ? ((const volatile topk_u32x4 *)s.slots)[i] : (topk_u32x4){0, 0, 0, 0};
        else
            w.v[j] = i < s.end ? slot_load(s, i) : (topk_u32x4){0, 0, 0, 0};
    }
    return w;
}

/* The composite of lane l of the thread's slot j, or 0 where that is no element of this part. */
TOPK_INLINE uint64_t wave_get(const team *t, stream s, wave w, int j, int l)
{
    int64_t slot = w.first + (int64_t)j * t->nt, e = slot * s.per + l - s.head;
    bool in = slot < s.end && e >= 0 && e < s.count;
    topk_u32x4 v = w.v[j];
    switch (s.kind) {
    case WAVE_F32: return in ? topk_composite(topk_key_f32(v[l & 3]) ^ s.flip, e) : 0;
    case WAVE_LIST: return in ? (uint64_t)v[(2 * l + 1) & 3] << 32 | v[(2 * l) & 3] : 0;
    default: {
        uint32_t bits = (v[(l / 2) & 3] >> (16 * (l % 2))) & 0xFFFFu;
        uint32_t key = s.kind == WAVE_BF16 ? topk_key_bf16(bits) : topk_key_f16(bits);
        return in ? topk_composite(key ^ s.flip, e) : 0;
    }
    }
}

/* Runs BODY for every element c of the thread's slot j of a wave (fully unrolled per kind). */
#define FOR_EACH_IN_SLOT(t, s, w, j, c, BODY)                                                            \
    _Pragma("unroll") for (int l_ = 0; l_ < 8; l_++) if (l_ < (s).per) {                                 \
        uint64_t c = wave_get(t, s, w, j, l_);                                                           \
        BODY                                                                                             \
    }

typedef struct selection {
    uint64_t *buf;
    uint32_t limit; /* the buffer is compacted before it passes this many: k < limit <= the entries it holds
                     * minus a wave's (a stream's, set by rows.h: stream_limit) */
    uint32_t k;    /* how many to keep */
    int top_shift; /* team_select's top digit: 56 for 32-bit keys, 40 for 16-bit */
    int column_shift; /* radix_column_shift of the row's vocab */
    uint32_t fill; /* entries in buf (the same in every thread) */
    uint64_t floor;
} selection;

TOPK_INLINE void selection_start(team *t, selection *s)
{
    s->fill = 0;
    s->floor = 1;
    if (t->tid == 0) t->m->fill = 0;
    team_barrier();
}

TOPK_INLINE float float_of_bits(uint32_t bits)
{
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

/* A cheap first test of a 16-bit element against the floor that lets through a superset of the passing
 * elements (as the cpu backend's filter does, src/cpu/cpu_select.c). bf16 compares as a float with the
 * floor's value: "not below it" holds for every larger value, for ties, for +0.0 against -0.0 and for NaN
 * (an unordered compare is false); for the smallest both sides are negated. fp16 compares its key as a
 * signed 16-bit number, NaN apart. A floor that is NaN's key (or the start's, which maps to NaN) lets
 * everything through. fp32 waves do not use it (FOR_EACH_CANDIDATE). */
typedef struct prefilter {
    float bar;          /* bf16: the floor's value (negated for the smallest) */
    int32_t signed_bar; /* fp16: the floor's key, top bit flipped, as a signed number */
    int32_t signed_flip;
    uint32_t negate; /* bf16: the sign bits to flip in a word of two elements, for the smallest */
} prefilter;

TOPK_INLINE prefilter prefilter_of(stream st, uint64_t floor)
{
    uint32_t flipped = (uint32_t)(floor >> 32), key = flipped ^ st.flip; /* the floor's key, unflipped */
    prefilter f;
    f.bar = float_of_bits(((key & 0x8000u ? key ^ 0x8000u : ~key) ^ (st.flip & 0x8000u)) << 16);
    f.negate = (st.flip & 0x8000u) * 0x10001u;
    f.signed_bar = (int16_t)(flipped ^ 0x8000u);
    f.signed_flip = (int16_t)st.flip;
    return f;
}

/* Whether lane l of a slot of 16-bit elements may reach the floor. */
TOPK_INLINE bool may_pass(stream st, prefilter f, topk_u32x4 v, int l)
{
    switch (st.kind) {
    case WAVE_BF16: {
        uint32_t word = v[(l / 2) & 3] ^ f.negate;
        return !(float_of_bits(l % 2 ? word & 0xFFFF0000u : word << 16) < f.bar);
    }
    default: {
        uint32_t bits = v[(l / 2) & 3] >> (16 * (l % 2)) & 0xFFFFu;
        int32_t signed_key = (int16_t)(bits ^ ((0u - (bits >> 15)) & 0x7FFFu)) ^ f.signed_flip;
        return (signed_key >= f.signed_bar) | ((bits & 0x7FFFu) > 0x7C00u); /* or NaN */
    }
    }
}

/* The thread's candidates in a wave of elements: bit 8 j + l for lane l of slot j when that lane may
 * reach the floor, and for every lane of an edge slot (lanes outside this part are sorted out later).
 * Branch-free, so that the compares of all lanes issue together. */
TOPK_INLINE uint32_t candidates(const team *t, stream st, wave w, uint64_t floor, uint32_t k)
{
    /* a chunk's first wave, where everything passes; a k that lets many through every wave */
    if (floor <= 1 || k > TOPK_CANDIDATES_K_MOST) return ~0u;
    prefilter f = prefilter_of(st, floor);
    uint32_t mask = 0;
    _Pragma("unroll")
    for (int j = 0; j < TOPK_SLOTS; j++) {
        int64_t slot = w.first + (int64_t)j * t->nt, e = slot * st.per - st.head;
        uint32_t lanes = 0;
        _Pragma("unroll")
        for (int l = 0; l < 8; l++)
            if (l < st.per) lanes |= (uint32_t)may_pass(st, f, w.v[j], l) << l;
        if (e < 0 || e + st.per > st.count) lanes = (1u << st.per) - 1;
        mask |= slot < st.end ? lanes << (8 * j) : 0;
    }
    return mask;
}

TOPK_INLINE uint32_t word_at(topk_u32x4 v, int i) { return i == 0 ? v[0] : i == 1 ? v[1] : i == 2 ? v[2] : v[3]; }

/* The composite of candidate bit b of a 16-bit wave (candidates()), as wave_get makes it, with the slot
 * and the word picked by selects rather than by indexing the wave's registers with a variable (which
 * would put them in local memory). */
TOPK_INLINE uint64_t candidate_composite(const team *t, stream s, wave w, int b)
{
    int j = b >> 3, l = b & 7;
    int64_t slot = w.first + (int64_t)j * t->nt;
    int64_t e = slot * s.per + l - s.head;
    if (!(slot < s.end && e >= 0 && e < s.count)) return 0;
    topk_u32x4 v = w.v[0];
    _Pragma("unroll")
    for (int i = 1; i < TOPK_SLOTS; i++) v = j == i ? w.v[i] : v;
    uint32_t bits = word_at(v, (l / 2) & 3) >> (16 * (l % 2)) & 0xFFFFu;
    uint32_t key = s.kind == WAVE_BF16 ? topk_key_bf16(bits) : topk_key_f16(bits);
    return topk_composite(key ^ s.flip, e);
}

/* Runs BODY for every element c of the thread's slots of a wave that may be >= floor. For 16-bit waves
 * with a few candidates, only those, a composite each: on random data the floor soon leaves a wave with
 * almost none, and making the composites of the rest is what the large-batch kernel spends its time on.
 * Otherwise every element, a composite each in registers: fp32 (whose test costs more than its 4 lanes
 * a slot save), candidate lists, and a thread with many candidates (a chunk's first wave, a k above 128).
 * The measurements behind both choices: offload/NOTES.md, runs 28-32. */
#define FOR_EACH_CANDIDATE(t, st, w, floor, k, c, BODY)                                                  \
    {                                                                                                    \
        bool each_ = (st).kind == WAVE_LIST || (st).kind == WAVE_F32;                                    \
        uint32_t mask_ = each_ ? ~0u : candidates(t, st, w, floor, k);                                   \
        if (!each_ && __builtin_popcount(mask_) <= TOPK_FEW_CANDIDATES) {                                \
            for (; mask_; mask_ &= mask_ - 1) {                                                          \
                uint64_t c = candidate_composite(t, st, w, __builtin_ctz(mask_));                        \
                BODY                                                                                     \
            }                                                                                            \
        } else {                                                                                         \
            _Pragma("unroll") for (int j_ = 0; j_ < TOPK_SLOTS; j_++) FOR_EACH_IN_SLOT(t, st, w, j_, c, BODY) \
        }                                                                                                \
    }

/* Elements >= floor in the thread's slots of a wave. */
TOPK_INLINE uint32_t count_passing(const team *t, const selection *s, stream st, wave w)
{
    uint32_t n = 0;
    FOR_EACH_CANDIDATE(t, st, w, s->floor, s->k, c, n += c >= s->floor;)
    return n;
}

/* Appends the thread's `count` elements >= floor to the buffer (m->fill is the buffer's end). */
TOPK_INLINE void insert_passing(team *t, selection *s, stream st, wave w, uint32_t count)
{
    if (!count) return;
    uint32_t at;
#pragma omp atomic capture
    {
        at = t->m->fill;
        t->m->fill += count;
    }
    FOR_EACH_CANDIDATE(t, st, w, s->floor, s->k, c, if (c >= s->floor) s->buf[at++] = c;)
}

/* Keeps the best k of the buffer and raises the floor to theirs. Needs fill > k. */
TOPK_INLINE void selection_shrink(team *t, selection *s)
{
    uint64_t p = team_select(t, s->buf, s->fill, s->k, s->top_shift, s->column_shift);
    if (p > s->floor) s->floor = p;
    s->fill = team_keep(t, s->buf, s->fill, s->floor, s->buf);
}

/* Raises the floor so that exactly k entries of the buffer and of the wave's elements >= floor pass
 * (more than k pass now): one radix select over both, the wave staying in registers. */
TOPK_INLINE void select_in_union(team *t, selection *s, stream st, wave w)
{
    radix r = radix_start(t, s->k, s->top_shift, s->column_shift);
    do {
        for (uint32_t i = (uint32_t)t->tid; i < s->fill; i += (uint32_t)t->nt) {
            uint64_t c = s->buf[i];
            hist_add(r.hist, radix_bin(r, c), radix_matches(r, c));
        }
        _Pragma("unroll")
        for (int j = 0; j < TOPK_SLOTS; j++)
            FOR_EACH_IN_SLOT(t, st, w, j, c, hist_add(r.hist, radix_bin(r, c), c >= s->floor && radix_matches(r, c));)
        r = radix_settle(t, r);
    } while (!r.done);
    if (r.prefix > s->floor) s->floor = r.prefix;
}

/* Offers one wave. When its passing elements would take the buffer past its limit, or when they are the
 * first and more than k, the floor first rises so that exactly k of buffer and wave pass, and the buffer
 * is compacted: the buffer only ever needs room for k plus what one wave adds. */
TOPK_INLINE void selection_offer(team *t, selection *s, stream st, wave w)
{
    uint32_t count = count_passing(t, s, st, w);
    uint32_t total = team_sum(t, count);
    if (total == 0) return;
    if (s->fill + total > s->limit || (s->fill == 0 && total > s->k)) {
        select_in_union(t, s, st, w);
        if (s->fill) s->fill = team_keep(t, s->buf, s->fill, s->floor, s->buf);
        count = count_passing(t, s, st, w);
        total = team_sum(t, count); /* k - fill; its barrier also orders team_keep's reads of m->fill before the inserts */
    }
    insert_passing(t, s, st, w, count);
    team_barrier();
    s->fill += total;
}

/* Streams the slots of st's part through the selection, loading each wave while the one before is
 * being offered. */
TOPK_INLINE void selection_stream(team *t, selection *s, stream st)
{
    int64_t step = (int64_t)TOPK_SLOTS * t->nt;
    if (st.begin >= st.end) return;
    wave now = wave_load(t, st, st.begin);
    for (int64_t at = st.begin; at < st.end; at += step) {
        wave next = now;
        if (at + step < st.end) next = wave_load(t, st, at + step);
        selection_offer(t, s, st, now);
        now = next;
    }
}

/* Leaves the best min(k, fill) at buf[0..) and returns how many. */
TOPK_INLINE uint32_t selection_finish(team *t, selection *s)
{
    if (s->fill > s->k) selection_shrink(t, s);
    return s->fill;
}

#pragma omp end declare target

#endif
