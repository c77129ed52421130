/*
 * The cpu backend: a running threshold that rejects almost every element with one vector compare.
 *
 * Big idea. For the top k of a random row only a few elements can ever matter: once we hold k
 * candidates, an element is interesting only if its ordered key beats the k-th best so far, and after
 * a short start that threshold is high. So each thread streams its part of a row in 64-byte blocks
 * (16 fp32 or 32 fp16/bf16 elements), compares a whole block with the threshold in SIMD registers, and
 * looks only at the lanes of a block that fired. Winners go into a small buffer of
 * composites; when the buffer fills, an exact selection keeps the best k and raises the
 * threshold. Expected survivors in random data are about k * ln(V / k), so the cost is one read of the
 * row; adversarial rows (ascending) only make the exact part busier, never wrong.
 *
 * Candidates are composites (keys.h: key << 32 | ~column). Comparing them compares keys first and, for equal
 * keys, prefers the smaller column, which is exactly the contract's order; so the whole selection is
 * integer compares. Columns are row-relative and fit in 32 bits (rows of up to 2^32 - 1 elements).
 *
 * Parallelism. Rows are spread over threads. When there are fewer rows than threads, each row is cut
 * into segments, every segment keeps its own top k, and one pass per row merges the segments' winners.
 */
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "select_words.h"

enum { MIN_SEGMENT = 1 << 15 };
/* A segment's buffer holds 2k + 64 words: a selection every k + 64 winners keeps the threshold close
 * behind the true k-th key (a larger buffer lets it lag, and a lagging threshold lets more through). */
#define CAPACITY(k) (2 * (k) + 64)

typedef struct segment_state {
    uint64_t *words;    /* buffer of candidate words */
    int64_t count;      /* words in use */
    int64_t capacity;   /* words it holds before a selection is due */
    int64_t keep;       /* how many best words a selection keeps: min(k, segment length) */
    uint64_t threshold; /* the keep-th best word once count reached keep; 0 before */
} segment_state;


static inline int64_t word_column(uint64_t word) { return (int64_t)(uint32_t)~word; }

/* Keep only the best `keep` words and raise the threshold to the worst of them. */
static void shrink(segment_state *s)
{
    topk_select_words(s->words, s->count, s->keep);
    s->count = s->keep;
    uint64_t worst = s->words[0];
    for (int64_t i = 1; i < s->keep; i++) worst = s->words[i] < worst ? s->words[i] : worst;
    s->threshold = worst;
}

static inline void offer(segment_state *s, uint64_t word)
{
    if (word <= s->threshold) return;
    s->words[s->count++] = word;
    if (s->count == s->capacity) shrink(s);
}

/*
 * The block filter works on signed keys, which SIMD compares natively: for a float's bits b,
 * b ^ ((b >> sign) & magnitude) orders like the value, -0.0 below +0.0, with no conversion. NaNs are
 * the only values it misplaces, so every NaN is let through and the exact word compare decides. The
 * vectors are GCC/Clang vector extensions: SSE2 or AVX2 (a clone picked at load time) on x86-64,
 * whatever the target has elsewhere. A block is 64 bytes: 16 fp32 or 32 fp16/bf16 elements.
 */
#if defined(__x86_64__) && !defined(__NVPTX__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef SIMD_CLONES
#define SIMD_CLONES
#endif

typedef int32_t lanes32 __attribute__((vector_size(64)));
typedef int16_t lanes16 __attribute__((vector_size(64)));
typedef bool bits16 __attribute__((ext_vector_type(16)));
typedef bool bits32 __attribute__((ext_vector_type(32)));

/* One bit per lane (a movemask on x86), so a firing block visits only the lanes that fired. */
static inline uint32_t lane_bits32(const lanes32 *pass)
{
    bits16 b = __builtin_convertvector(*pass, bits16);
    uint16_t out;
    memcpy(&out, &b, sizeof out);
    return out;
}

static inline uint32_t lane_bits16(const lanes16 *pass)
{
    bits32 b = __builtin_convertvector(*pass, bits32);
    uint32_t out;
    memcpy(&out, &b, sizeof out);
    return out;
}

/*
 * offer_fired_<dtype>: offers the elements of the block at column c whose bits are set in `fired`. Kept
 * out of line so that the filter loops around it stay in registers.
 */
