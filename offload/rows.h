/*
 * The selection kernel's body: what one team does with its share of the rows.
 *
 * The big idea: one target region per call, no grid-wide barrier. A row is cut into `chunks` runs of
 * 16-byte slots; each (row, chunk) is one work item, and a team streams its chunk with 16-byte loads
 * through a selection (selection.h), keeping its chunk's best k. A row with one chunk is finished
 * there. Otherwise the team writes its k candidates (as composites) to the workspace, fences, and takes
 * a ticket on the merge node above it; the team that takes a node's last ticket merges that node's
 * fan_in lists (plan.h) the same way, and climbs on. The team that completes the root writes the row's
 * k best in order (placed by rank, or sorted first when long: write_row). Tickets are reset by the team that takes
 * the last one, so the workspace needs no clearing between calls.
 *
 * Teams loop over work items (item += number of teams), so any number of teams is correct: the GPU
 * runs one team per item, the host fallback a handful. Every merge input is a set that contains the
 * best k of its part of the row, and a composite order is total, so the result is exact for any
 * chunking, and so bit-for-bit the reference's.
 */
#ifndef TOPK_ROWS_H
#define TOPK_ROWS_H

#include "plan.h"
#include "selection.h"

/* A launch site's region for each dtype: REGION(KIND) with the dtype's wave kind as a constant, so that
 * each region is one dtype's kernel (gpu_select.c, sample_fused.c). The regions come in topk_dtype's
 * order, which is how the stream launcher (launcher.h) tells their kernels apart: place = dtype. */
#define BY_WAVE_KIND(dtype, REGION)                                                                      \
    switch (dtype) {                                                                                     \
    case TOPK_F32: REGION(WAVE_F32) break;                                                              \
    case TOPK_F16: REGION(WAVE_F16) break;                                                              \
    case TOPK_BF16: REGION(WAVE_BF16) break;                                                            \
    }

#pragma omp declare target

/* A stream over count elements of `elem` bytes from base, cut in parts of slots_per_part slots:
 * this is part `part`. */
TOPK_INLINE stream stream_over(const void *base, int elem, int kind, int64_t count, uint32_t flip,
                               int64_t part, int64_t slots_per_part)
{
    int64_t misalign = (int64_t)((uintptr_t)base & 15);
    stream s = {
        .slots = (const topk_u32x4 *)((const char *)base - misalign),
        .kind = kind,
        .per = 16 / elem,
        .head = misalign / elem,
        .count = count,
        .flip = flip,
    };
    int64_t slots = (misalign + count * elem + 15) / 16;
    s.begin = part * slots_per_part;
    s.end = s.begin + slots_per_part < slots ? s.begin + slots_per_part : slots;
    return s;
}

/* Writes the kept best (buf[0..kept)) to a candidate list of k entries, padded with 0, and makes the
 * writes visible device-wide before the ticket. */
TOPK_INLINE void publish_list(team *t, const selection *s, uint32_t kept, uint64_t *list, int64_t k)
{
    for (int64_t i = t->tid; i < k; i += t->nt) list[i] = i < kept ? s->buf[i] : 0;
    topk_device_fence();
    team_barrier();
}

/* Takes a ticket on a merge node with `inputs` lists; true (in every thread) for the last taker, which
 * then also resets the ticket for the next call. */
TOPK_INLINE bool take_ticket(team *t, uint32_t *ticket, uint32_t inputs)
{
    if (t->tid == 0) {
        uint32_t before;
#pragma omp atomic capture
        {
            before = *ticket;
            *ticket += 1;
        }
        bool last = before + 1 == inputs;
        if (last) {
#pragma omp atomic write
            *ticket = 0;
        }
        topk_device_fence();
        t->m->last = last;
    }
    team_barrier();
    bool last = t->m->last;
    if (last) topk_device_fence();
    team_barrier(); /* m->last is rewritten only after every thread read it */
    return last;
}

/* Writes entry c of a row to place j of its output. */
TOPK_INLINE void write_entry(const topk_plan *p, const char *rowp, int64_t row, uint64_t c, int64_t j, char *values,
                             int64_t *indices)
{
    int64_t column = topk_composite_column(c);
    int64_t out = row * p->k + j;
    indices[out] = column;
    if (p->elem == 4)
        ((uint32_t *)values)[out] = ((const uint32_t *)rowp)[column];
    else
        ((uint16_t *)values)[out] = ((const uint16_t *)rowp)[column];
}

/* The place of composite c among buf[0..kept) best first: how many entries beat it (composites are unique). */
TOPK_INLINE uint32_t rank_in(const uint64_t *buf, uint32_t kept, uint64_t c)
{
    uint32_t rank = 0;
    for (uint32_t i = 0; i < kept; i++) rank += buf[i] > c;
    return rank;
}

/* The root: writes the row's best k, best first. A short list (team memory) is placed by rank, the
 * number of entries above each one (composites are unique), with one pass and no barrier between
 * steps; a long one is sorted first (bitonic, log^2 barrier steps). */
TOPK_INLINE void write_row(team *t, selection *s, uint32_t kept, const topk_plan *p, const char *rowp,
                             int64_t row, char *values, int64_t *indices)
{
    if (kept <= TOPK_RANK_SORT_MOST && !p->wide_k) {
        for (uint32_t j = (uint32_t)t->tid; j < kept; j += (uint32_t)t->nt)
            write_entry(p, rowp, row, s->buf[j], rank_in(s->buf, kept, s->buf[j]), values, indices);
    } else {
        team_sort(t, s->buf, kept);
        for (int64_t j = t->tid; j < kept; j += t->nt) write_entry(p, rowp, row, s->buf[j], j, values, indices);
    }
    team_barrier(); /* the buffer is reused by the next item */
}

