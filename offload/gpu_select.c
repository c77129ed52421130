/*
 * topk_gpu_select: plans the call (plan.c), makes sure the workspace is there, and runs the selection
 * kernel (rows.h) as ONE target region: with device pointers it reads and writes the caller's memory
 * directly; with host pointers the same region maps the input in and the outputs out.
 *
 * The region is `target teams` + `parallel`, which clang turns into an SPMD kernel (one CUDA block
 * per team, 256 threads); the team's shared memory is a local placed in GPU shared memory with the
 * pteam allocator. Under the host fallback (TOPK_OFFLOAD_HOST=1) the same code runs on host teams of
 * one or two threads, with that local on the team's stack.
 */
#include "gpu.h"
#include "plan.h"
#include "rows.h"

/* Places the local `shared` in GPU shared memory; on the host it stays on the team's stack. */
#if defined(__NVPTX__)
#define IN_TEAM_MEMORY _Pragma("omp allocate(shared) allocator(omp_pteam_mem_alloc)")
#else
#define IN_TEAM_MEMORY
#endif

/* The region's body, shared by both launches: the team's shared memory, and its threads, each with
 * the plan rebuilt from the launch's scalars. */
#define SELECT_BODY                                                                                      \
    {                                                                                                    \
        team_mem shared;                                                                                 \
        IN_TEAM_MEMORY                                                                                   \
        _Pragma("omp parallel num_threads(threads)")                                                     \
        topk_run_team(&shared, input, values, indices, batch, vocab, row_stride, k, chunks,             \
                      slots_per_chunk, wide_cap, form, lists, wide, tickets);                            \
    }

static void launch(const topk_plan *plan, uint64_t form, const topk_gpu *gpu, bool device_pointers,
                   const char *input, char *values, int64_t *indices)
{
    int teams = (int)plan->teams, threads = (int)plan->threads, device = gpu->device;
    bool on_device = !gpu->on_host;
    int64_t batch = plan->batch, vocab = plan->vocab, row_stride = plan->row_stride, k = plan->k;
    int64_t chunks = plan->chunks, slots_per_chunk = plan->slots_per_chunk, wide_cap = plan->wide_cap;
    uint64_t *lists = plan->lists, *wide = plan->wide;
    uint32_t *tickets = plan->tickets;
    if (device_pointers) {
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    is_device_ptr(input, values, indices, lists, wide, tickets)
        SELECT_BODY
    } else {
        int64_t in_bytes = ((batch - 1) * row_stride + vocab) * plan->elem;
        int64_t out = batch * k, out_bytes = out * plan->elem;
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    is_device_ptr(lists, wide, tickets) map(to : input[0 : in_bytes]) map(from : values[0 : out_bytes], indices[0 : out])
        SELECT_BODY
    }
}

topk_status topk_gpu_select(topk_gpu *gpu, const topk_problem *problem, bool device_pointers, int64_t teams_per_row)
{
    topk_plan plan;
    topk_status s = topk_plan_make(&plan, problem, teams_per_row, gpu->sm_count, gpu->on_host);
    if (s != TOPK_OK) return s;
    pthread_mutex_lock(&gpu->lock);
    s = topk_gpu_reserve(gpu, plan.list_bytes + plan.wide_bytes, plan.ticket_bytes);
    if (s == TOPK_OK) {
        plan.lists = gpu->scratch;
        plan.wide = (uint64_t *)((char *)gpu->scratch + plan.list_bytes);
        plan.tickets = gpu->tickets;
        launch(&plan, topk_plan_form(&plan, problem->dtype), gpu, device_pointers, problem->input,
               problem->values, problem->indices);
    }
    pthread_mutex_unlock(&gpu->lock);
    return s;
}
