/*
 * The fixed sizes of the selection kernels, shared by the planner (host) and the kernels (device).
 */
#ifndef TOPK_SIZES_H
#define TOPK_SIZES_H

#define TOPK_TEAM_THREADS_MOST 256 /* threads of a GPU team that plan.c picks, at most (fewer for small k) */
#define TOPK_LAUNCH_TEAMS_MOST 65536 /* teams of one launch (more work items loop); also teams_per_row's bound */
#define TOPK_CAP 4096         /* composites in the team-shared buffer */
#define TOPK_SLOTS 4          /* 16-byte slots a thread holds per wave */
#define TOPK_SLOT_MOST 8      /* elements in a slot (8 of 16 bits) */
#define TOPK_SMEM_K 2048      /* largest k the team-shared buffer serves; the rest is headroom, so the floor rises rarely */
#define TOPK_BINS 256         /* radix digits of 8 bits */
#define TOPK_GROUPS 16        /* the bins, summed 16 at a time to find a digit's bucket quickly */
#define TOPK_RANK_SORT_MOST 256 /* a root list this short is placed by rank rather than sorted */
#define TOPK_KEEP 16          /* composites a thread moves per round of a compaction */
#define TOPK_FEW_CANDIDATES 8 /* a thread with more candidates in a wave makes every composite in registers */
#define TOPK_CANDIDATES_K_MOST 128 /* above this k, every wave lets enough through that the test costs more */

/* Kernel helpers are inlined into the region: a call would keep the per-thread arrays (a wave of
 * composites) and the team and selection structs in local memory. */
#define TOPK_INLINE static inline __attribute__((always_inline))

#endif