/* Stage clocks for profiling (clocks != NULL): [0] the first team's start, [1] the last chunk
 * selection's end, [2] the last team's end, in nanoseconds of the device's global timer. */
TOPK_INLINE uint64_t device_clock_ns(void)
{
#if defined(__NVPTX__)
    return __nvvm_read_ptx_sreg_globaltimer();
#else
    return (uint64_t)(omp_get_wtime() * 1e9);
#endif
}

TOPK_INLINE void clock_at_least(uint64_t *clock, uint64_t now)
{
#pragma omp atomic compare
    if (*clock < now) *clock = now;
}

TOPK_INLINE void clock_at_most(uint64_t *clock, uint64_t now)
{
#pragma omp atomic compare
    if (*clock > now) *clock = now;
}

/* The selection's limit for a stream: a chunk of a row compacts early, at the plan's shrink_at, so that
 * its floor keeps up with its k-th best (plan.c: default_shrink_at); a merge's lists are mostly
 * candidates, which a higher floor would not drop, so a merge compacts only when its buffer is full.
 * Always more than k, so that a compaction has more than k to choose from. */
TOPK_INLINE uint32_t stream_limit(const topk_plan *p, bool list)
{
    uint32_t room = p->wide_k ? (uint32_t)p->wide_cap : TOPK_CAP;
    if (list || p->shrink_at <= 0 || p->shrink_at >= room) return room;
    return p->shrink_at > p->k ? (uint32_t)p->shrink_at : (uint32_t)p->k + 1;
}

/* One work item: a chunk of a row, then the merges its ticket wins. True (in every thread) when the team
 * completed a row's root: then *row is that row and s->buf[0..*kept) its best k, unordered. kind is a
 * constant at each launch site (gpu_select.c), so each kernel holds one dtype's code. */
TOPK_INLINE bool climb_item(team *t, selection *s, const topk_plan *p, int kind, const char *input, int64_t item,
                            uint64_t *clocks, int64_t *row_out, uint32_t *kept_out)
{
    int64_t row = item / p->chunks, node = item % p->chunks;
    const char *rowp = input + row * p->row_stride * p->elem;
    stream st = stream_over(rowp, p->elem, kind, p->vocab, p->key_flip, node, p->slots_per_chunk);
    s->limit = stream_limit(p, false);
    selection_start(t, s);
    selection_stream(t, s, st);
    uint32_t kept = selection_finish(t, s);
    if (clocks && t->tid == 0) clock_at_least(&clocks[1], device_clock_ns());
    /* Climb the merge tree: the current level has `nodes` nodes, its lists start at list `list_base` of
     * the row and the tickets of its parents at `ticket_base`. */
    uint64_t *lists = p->lists + row * p->lists_per_row * p->k;
    uint32_t *tickets = p->tickets + row * p->tickets_per_row;
    for (int64_t nodes = p->chunks, list_base = 0, ticket_base = 0; nodes > 1;) {
        publish_list(t, s, kept, lists + (list_base + node) * p->k, p->k);
        int64_t parents = (nodes + p->fan_in - 1) / p->fan_in;
        int64_t parent = node / p->fan_in, first = parent * p->fan_in;
        int64_t inputs = nodes - first < p->fan_in ? nodes - first : p->fan_in;
        if (!take_ticket(t, tickets + ticket_base + parent, (uint32_t)inputs)) return false;
        st = stream_over(lists + (list_base + first) * p->k, 8, WAVE_LIST, inputs * p->k, 0, 0, INT64_MAX);
        s->limit = stream_limit(p, true);
        selection_start(t, s);
        selection_stream(t, s, st);
        kept = selection_finish(t, s);
        list_base += nodes;
        ticket_base += parents;
        nodes = parents;
        node = parent;
    }
    *row_out = row;
    *kept_out = kept;
    return true;
}

/* A team's start on a launch: the plan rebuilt from the launch's scalars (topk_plan_rebuild), the team
 * and its selection set up, the first-start clock taken. */
TOPK_INLINE void team_setup(team_mem *m, team *t, selection *s, topk_plan *p TOPK_PLAN_PARAMS, uint64_t *clocks)
{
    topk_plan_rebuild(p TOPK_PLAN_ARGS);
    team_start(t, m);
    s->k = (uint32_t)p->k;
    s->top_shift = p->elem == 4 ? 56 : 40;
    s->column_shift = radix_column_shift(p->vocab);
    if (p->wide_k) {
        s->buf = p->wide + omp_get_team_num() * p->wide_cap;
    } else {
        s->buf = m->buf;
    }
    if (clocks && t->tid == 0) clock_at_most(&clocks[0], device_clock_ns());
}

/* What every thread of every team runs: m is the team's shared memory, kind the wave kind of the
 * input's dtype (a constant), clocks NULL or the profile's stage clocks, the rest the launch's
 * arguments (topk_plan_rebuild). */
TOPK_INLINE void topk_run_team(team_mem *m, int kind, const char *input, char *values,
                               int64_t *indices TOPK_PLAN_PARAMS, uint64_t *clocks)
{
    topk_plan p;
    team t;
    selection s;
    team_setup(m, &t, &s, &p TOPK_PLAN_ARGS, clocks);
    int64_t items = p.batch * p.chunks, row;
    uint32_t kept;
    for (int64_t item = omp_get_team_num(); item < items; item += omp_get_num_teams())
        if (climb_item(&t, &s, &p, kind, input, item, clocks, &row, &kept))
            write_row(&t, &s, kept, &p, input + row * p.row_stride * p.elem, row, values, indices);
    if (clocks && t.tid == 0) clock_at_least(&clocks[2], device_clock_ns());
}

#pragma omp end declare target

#endif