#define DEFINE_OFFER_FIRED(NAME, ELEM, KEY)                                                                  \
    __attribute__((noinline)) static void NAME(const ELEM *row, int64_t c, uint32_t fired, uint32_t flip,  \
                                               segment_state *s)                                            \
    {                                                                                                        \
        for (; fired; fired &= fired - 1) {                                                                  \
            int i = __builtin_ctz(fired);                                                                    \
            offer(s, topk_composite(KEY(row[c + i]) ^ flip, c + i));                                              \
        }                                                                                                    \
    }

DEFINE_OFFER_FIRED(offer_fired_f32, uint32_t, topk_key_f32)
DEFINE_OFFER_FIRED(offer_fired_f16, uint16_t, topk_key_f16)
DEFINE_OFFER_FIRED(offer_fired_bf16, uint16_t, topk_key_bf16)

/*
 * filter_<dtype>: offers every element of row[from, end) that beats the threshold. A block is looked at
 * element by element only if its SIMD filter fires, which compares keys alone: an element whose key
 * merely equals the threshold's has a larger column than the threshold's element (columns are scanned
 * in order, and a sampled threshold is set to lose every tie) and so ranks below it. The bar only
 * moves when something was offered.
 */
#define DEFINE_FILTER(NAME, ELEM, LANE, LANES, LANE_BITS, SIGN_SHIFT, MAGNITUDE, INF, KEY, OFFER_FIRED)      \
    SIMD_CLONES static void NAME(const ELEM *row, int64_t from, int64_t end, uint32_t flip, segment_state *s) \
    {                                                                                                        \
        enum { N = 64 / sizeof(ELEM) };                                                                      \
        int64_t c = from;                                                                                    \
        LANES signed_flip = (LANES){} + (LANE)(flip ? -1 : 0);                                              \
        /* The bar as a signed key: the unsigned key with its top bit flipped. */                            \
        LANES bar = (LANES){} + (LANE)((uint32_t)(s->threshold >> 32) ^ (MAGNITUDE + 1u));                   \
        for (; c + N <= end; c += N) {                                                                       \
            LANES bits;                                                                                      \
            memcpy(&bits, row + c, 64);                                                                      \
            LANES magnitude = bits & (LANE)MAGNITUDE;                                                        \
            LANES keys = (bits ^ ((bits >> SIGN_SHIFT) & (LANE)MAGNITUDE)) ^ signed_flip;                      \
            LANES pass = (keys > bar) | (magnitude > (LANE)INF);                                             \
            uint32_t fired = LANE_BITS(&pass);                                                               \
            if (__builtin_expect(fired != 0, 0)) {                                                           \
                OFFER_FIRED(row, c, fired, flip, s);                                                         \
                bar = (LANES){} + (LANE)((uint32_t)(s->threshold >> 32) ^ (MAGNITUDE + 1u));                 \
            }                                                                                                \
        }                                                                                                    \
        for (; c < end; c++) offer(s, topk_composite(KEY(row[c]) ^ flip, c));                                    \
    }

DEFINE_FILTER(filter_f16, uint16_t, int16_t, lanes16, lane_bits16, 15, 0x7FFF, 0x7C00, topk_key_f16, offer_fired_f16)
DEFINE_FILTER(filter_bf16, uint16_t, int16_t, lanes16, lane_bits16, 15, 0x7FFF, 0x7F80, topk_key_bf16, offer_fired_bf16)

/*
 * fp32 has native SIMD float compares, which cost one instruction where the key transform costs seven.
 * The filter only has to let through a superset of the winners: "not below the threshold's value" is
 * true for every larger value, for +0.0 against a -0.0 threshold, for ties, and for NaN (an unordered
 * compare is false), and the exact word compare sorts those out. Smallest-first negates both sides.
 */
typedef float lanesf __attribute__((vector_size(64)));

static inline void f32_bar(const segment_state *s, uint32_t flip, lanesf *bar)
{
    uint32_t key = (uint32_t)(s->threshold >> 32) ^ flip;
    uint32_t bits = (key & 0x80000000u ? key ^ 0x80000000u : ~key) ^ (flip & 0x80000000u);
    lanes32 splat = (lanes32){} + (int32_t)bits;
    memcpy(bar, &splat, 64);
}

