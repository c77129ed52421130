/*
 * topk_gpu_sample: the sampler and its helpers as ONE target region per call (teams + parallel, an SPMD
 * kernel like the selection's), a team per row at a time, the team's sample_mem in GPU shared memory.
 *
 * A topk_sample call where some row has a top-k list (sample_list_length) or may be served by a nucleus
 * list (sample_nucleus_length: top-p or min-p without top-k, unless TOPK_PARAM_SAMPLE_LIST is 1) goes to
 * sample_fused.c, which runs the selection kernel with a sampling root. Every other call runs here: the whole-row team
 * operations of src/common/sample_team.h, shared with the cpu backend. With device pointers the region reads
 * and writes the caller's memory; with host pointers the same region maps them. The rows' parameters
 * come as scalars when every row has the same, else as arrays in device memory: the caller's
 * (TOPK_DEVICE_POINTERS, checked here: sample_row_valid) or a copy of the host's. With a stream
 * (topk_ctx_set_stream) and device pointers, sample_rows_on_device's kernel is enqueued on it by the
 * stream launcher (launcher.h). Under TOPK_OFFLOAD_HOST=1 the region runs on host teams.
 */
#include <omp.h>

#include "gpu.h"
#include "launcher.h"
#include "sample.h"
#include "sample_params.h"
#include "sample_team.h"
#include "sizes.h"

#pragma omp declare target

/* A row whose parameters (read from device memory) are out of range: token -1 with probability NaN, or
 * a row of NaN (topk.h). */
SAMPLE_INLINE void sample_invalid_row(sample_team t, int op, int dtype, int64_t vocab, int64_t r, char *out, float *probs,
                                      sample_logprobs lp)
{
    if (op == SAMPLE_OP_SAMPLE) {
        if (t.tid == 0) {
            ((int64_t *)out)[r] = -1;
            if (probs) probs[r] = __builtin_nanf("");
            sample_logprobs_invalid(lp, r);
        }
    } else if (op == SAMPLE_OP_TOP_K_MASK && dtype != TOPK_F32) {
        uint16_t nan = dtype == TOPK_F16 ? 0x7E00u : 0x7FC0u;
        for (int64_t c = t.tid; c < vocab; c += t.nt) ((uint16_t *)out)[r * vocab + c] = nan;
    } else {
        for (int64_t c = t.tid; c < vocab; c += t.nt) ((float *)out)[r * vocab + c] = __builtin_nanf("");
    }
}

/* What every thread of every team runs. */
SAMPLE_INLINE void sample_run_team(sample_mem *m, int op, const char *input, int dtype, int64_t batch,
                                 int64_t vocab, int64_t row_stride, sample_arrays arrays, sample_row every,
                                 uint64_t seed, uint64_t offset, const uint64_t *seeds, const uint64_t *offsets,
                                 char *out, float *probs, sample_logprobs lp)
{
    sample_team t = {m, omp_get_thread_num(), omp_get_num_threads()};
    int elem = dtype == TOPK_F32 ? 4 : 2;
    for (int64_t r = omp_get_team_num(); r < batch; r += omp_get_num_teams()) {
        sample_view v = {.row = input + r * row_stride * elem, .dtype = dtype, .vocab = vocab};
        sample_row rp = sample_row_at(arrays, every, r);
        float *dense = (float *)out + r * vocab;
        if (!sample_row_valid(rp, vocab, op != SAMPLE_OP_SOFTMAX))
            sample_invalid_row(t, op, dtype, vocab, r, out, probs, lp);
        else if (op == SAMPLE_OP_SAMPLE) {
            sample_pick pick = sample_team_draw_row(t, v, rp, sample_row_random(seed, offset, seeds, offsets, r), 0);
            if (t.tid == 0) {
                ((int64_t *)out)[r] = pick.token;
                if (probs) probs[r] = pick.prob;
            }
            if (sample_logprobs_wanted(lp)) sample_team_logprobs(t, v, rp, 0, 0, pick, lp, r);
        } else if (op == SAMPLE_OP_SOFTMAX)
            sample_team_softmax_row(t, v, rp.temperature, dense);
        else if (op == SAMPLE_OP_TOP_K_RENORM)
            sample_team_renorm_row(t, v, rp.top_k, 1.0f, dense);
        else if (op == SAMPLE_OP_TOP_P_RENORM)
            sample_team_renorm_row(t, v, 0, rp.top_p, dense);
        else
            sample_team_mask_row(t, v, rp.top_k, out + r * vocab * elem);
        sample_barrier(t); /* team memory is reused by the next row */
    }
}

#pragma omp end declare target

#define SAMPLE_BODY                                                                                      \
    {                                                                                                    \
        sample_mem shared;                                                                               \
        IN_TEAM_MEMORY                                                                                   \
        _Pragma("omp parallel num_threads(threads)")                                                     \
        sample_run_team(&shared, op, input, dtype, batch, vocab, row_stride,                             \
                        (sample_arrays){temperatures, top_ks, top_ps, min_ps},                           \
                        (sample_row){temperature, top_p, min_p, top_k}, seed, offset, seeds, offsets,    \
                        out, probs, SAMPLE_LOGPROBS_VALUE);                                              \
    }

/* The launch's scalars, by the names the regions capture: the per-row arrays in device memory or NULL
 * (the scalar then serves every row), seeds and offsets likewise. */
#define SAMPLE_ROWS_LOCALS                                                                               \
    int op = (int)p->op, dtype = (int)p->dtype, device = gpu->device;                                    \
    bool on_device = !gpu->on_host;                                                                      \
    int64_t batch = p->batch, vocab = p->vocab, row_stride = p->row_stride;                              \
    const char *input = p->input;                                                                        \
    uint64_t seed = p->seed, offset = p->offset;                                                         \
    char *out = p->out;                                                                                  \
    float *probs = p->probs;                                                                             \
    SAMPLE_PARAM_LOCALS(d)                                                                               \
    SAMPLE_LOGPROBS_LOCALS(p)                                                                            \
    (void)device, (void)on_device;

