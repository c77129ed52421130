/*
 * Shapes a call into work items and a merge tree (plan.h).
 *
 * Chunks per row: as many (row, chunk) items as teams can be resident at once, so that a batch of 1 to
 * 32 rows is still read by the whole GPU and a large batch runs in one round; but a chunk keeps at
 * least TOPK_MIN_CHUNK elements, so small rows stay whole (one team per row, no merge). A k above TOPK_SMEM_K keeps rows whole too:
 * the team's buffer is then a workspace slice, and merging lists that long would cost more than it saves.
 */
#include "plan.h"

#include <omp.h>

#include "sizes.h"

#define TOPK_RESIDENT_THREADS 256   /* team threads a multiprocessor holds: ~240 registers each */
#define TOPK_MIN_CHUNK 1024         /* elements: below this a chunk's fixed costs dominate */
#define TOPK_LIST_BYTES (1ll << 30) /* cap on the candidate lists of one call */
#define TOPK_WIDE_BYTES (1ll << 30) /* cap on the wide-k buffers of one call */

/* Threads of a GPU team. The kernel holds ~240 registers a thread, so the team size sets how many
 * teams share a multiprocessor: 64 threads give 4 (while one team waits at a barrier, another works),
 * 256 give one. Measured on the H200 (offload/NOTES.md, run 18): small k is fastest with 64, k of a few
 * hundred with 128, k = 2048 with 256, whose merges and final sort need the threads. */
static int gpu_team_threads(int64_t k)
{
    if (k <= 128) return 64;
    if (k <= 1024) return 128;
    return TOPK_TEAM_THREADS_MOST;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t pow2_at_least(int64_t n)
{
    int64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

/* The candidate bytes the merge tree needs. */
static int64_t candidate_bytes(topk_plan *plan)
{
    topk_plan_tree(plan);
    return plan->batch * plan->lists_per_row * plan->k * 8;
}

/* Cuts each row's slots into about `wanted` chunks of equal length. */
static void cut_rows(topk_plan *plan, int64_t wanted)
{
    int64_t slots = ceil_div(15 + plan->vocab * plan->elem, 16); /* the most any row can span */
    if (wanted > slots) wanted = slots;
    if (wanted < 1) wanted = 1;
    plan->slots_per_chunk = ceil_div(slots, wanted);
    plan->chunks = ceil_div(slots, plan->slots_per_chunk);
}

/* When a chunk's team compacts its buffer (selection_offer). It used to be only when the buffer was
 * full (TOPK_CAP): at 256 x 151936 bf16 k 50 a chunk of ~76K elements never fills 4096 entries, so its
 * floor stayed where the first wave put it, every later wave let ~k candidates through, and every
 * thread took the exact (slow) path of FOR_EACH_CANDIDATE (run 29). Compacting at a few k keeps the
 * floor near the chunk's k-th best at the price of a radix select every few waves, which pays only when
 * a chunk has many waves left to filter. Measured on an H100 (bench/RESULTS.md, tenth session: 4k
 * against the old rule): 37 waves a chunk 1.29x (256 x 151936 bf16), 64 waves 1.49x, 12-16 waves
 * 1.06-1.10x, 8-9 waves 0.93-0.96x, fp32 4096 x 4096 (4 waves) 0.65x. For k above
 * TOPK_CANDIDATES_K_MOST the waves take the exact path anyway, so they keep the old rule. */
#define TOPK_SHRINK_EARLY_WAVES 12 /* waves of a chunk from which it compacts at a few k */

static int64_t default_shrink_at(const topk_plan *plan)
{
    int64_t waves = plan->slots_per_chunk / (TOPK_SLOTS * plan->threads);
    if (plan->k > TOPK_CANDIDATES_K_MOST || waves < TOPK_SHRINK_EARLY_WAVES) return 0;
    return 4 * plan->k < 256 ? 256 : 4 * plan->k;
}

topk_status topk_plan_make(topk_plan *plan, const topk_problem *p, int64_t teams_per_row, int team_threads,
                           int shrink_at, int sm_count, bool on_host)
{
    if (p->vocab > (int64_t)UINT32_MAX - 1) return TOPK_ERR_BAD_SHAPE;
    *plan = (topk_plan){
        .batch = p->batch,
        .vocab = p->vocab,
        .row_stride = p->row_stride,
        .k = p->k,
        .elem = topk_dtype_size(p->dtype),
        .key_flip = p->key_flip,
        .wide_k = p->k > TOPK_SMEM_K,
    };
    plan->threads = on_host ? (omp_get_num_procs() >= 4 ? 2 : 1) : team_threads > 0 ? team_threads : gpu_team_threads(p->k);
    int64_t wanted;
    if (plan->wide_k)
        wanted = 1;
    else if (teams_per_row > 0)
        wanted = teams_per_row;
    else {
        /* As many items as teams can be resident at once, and no more: a second, partly filled round
         * of items costs a whole round. Resident teams: TOPK_RESIDENT_THREADS / team threads per
         * multiprocessor (the register file's share). On the H200 this rule gives the autotuner's best
         * teams per row on every seeds shape it measured (tuning/offload-NVIDIA-H200.txt). */
        int64_t resident = (int64_t)sm_count * (TOPK_RESIDENT_THREADS / plan->threads);
        wanted = resident / p->batch;
        if (wanted < 1) wanted = 1;
        int64_t most = ceil_div(p->vocab, TOPK_MIN_CHUNK);
        if (wanted > most) wanted = most;
    }
    cut_rows(plan, wanted);
    while (candidate_bytes(plan) > TOPK_LIST_BYTES && plan->chunks > 1) cut_rows(plan, plan->chunks / 2);

    int64_t items = plan->batch * plan->chunks;
    int64_t most_teams = on_host ? omp_get_num_procs() / plan->threads : TOPK_LAUNCH_TEAMS_MOST;
    if (plan->wide_k) {
        /* a slice holds k plus one slot a thread, and the final sort's power of two */
        int64_t one_slot = plan->threads * TOPK_SLOT_MOST;
        plan->wide_cap = pow2_at_least(plan->k);
        if (plan->wide_cap < plan->k + one_slot) plan->wide_cap = plan->k + one_slot;
        int64_t fit = TOPK_WIDE_BYTES / (plan->wide_cap * 8);
        if (!on_host && most_teams > 2 * (int64_t)sm_count) most_teams = 2 * (int64_t)sm_count;
        if (most_teams > fit) most_teams = fit;
    }
    if (most_teams < 1) most_teams = 1;
    if (on_host && most_teams > 8) most_teams = 8;
    plan->teams = items < most_teams ? items : most_teams;
    plan->list_bytes = (size_t)(plan->batch * plan->lists_per_row * plan->k * 8);
    plan->ticket_bytes = (size_t)(plan->batch * plan->tickets_per_row * 4);
    plan->wide_bytes = plan->wide_k ? (size_t)(plan->teams * plan->wide_cap * 8) : 0;
    plan->shrink_at = shrink_at > 0 ? shrink_at : default_shrink_at(plan);
    plan->form = (uint64_t)p->dtype | (uint64_t)(plan->key_flip != 0) << 2 | (uint64_t)plan->wide_k << 3 |
                 (uint64_t)plan->shrink_at << 16;
    return TOPK_OK;
}