SIMD_CLONES static void filter_f32(const uint32_t *row, int64_t from, int64_t end, uint32_t flip, segment_state *s)
{
    enum { N = 16 };
    int64_t c = from;
    lanes32 negate = (lanes32){} + (int32_t)(flip & 0x80000000u);
    lanesf bar;
    f32_bar(s, flip, &bar);
    for (; c + N <= end; c += N) {
        lanes32 bits;
        memcpy(&bits, row + c, 64);
        bits ^= negate;
        lanesf x;
        memcpy(&x, &bits, 64);
        lanes32 pass = ~(x < bar);
        uint32_t fired = lane_bits32(&pass);
        if (__builtin_expect(fired != 0, 0)) {
            offer_fired_f32(row, c, fired, flip, s);
            f32_bar(s, flip, &bar);
        }
    }
    for (; c < end; c++) offer(s, topk_composite(topk_key_f32(row[c]) ^ flip, c));
}

static void filter(const topk_problem *p, const void *row, int64_t from, int64_t end, segment_state *s)
{
    switch (p->dtype) {
    case TOPK_F32: filter_f32(row, from, end, p->key_flip, s); break;
    case TOPK_F16: filter_f16(row, from, end, p->key_flip, s); break;
    case TOPK_BF16: filter_bf16(row, from, end, p->key_flip, s); break;
    }
}

/*
 * When k is a sizeable share of the segment, a running threshold starts too low and lets a large part
 * of the row through before it catches up. Then a strided sample of SAMPLE elements gives a starting
 * threshold: the word of sample rank mu + 3 sqrt(mu) + 3, where mu is the number of sampled elements
 * expected above the true k-th, so that at least keep elements beat it unless the row is very unlike
 * its sample. The threshold takes column 0's place in the word so that a tie with its key never beats
 * it: only strictly larger keys pass. Returns false (no threshold set) when sampling does not pay.
 */
enum { SAMPLE = 256, SAMPLE_RUN = 8 }; /* runs of 8 neighbours: 32 cache lines touched, not 256 */

static bool sample_threshold(const topk_problem *p, const char *row, int64_t begin, int64_t end, segment_state *s)
{
    int64_t n = end - begin;
    double mu = (double)s->keep * SAMPLE / (double)n;
    if (mu < 1.0 || n < 4 * SAMPLE) return false;
    int64_t rank = (int64_t)(mu + 3.0 * __builtin_sqrt(mu)) + 3;
    if (rank >= SAMPLE / 2) return false;
    uint64_t sample[SAMPLE];
    for (int64_t run = 0; run < SAMPLE / SAMPLE_RUN; run++) {
        int64_t at = begin + run * (n - SAMPLE_RUN) / (SAMPLE / SAMPLE_RUN - 1);
        for (int64_t i = 0; i < SAMPLE_RUN; i++) sample[run * SAMPLE_RUN + i] = topk_composite(topk_key_at(p, row, at + i), at + i);
    }
    topk_select_words(sample, SAMPLE, rank);
    uint64_t lowest = sample[0];
    for (int64_t i = 1; i < rank; i++) lowest = sample[i] < lowest ? sample[i] : lowest;
    s->threshold = lowest | 0xFFFFFFFFu;
    return true;
}

/* One segment [begin, end) of one row: afterwards s->words[0, keep) hold its best keep words. */
static void scan_segment(const topk_problem *p, int64_t row_index, int64_t begin, int64_t end, segment_state *s)
{
    const char *row = topk_row(p, row_index);
    if (sample_threshold(p, row, begin, end, s)) {
        filter(p, row, begin, end, s);
        if (s->count >= s->keep) {
            shrink(s);
            return;
        }
        s->count = 0; /* the row was unlike its sample: start again the plain way */
    }
    /* The first keep elements are taken as they come: there is no threshold yet. */
    for (int64_t c = begin; c < begin + s->keep; c++) s->words[s->count++] = topk_composite(topk_key_at(p, row, c), c);
    shrink(s);
    filter(p, row, begin + s->keep, end, s);
    shrink(s);
}