/* The region on the caller's device memory: the stream launcher finds its kernel by this function's name. */
static void sample_rows_on_device(const topk_gpu *gpu, const topk_sample_problem *p, int teams, int threads,
                                  sample_device_params d)
{
    SAMPLE_ROWS_LOCALS
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    is_device_ptr(input, out, probs, temperatures, top_ks, top_ps, min_ps, seeds, offsets, SAMPLE_LOGPROBS_POINTERS)
    SAMPLE_BODY
}

/* The same kernel on gpu->stream, through the stream launcher. */
static topk_status sample_rows_on_stream(topk_gpu *gpu, const topk_sample_problem *p, int teams, int threads,
                                         sample_device_params d)
{
    SAMPLE_ROWS_LOCALS
    topk_kernel_arg args[] = {TOPK_KERNEL_ARG(threads), TOPK_KERNEL_ARG(op), TOPK_KERNEL_ARG(input),
                              TOPK_KERNEL_ARG(dtype), TOPK_KERNEL_ARG(batch), TOPK_KERNEL_ARG(vocab),
                              TOPK_KERNEL_ARG(row_stride), TOPK_KERNEL_ARG(temperatures), TOPK_KERNEL_ARG(top_ks),
                              TOPK_KERNEL_ARG(top_ps), TOPK_KERNEL_ARG(min_ps), TOPK_KERNEL_ARG_F32(temperature),
                              TOPK_KERNEL_ARG_F32(top_p), TOPK_KERNEL_ARG_F32(min_p), TOPK_KERNEL_ARG(top_k),
                              TOPK_KERNEL_ARG(seed), TOPK_KERNEL_ARG(offset), TOPK_KERNEL_ARG(seeds),
                              TOPK_KERNEL_ARG(offsets), TOPK_KERNEL_ARG(out), TOPK_KERNEL_ARG(probs),
                              TOPK_KERNEL_ARG(lp_raw), TOPK_KERNEL_ARG(lp_processed), TOPK_KERNEL_ARG(top_n),
                              TOPK_KERNEL_ARG(top_tokens), TOPK_KERNEL_ARG(top_logprobs)};
    return topk_launch(gpu, "sample_rows_on_device", 0, teams, threads, args, (int)(sizeof args / sizeof args[0]));
}

static void sample_rows_mapped(const topk_gpu *gpu, const topk_sample_problem *p, int teams, int threads,
                               sample_device_params d)
{
    SAMPLE_ROWS_LOCALS
    int elem = topk_dtype_size(p->dtype);
    int64_t in_bytes = ((batch - 1) * row_stride + vocab) * elem;
    int64_t out_bytes = op == SAMPLE_OP_SAMPLE ? batch * 8 : batch * vocab * (op == SAMPLE_OP_TOP_K_MASK ? elem : 4);
    int64_t prob_count = probs ? batch : 0;
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    is_device_ptr(temperatures, top_ks, top_ps, min_ps, seeds, offsets) map(to : input[0 : in_bytes]) map(from : out[0 : out_bytes], probs[0 : prob_count]) \
    SAMPLE_LOGPROBS_MAP
    SAMPLE_BODY
}

/* Whether some row of a call may take a nucleus list with top-p, whose root then makes one pass over the
 * row for its mass: the planner's teams are then made as large as the sampler allows (a guess, not yet
 * measured on a GPU: the pass is one team's, and a 64-thread team has 2 warps for 128K elements). */
static bool nucleus_top_p(const topk_sample_problem *p, int64_t nucleus)
{
    if (!nucleus || p->op != SAMPLE_OP_SAMPLE) return false;
    if (!p->rows) return p->arrays.top_ps || p->every.top_p < 1.0f;
    for (int64_t r = 0; r < p->batch; r++)
        if (p->rows[r].top_p < 1.0f && sample_nucleus_length(p->rows[r], p->vocab, nucleus)) return true;
    return false;
}

topk_status topk_gpu_sample(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers, int team_threads,
                            int64_t sample_list)
{
    int64_t nucleus = sample_nucleus_of(sample_list, SAMPLE_NUCLEUS_GPU);
    int64_t longest = sample_longest_list(p, SAMPLE_LIST, nucleus);
    if (longest && !team_threads && nucleus_top_p(p, nucleus)) team_threads = SAMPLE_TEAM_MAX;
    if (longest) return topk_gpu_sample_top(gpu, p, device_pointers, longest, team_threads, nucleus > 0);
    int64_t batch = p->batch;
    int teams, threads;
    topk_gpu_row_teams(gpu, batch, SAMPLE_TEAM_MAX, &teams, &threads);
    sample_uploads up = sample_uploads_of(p, device_pointers);
    pthread_mutex_lock(&gpu->lock);
    void *stream = device_pointers ? gpu->stream : NULL;
    topk_workspace *w = NULL;
    topk_status s = TOPK_OK;
    if (up.bytes) s = topk_gpu_workspace(gpu, stream, up.bytes, 0, &w);
    sample_device_params d;
    if (s == TOPK_OK) s = sample_upload(gpu, p, &up, w ? w->scratch : NULL, &d);
    if (s != TOPK_OK)
        ;
    else if (stream)
        s = sample_rows_on_stream(gpu, p, teams, threads, d);
    else if (device_pointers)
        sample_rows_on_device(gpu, p, teams, threads, d);
    else
        sample_rows_mapped(gpu, p, teams, threads, d);
    pthread_mutex_unlock(&gpu->lock);
    return s;
}
