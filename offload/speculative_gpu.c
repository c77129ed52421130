/*
 * topk_gpu_speculative: chain speculative sampling as ONE target region per call, a team per row.
 *
 * The big idea: a row's verification is sequential only in its S acceptance tests, which are S reads and
 * S Philox words, so thread 0 of the row's team runs them (every position is tested, for the independent
 * count) and finds the stop position a. What costs is the one draw after it, over the vocabulary: the
 * correction token from max(0, p_a - q_a) or the bonus token from p_S. The team shares that out over
 * contiguous chunks of the row: a max pass (for the weights' power-of-two scale), a pass of integer
 * weight sums (exact in any order), then the one thread whose chunk holds the drawn integer finds the
 * token. Nothing depends on the team's size or the threads' timing, so the cpu backend (one-thread teams
 * of the same function, src/common/speculative_math.h) gives the same bits.
 *
 * With device pointers the region reads and writes the caller's memory (is_device_ptr); with host
 * pointers the same region maps them. With a stream (topk_ctx_set_stream) and device pointers,
 * spec_rows_on_device's kernel is enqueued on it by the stream launcher (launcher.h), its captured
 * variables named at the launch site. Under TOPK_OFFLOAD_HOST=1 the region runs on host teams.
 */
#include <omp.h>

#include "gpu.h"
#include "launcher.h"
#include "sizes.h"
#include "speculative.h"

#pragma omp declare target

/* What every thread of every team runs. */
SAMPLE_INLINE void spec_run_team(sample_mem *m, const float *draft, const int64_t *ids, const float *target,
                                 int64_t batch, int64_t S, int64_t vocab, uint64_t seed, uint64_t offset,
                                 const uint64_t *seeds, const uint64_t *offsets, int64_t *out, int64_t *accepted,
                                 int64_t *emitted)
{
    sample_team t = {m, omp_get_thread_num(), omp_get_num_threads()};
    for (int64_t b = omp_get_team_num(); b < batch; b += omp_get_num_teams()) {
        spec_team_row(t, draft + b * S * vocab, ids + b * S, target + b * (S + 1) * vocab, S, vocab, seed, offset,
                      seeds, offsets, b, out + b * (S + 1), accepted ? accepted + b : 0, emitted ? emitted + b : 0);
        sample_barrier(t); /* team memory is reused by the next row */
    }
}

#pragma omp end declare target

#define SPEC_BODY                                                                                        \
    {                                                                                                    \
        sample_mem shared;                                                                               \
        IN_TEAM_MEMORY                                                                                   \
        _Pragma("omp parallel num_threads(threads)")                                                     \
        spec_run_team(&shared, draft, ids, target, batch, S, vocab, seed, offset, seeds, offsets, out,   \
                      accepted, emitted);                                                                \
    }

/* The launch's scalars, by the names the regions capture. */
#define SPEC_LOCALS                                                                                      \
    int device = gpu->device;                                                                            \
    bool on_device = !gpu->on_host;                                                                      \
    const float *draft = p->draft, *target = p->target;                                                  \
    const int64_t *ids = p->ids;                                                                         \
    int64_t batch = p->batch, S = p->S, vocab = p->vocab;                                                \
    uint64_t seed = p->seed, offset = p->offset;                                                         \
    const uint64_t *seeds = p->seeds, *offsets = p->offsets;                                             \
    int64_t *out = p->out, *accepted = p->accepted, *emitted = p->emitted;                               \
    (void)device, (void)on_device;

/* The region on the caller's device memory: the stream launcher finds its kernel by this function's name. */
static void spec_rows_on_device(const topk_gpu *gpu, const topk_spec_problem *p, int teams, int threads)
{
    SPEC_LOCALS
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    is_device_ptr(draft, ids, target, seeds, offsets, out, accepted, emitted)
    SPEC_BODY
}

/* The same kernel on gpu->stream, through the stream launcher. */
static topk_status spec_rows_on_stream(topk_gpu *gpu, const topk_spec_problem *p, int teams, int threads)
{
    SPEC_LOCALS
    topk_kernel_arg args[] = {TOPK_KERNEL_ARG(threads), TOPK_KERNEL_ARG(draft), TOPK_KERNEL_ARG(ids),
                              TOPK_KERNEL_ARG(target), TOPK_KERNEL_ARG(batch), TOPK_KERNEL_ARG(S),
                              TOPK_KERNEL_ARG(vocab), TOPK_KERNEL_ARG(seed), TOPK_KERNEL_ARG(offset),
                              TOPK_KERNEL_ARG(seeds), TOPK_KERNEL_ARG(offsets), TOPK_KERNEL_ARG(out),
                              TOPK_KERNEL_ARG(accepted), TOPK_KERNEL_ARG(emitted)};
    return topk_launch(gpu, "spec_rows_on_device", 0, teams, threads, args, (int)(sizeof args / sizeof args[0]));
}

static void spec_rows_mapped(const topk_gpu *gpu, const topk_spec_problem *p, int teams, int threads)
{
    SPEC_LOCALS
    int64_t q_count = batch * S * vocab, p_count = batch * (S + 1) * vocab, id_count = batch * S;
    int64_t out_count = batch * (S + 1), seed_count = seeds ? batch : 0, offset_count = offsets ? batch : 0;
    int64_t accepted_count = accepted ? batch : 0, emitted_count = emitted ? batch : 0;
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    map(to : draft[0 : q_count], target[0 : p_count], ids[0 : id_count], seeds[0 : seed_count], \
        offsets[0 : offset_count]) \
    map(from : out[0 : out_count], accepted[0 : accepted_count], emitted[0 : emitted_count])
    SPEC_BODY
}

topk_status topk_gpu_speculative(topk_gpu *gpu, const topk_spec_problem *p, bool device_pointers)
{
    int teams, threads;
    topk_gpu_row_teams(gpu, p->batch, SAMPLE_TEAM_MAX, &teams, &threads);
    pthread_mutex_lock(&gpu->lock);
    topk_status s = TOPK_OK;
    if (device_pointers && gpu->stream)
        s = spec_rows_on_stream(gpu, p, teams, threads);
    else if (device_pointers)
        spec_rows_on_device(gpu, p, teams, threads);
    else
        spec_rows_mapped(gpu, p, teams, threads);
    pthread_mutex_unlock(&gpu->lock);
    return s;
}