/* Sorts a row's k winners best first and writes values (the input's own bits) and columns. */
static void emit_row(const topk_problem *p, int64_t row, uint64_t *words)
{
    topk_sort_words_descending(words, p->k);
    size_t elem = (size_t)topk_dtype_size(p->dtype);
    const char *in = topk_row(p, row);
    char *values = (char *)p->values + (size_t)(row * p->k) * elem;
    int64_t *indices = p->indices + row * p->k;
    for (int64_t j = 0; j < p->k; j++) {
        int64_t column = word_column(words[j]);
        indices[j] = column;
        memcpy(values + (size_t)j * elem, in + (size_t)column * elem, elem);
    }
}

static int64_t segments_per_row(const topk_problem *p, int threads, int64_t chunk)
{
    int64_t min_len = chunk > 0 ? chunk : MIN_SEGMENT;
    int64_t by_threads = p->batch >= threads ? 1 : (threads + p->batch - 1) / p->batch;
    int64_t by_length = p->vocab / min_len > 1 ? p->vocab / min_len : 1;
    int64_t segments = by_threads < by_length ? by_threads : by_length;
    /* Each segment must be at least k long, or merging would cost more than it saves. */
    while (segments > 1 && p->vocab / segments < p->k) segments--;
    return segments;
}

topk_status topk_cpu_select(const topk_problem *p, int threads, int64_t chunk)
{
    /* Columns travel in 32 bits; a row of 2^32 elements (16 GiB of fp32) takes the slow exact path. */
    if (p->vocab >= ((int64_t)1 << 32)) return topk_reference_select(p);
    if (threads <= 0) threads = omp_get_max_threads();
    /* Waking a thread costs microseconds: give each one at least MIN_SEGMENT elements of work. */
    int64_t useful = (p->batch * p->vocab + MIN_SEGMENT - 1) / MIN_SEGMENT;
    if (useful < threads) threads = (int)useful;
    int64_t segments = segments_per_row(p, threads, chunk);
    int64_t tasks = p->batch * segments;
    if (tasks < threads) threads = (int)tasks;
    int64_t seg_len = (p->vocab + segments - 1) / segments;
    int64_t keep = p->k < seg_len ? p->k : seg_len;
    int64_t scratch_len = CAPACITY(keep);
    /* Segment winners of every task when rows are split; a thread's scratch buffer always. */
    uint64_t *winners = segments > 1 ? malloc((size_t)tasks * (size_t)keep * sizeof *winners) : NULL;
    uint64_t *scratch = malloc((size_t)threads * (size_t)scratch_len * sizeof *scratch);
    if (!scratch || (segments > 1 && !winners)) {
        free(winners);
        free(scratch);
        return TOPK_ERR_OUT_OF_MEMORY;
    }

    /* Profiling: the region's first phase (filter every task, and write whole rows) and its merge phase. */
    topk_stage_times *profile = p->profile;
    double region_start = profile ? topk_now() : 0, selected = 0;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        uint64_t *mine = scratch + (size_t)omp_get_thread_num() * (size_t)scratch_len;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t row = t / segments, seg = t % segments;
            int64_t begin = seg * seg_len, end = begin + seg_len < p->vocab ? begin + seg_len : p->vocab;
            int64_t seg_keep = p->k < end - begin ? p->k : end - begin;
            int64_t capacity = CAPACITY(seg_keep);
            segment_state s = {mine, 0, capacity, seg_keep, 0};
            scan_segment(p, row, begin, end, &s);
            if (segments == 1) {
                emit_row(p, row, mine);
            } else {
                uint64_t *out = winners + (size_t)t * (size_t)keep;
                memcpy(out, mine, (size_t)s.count * sizeof *out);
                for (int64_t i = s.count; i < keep; i++) out[i] = 0; /* shorter last segment: never wins */
            }
        }
        if (segments > 1) {
            if (profile && omp_get_thread_num() == 0) selected = topk_now(); /* after the loop's barrier */
#pragma omp for schedule(dynamic, 1)
            for (int64_t row = 0; row < p->batch; row++) {
                uint64_t *row_words = winners + (size_t)(row * segments) * (size_t)keep;
                topk_select_words(row_words, segments * keep, p->k);
                emit_row(p, row, row_words);
            }
        }
    }
    if (profile) {
        double finished = topk_now();
        profile->cpu_select_us = ((segments > 1 ? selected : finished) - region_start) * 1e6;
        profile->cpu_merge_us = segments > 1 ? (finished - selected) * 1e6 : 0;
    }
    free(winners);
    free(scratch);
    return TOPK_OK;
}
