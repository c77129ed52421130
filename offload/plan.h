/*
 * The plan of one call: how rows are cut into chunks, how the chunks' candidates merge back, how many
 * teams run, and where everything lives in the workspace. Made on the host (plan.c), read by the
 * kernel (rows.h) as a firstprivate copy.
 */
#ifndef TOPK_PLAN_H
#define TOPK_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "sizes.h"

#define TOPK_FAN_IN 16      /* candidate lists one merge reads, at most ... */
#define TOPK_MERGE_SPAN 4096 /* ... and no more than this many candidates (fan-in 2 at least) */
#define TOPK_MAX_LEVELS 20   /* merge levels above the chunks: 2^20 chunks is far beyond any row */

typedef struct topk_plan {
    /* the problem */
    int64_t batch, vocab, row_stride, k; /* row_stride in elements */
    int elem;                            /* bytes per element: 4 or 2 */
    bool bf16;                           /* for 16-bit elements: bfloat16 rather than binary16 */
    uint32_t key_flip;
    /* rows in chunks: a row is a run of 16-byte slots (aligned down from its first element) */
    int64_t chunks;          /* chunks of a row, each its own team's leaf of the merge tree */
    int64_t slots_per_chunk;
    /* the merge tree of a row: nodes[0] = chunks, nodes[l + 1] = ceil(nodes[l] / fan_in), the root is
     * level `levels` (one node). Level l < levels keeps k candidates per node. */
    int64_t fan_in;
    int levels;
    int64_t nodes[TOPK_MAX_LEVELS + 1];
    int64_t list_base[TOPK_MAX_LEVELS + 1];   /* first candidate list of level l within a row */
    int64_t ticket_base[TOPK_MAX_LEVELS + 1]; /* first ticket of level l (>= 1) within a row */
    int64_t lists_per_row, tickets_per_row;
    /* teams */
    int64_t teams, threads;
    bool wide_k;      /* k > TOPK_SMEM_K: each team's buffer is a workspace slice */
    int64_t wide_cap; /* entries of that slice */
    /* workspace, device addresses */
    uint64_t *lists;   /* batch * lists_per_row * k composites */
    uint32_t *tickets; /* batch * tickets_per_row, zero between calls */
    uint64_t *wide;    /* teams * wide_cap composites */
    size_t list_bytes, ticket_bytes, wide_bytes;
} topk_plan;

#pragma omp declare target

/* Lays out the merge tree of plan->chunks leaves per row: fan-in, levels, nodes, list and ticket
 * bases. A merge reads at most TOPK_MERGE_SPAN candidates: with k = 1024 and 9 or more lists per merge,
 * or k = 2048 and 16, the GPU gave wrong rows (2026-11-28, offload/NOTES.md), while merges of up to
 * two waves of candidates were right in every case measured. */
TOPK_INLINE void topk_plan_tree(topk_plan *plan)
{
    plan->fan_in = TOPK_MERGE_SPAN / plan->k;
    if (plan->fan_in > TOPK_FAN_IN) plan->fan_in = TOPK_FAN_IN;
    if (plan->fan_in < 2) plan->fan_in = 2;
    plan->levels = 0;
    plan->nodes[0] = plan->chunks;
    plan->lists_per_row = 0;
    plan->tickets_per_row = 0;
    while (plan->nodes[plan->levels] > 1 && plan->levels < TOPK_MAX_LEVELS) {
        int l = plan->levels;
        plan->list_base[l] = plan->lists_per_row;
        plan->lists_per_row += plan->nodes[l];
        plan->nodes[l + 1] = (plan->nodes[l] + plan->fan_in - 1) / plan->fan_in;
        plan->ticket_base[l + 1] = plan->tickets_per_row;
        plan->tickets_per_row += plan->nodes[l + 1];
        plan->levels++;
    }
}

/* A launch carries the plan as scalars (a struct would be copied to the device before every launch);
 * this rebuilds it on the device. form: dtype | smallest << 2 | wide_k << 3. */
TOPK_INLINE void topk_plan_rebuild(topk_plan *p, int64_t batch, int64_t vocab, int64_t row_stride, int64_t k,
                                   int64_t chunks, int64_t slots_per_chunk, int64_t wide_cap, uint64_t form,
                                   uint64_t *lists, uint64_t *wide, uint32_t *tickets)
{
    int dtype = (int)(form & 3);
    p->batch = batch;
    p->vocab = vocab;
    p->row_stride = row_stride;
    p->k = k;
    p->elem = dtype == TOPK_F32 ? 4 : 2;
    p->bf16 = dtype == TOPK_BF16;
    p->key_flip = (form >> 2 & 1) ? (dtype == TOPK_F32 ? 0xFFFFFFFFu : 0xFFFFu) : 0;
    p->wide_k = form >> 3 & 1;
    p->chunks = chunks;
    p->slots_per_chunk = slots_per_chunk;
    p->wide_cap = wide_cap;
    p->lists = lists;
    p->wide = wide;
    p->tickets = tickets;
    topk_plan_tree(p);
}

#pragma omp end declare target

/* Packs the plan for a launch. */
uint64_t topk_plan_form(const topk_plan *plan, topk_dtype dtype);

/* Fills in everything but the workspace addresses. Returns TOPK_ERR_BAD_SHAPE for rows of 2^32
 * elements or more (composites hold a 32-bit column). */
topk_status topk_plan_make(topk_plan *plan, const topk_problem *p, int64_t teams_per_row, int sm_count, bool on_host);

#endif
