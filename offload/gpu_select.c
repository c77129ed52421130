/*
 * topk_gpu_select: plans the call (plan.c), makes sure the workspace is there, and runs the selection
 * kernel (rows.h) as ONE target region: with device pointers it reads and writes the caller's memory
 * directly; with host pointers the same region maps the input in and the outputs out.
 *
 * The region is `target teams` + `parallel`, which clang turns into an SPMD kernel (one CUDA block
 * per team, of 64, 128 or 256 threads as plan.c picks for k); the team's shared memory is a local
 * placed in GPU shared memory with the pteam allocator. Under the host fallback (TOPK_OFFLOAD_HOST=1) the
 * same code runs on host teams of one or two threads, with that local on the team's stack.
 *
 * With a stream (topk_ctx_set_stream) and device pointers, the kernels of select_on_device's regions are
 * launched by the stream launcher (launcher.h) instead, on the stream, without waiting.
 */
#include "gpu.h"
#include "launcher.h"
#include "plan.h"
#include "rows.h"

/* The region's body, shared by every launch: the team's shared memory, and its threads, each with the
 * plan rebuilt from the launch's scalars. KIND is a constant, so each region is one dtype's kernel. */
#define SELECT_BODY(KIND)                                                                                \
    {                                                                                                    \
        team_mem shared;                                                                                 \
        IN_TEAM_MEMORY                                                                                   \
        _Pragma("omp parallel num_threads(threads)")                                                     \
        topk_run_team(&shared, KIND, input, values, indices TOPK_PLAN_ARGS, clocks);                     \
    }

/* One region on the caller's device memory ... */
#define ON_DEVICE_POINTERS(KIND)                                                                         \
    _Pragma("omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
             is_device_ptr(input, values, indices, lists, wide, tickets, clocks)")                       \
    SELECT_BODY(KIND)

/* ... or mapping host memory in and out. */
#define ON_HOST_POINTERS(KIND)                                                                           \
    _Pragma("omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
             is_device_ptr(lists, wide, tickets, clocks) map(to : input[0 : in_bytes])                    \
             map(from : values[0 : out_bytes], indices[0 : out])")                                        \
    SELECT_BODY(KIND)

/* The regions on the caller's device memory, one per dtype in topk_dtype's order (BY_WAVE_KIND): the
 * stream launcher finds their kernels by this function's name. */
static void select_on_device(const topk_plan *plan, topk_dtype dtype, const topk_gpu *gpu, const char *input,
                             char *values, int64_t *indices, uint64_t *clocks)
{
    int teams = (int)plan->teams, threads = (int)plan->threads, device = gpu->device;
    bool on_device = !gpu->on_host;
    TOPK_PLAN_LOCALS
    BY_WAVE_KIND(dtype, ON_DEVICE_POINTERS)
}

/* The same kernels, enqueued on gpu->stream by the stream launcher: the arguments by the names the
 * regions above capture. */
static topk_status select_on_stream(const topk_plan *plan, topk_dtype dtype, topk_gpu *gpu, const char *input,
                                    char *values, int64_t *indices)
{
    int64_t threads = plan->threads;
    uint64_t *clocks = NULL;
    TOPK_PLAN_LOCALS
    topk_kernel_arg args[] = {TOPK_KERNEL_ARG(threads), TOPK_KERNEL_ARG(input), TOPK_KERNEL_ARG(values),
                              TOPK_KERNEL_ARG(indices), TOPK_KERNEL_ARG(clocks) TOPK_PLAN_KERNEL_ARGS};
    return topk_launch(gpu, "select_on_device", (int)dtype, plan->teams, plan->threads, args,
                       (int)(sizeof args / sizeof args[0]));
}

static void select_mapped(const topk_plan *plan, topk_dtype dtype, const topk_gpu *gpu, const char *input,
                          char *values, int64_t *indices, uint64_t *clocks)
{
    int teams = (int)plan->teams, threads = (int)plan->threads, device = gpu->device;
    bool on_device = !gpu->on_host;
    TOPK_PLAN_LOCALS
    int64_t in_bytes = ((batch - 1) * row_stride + vocab) * plan->elem;
    int64_t out = batch * k, out_bytes = out * plan->elem;
    BY_WAVE_KIND(dtype, ON_HOST_POINTERS)
}

/* Profiling: sets the device clocks before the launch ... */
static bool clocks_start(const topk_gpu *gpu, uint64_t *clocks)
{
    uint64_t start[3] = {UINT64_MAX, 0, 0};
    return omp_target_memcpy(clocks, start, sizeof start, 0, 0, gpu->device, omp_get_initial_device()) == 0;
}

/* ... and turns them into the profile's kernel stages after it. */
static void clocks_read(const topk_gpu *gpu, uint64_t *clocks, topk_stage_times *profile)
{
    uint64_t at[3];
    if (omp_target_memcpy(at, clocks, sizeof at, 0, 0, omp_get_initial_device(), gpu->device) != 0) return;
    if (at[0] == UINT64_MAX || at[1] < at[0] || at[2] < at[1]) return;
    profile->gpu_kernel_select_us = (double)(at[1] - at[0]) / 1e3;
    profile->gpu_kernel_merge_us = (double)(at[2] - at[1]) / 1e3;
}

topk_status topk_gpu_select(topk_gpu *gpu, const topk_problem *problem, bool device_pointers, int64_t teams_per_row,
                            int team_threads, int shrink_at)
{
    topk_stage_times *profile = problem->profile;
    double started = profile ? topk_now() : 0;
    topk_plan plan;
    topk_status s =
        topk_plan_make(&plan, problem, teams_per_row, team_threads, shrink_at, gpu->sm_count, gpu->on_host);
    if (s != TOPK_OK) return s;
    pthread_mutex_lock(&gpu->lock);
    bool on_stream = device_pointers && gpu->stream;
    size_t clock_bytes = profile && !on_stream ? 3 * sizeof(uint64_t) : 0;
    topk_workspace *w;
    s = topk_gpu_workspace(gpu, on_stream ? gpu->stream : NULL, plan.list_bytes + plan.wide_bytes + clock_bytes,
                           plan.ticket_bytes, &w);
    if (s == TOPK_OK) {
        plan.lists = w->scratch;
        plan.wide = (uint64_t *)((char *)w->scratch + plan.list_bytes);
        plan.tickets = w->tickets;
        uint64_t *clocks = clock_bytes ? (uint64_t *)((char *)w->scratch + plan.list_bytes + plan.wide_bytes) : NULL;
        if (clocks && !clocks_start(gpu, clocks)) clocks = NULL;
        double planned = profile ? topk_now() : 0;
        if (on_stream)
            s = select_on_stream(&plan, problem->dtype, gpu, problem->input, problem->values, problem->indices);
        else if (device_pointers)
            select_on_device(&plan, problem->dtype, gpu, problem->input, problem->values, problem->indices, clocks);
        else
            select_mapped(&plan, problem->dtype, gpu, problem->input, problem->values, problem->indices, clocks);
        if (profile) {
            /* mapped inputs and outputs travel inside the region: their copies are part of launch_wait;
             * on a stream it is the time to enqueue */
            profile->gpu_plan_us = (planned - started) * 1e6;
            profile->gpu_launch_wait_us = (topk_now() - planned) * 1e6;
            if (clocks) clocks_read(gpu, clocks, profile);
        }
    }
    pthread_mutex_unlock(&gpu->lock);
    return s;
}
