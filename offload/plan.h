/*
 * The plan of one call: how rows are cut into chunks, how the chunks' candidates merge back, how many
 * teams run, and where everything lives in the workspace. Made on the host (plan.c), read by the
 * kernel (rows.h) rebuilt from the launch's scalars (topk_plan_rebuild).
 */
#ifndef TOPK_PLAN_H
#define TOPK_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "sizes.h"

#define TOPK_FAN_IN 64         /* candidate lists one merge reads, at most ... */
#define TOPK_MERGE_SPAN 16384  /* ... and no more than this many candidates (fan-in 2 at least) */

typedef struct topk_plan {
    /* the problem */
    int64_t batch, vocab, row_stride, k; /* row_stride in elements */
    int elem;                            /* bytes per element: 4 or 2 */
    uint32_t key_flip;
    /* rows in chunks: a row is a run of 16-byte slots (aligned down from its first element) */
    int64_t chunks;          /* chunks of a row, each its own team's leaf of the merge tree */
    int64_t slots_per_chunk;
    /* the merge tree of a row: level 0 has `chunks` nodes, level l + 1 has ceil(nodes / fan_in); the root
     * is the one node of the top level. Every node below the root keeps a list of k candidates; every
     * node above level 0 has a ticket. Lists and tickets are laid out level after level (rows.h). */
    int64_t fan_in;
    int64_t lists_per_row, tickets_per_row;
    /* teams */
    int64_t teams, threads;
    bool wide_k;      /* k > TOPK_SMEM_K: each team's buffer is a workspace slice */
    int64_t wide_cap; /* entries of that slice */
    int64_t shrink_at; /* a chunk's buffer is compacted before it passes this many (0: when it is full) */
    uint64_t form;    /* dtype | smallest << 2 | wide_k << 3 | shrink_at << 16, what the launch carries */
    /* workspace, device addresses */
    uint64_t *lists;   /* batch * lists_per_row * k composites */
    uint32_t *tickets; /* batch * tickets_per_row, zero between calls */
    uint64_t *wide;    /* teams * wide_cap composites */
    size_t list_bytes, ticket_bytes, wide_bytes;
} topk_plan;

#pragma omp declare target

/* Sizes the merge tree of plan->chunks leaves per row. The kernel walks it level by level with running
 * bases (rows.h), so no per-level arrays reach the device: an indexed array there lives in local
 * memory. A merge reads at most TOPK_MERGE_SPAN candidates. */
TOPK_INLINE void topk_plan_tree(topk_plan *plan)
{
    plan->fan_in = TOPK_MERGE_SPAN / plan->k;
    if (plan->fan_in > TOPK_FAN_IN) plan->fan_in = TOPK_FAN_IN;
    if (plan->fan_in < 2) plan->fan_in = 2;
    plan->lists_per_row = 0;
    plan->tickets_per_row = 0;
    for (int64_t nodes = plan->chunks; nodes > 1;) {
        plan->lists_per_row += nodes;
        nodes = (nodes + plan->fan_in - 1) / plan->fan_in;
        plan->tickets_per_row += nodes;
    }
}

/* The plan's fields that a launch carries as scalars (a struct would be copied to the device before
 * every launch), as X(type, name) in the kernel's argument order. The launch sites copy them out of the
 * plan (TOPK_PLAN_LOCALS), the kernel passes them down (TOPK_PLAN_PARAMS, TOPK_PLAN_ARGS) and
 * topk_plan_rebuild puts them back: a new field is one line here. */
#define TOPK_PLAN_LAUNCH_FIELDS(X)                                                                       \
    X(int64_t, batch) X(int64_t, vocab) X(int64_t, row_stride) X(int64_t, k) X(int64_t, chunks)          \
    X(int64_t, slots_per_chunk) X(int64_t, wide_cap) X(uint64_t, form) X(uint64_t *, lists)              \
    X(uint64_t *, wide) X(uint32_t *, tickets)
#define TOPK_PLAN_PARAM_(type, name) , type name
#define TOPK_PLAN_ARG_(type, name) , name
#define TOPK_PLAN_LOCAL_(type, name) type name = plan->name;
#define TOPK_PLAN_SET_(type, name) p->name = name;
#define TOPK_PLAN_PARAMS TOPK_PLAN_LAUNCH_FIELDS(TOPK_PLAN_PARAM_) /* ", int64_t batch, ..." */
#define TOPK_PLAN_ARGS TOPK_PLAN_LAUNCH_FIELDS(TOPK_PLAN_ARG_)     /* ", batch, ..." */
#define TOPK_PLAN_LOCALS TOPK_PLAN_LAUNCH_FIELDS(TOPK_PLAN_LOCAL_) /* locals of a launch site, from `plan` */

/* Rebuilds the plan on the device from the launch's scalars. form: dtype | smallest << 2 | wide_k << 3 |
 * shrink_at << 16. */
TOPK_INLINE void topk_plan_rebuild(topk_plan *p TOPK_PLAN_PARAMS)
{
    TOPK_PLAN_LAUNCH_FIELDS(TOPK_PLAN_SET_)
    int dtype = (int)(form & 3);
    p->elem = dtype == TOPK_F32 ? 4 : 2;
    p->key_flip = (form >> 2 & 1) ? (dtype == TOPK_F32 ? 0xFFFFFFFFu : 0xFFFFu) : 0;
    p->wide_k = form >> 3 & 1;
    p->shrink_at = (int64_t)(form >> 16 & 0xFFFF);
    topk_plan_tree(p);
}

#pragma omp end declare target

/* Fills in everything but the workspace addresses. team_threads: threads of a GPU team; shrink_at:
 * TOPK_PARAM_SHRINK_AT; 0 for the default of each. Returns TOPK_ERR_BAD_SHAPE for rows of 2^32 elements
 * or more (composites hold a 32-bit column). */
topk_status topk_plan_make(topk_plan *plan, const topk_problem *p, int64_t teams_per_row, int team_threads,
                           int shrink_at, int sm_count, bool on_host);

#endif
