/*
 * topk_gpu_sample: the sampler and its helpers as ONE target region per call (teams + parallel, an SPMD
 * kernel like the selection's), a team per row at a time, the team's sample_mem in GPU shared memory.
 *
 * A topk_sample call where some row has a top-k list (sample_list_length) goes to sample_fused.c,
 * which runs the selection kernel with a sampling root. Every other call runs here: the whole-row team
 * operations of src/common/sample_team.h, shared with the cpu backend. With device pointers the region reads
 * and writes the caller's memory; with host pointers the same region maps them. The rows' parameters
 * are always mapped in (they are a host array). Under TOPK_OFFLOAD_HOST=1 the region runs on host teams.
 */
#include <omp.h>

#include "gpu.h"
#include "sample.h"
#include "sample_team.h"
#include "sizes.h"

#pragma omp declare target

/* What every thread of every team runs. */
SAMPLE_INLINE void sample_run_team(sample_mem *m, int op, const char *input, int dtype, int64_t batch,
                                 int64_t vocab, int64_t row_stride, const sample_row *rows, uint64_t seed,
                                 uint64_t offset, char *out, float *probs)
{
    sample_team t = {m, omp_get_thread_num(), omp_get_num_threads()};
    int elem = dtype == TOPK_F32 ? 4 : 2;
    for (int64_t r = omp_get_team_num(); r < batch; r += omp_get_num_teams()) {
        sample_view v = {.row = input + r * row_stride * elem, .dtype = dtype, .vocab = vocab};
        sample_row rp = rows[r];
        float *dense = (float *)out + r * vocab;
        if (op == SAMPLE_OP_SAMPLE) {
            sample_pick pick = sample_team_draw_row(t, v, rp, sample_philox(seed, offset, (uint64_t)r), 0);
            if (t.tid == 0) {
                ((int64_t *)out)[r] = pick.token;
                if (probs) probs[r] = pick.prob;
            }
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
        sample_run_team(&shared, op, input, dtype, batch, vocab, row_stride, rows, seed, offset, out,   \
                        probs);                                                                          \
    }

topk_status topk_gpu_sample(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers, int team_threads)
{
    int64_t longest = sample_longest_list(p, SAMPLE_LIST);
    if (longest) return topk_gpu_sample_top(gpu, p, device_pointers, longest, team_threads);
    int op = (int)p->op, dtype = (int)p->dtype, device = gpu->device;
    bool on_device = !gpu->on_host;
    int64_t batch = p->batch, vocab = p->vocab, row_stride = p->row_stride;
    int elem = topk_dtype_size(p->dtype);
    int teams = (int)(batch < TOPK_LAUNCH_TEAMS_MOST ? batch : TOPK_LAUNCH_TEAMS_MOST), threads = SAMPLE_TEAM_MAX;
    if (!on_device) {
        /* Host teams: two threads each for small batches, so the barriers and atomics are exercised
         * (CI tests through this fallback); one for large batches, where host barriers cost more than
         * the rows. */
        int cores = omp_get_num_procs();
        threads = cores >= 2 && batch <= 64 ? 2 : 1;
        teams = cores / threads < batch ? cores / threads : (int)batch;
    }
    const char *input = p->input;
    const sample_row *rows = p->rows;
    uint64_t seed = p->seed, offset = p->offset;
    char *out = p->out;
    float *probs = p->probs;
    int64_t in_bytes = ((batch - 1) * row_stride + vocab) * elem;
    int64_t out_bytes = op == SAMPLE_OP_SAMPLE ? batch * 8 : batch * vocab * (op == SAMPLE_OP_TOP_K_MASK ? elem : 4);
    int64_t prob_count = probs ? batch : 0;
    if (device_pointers) {
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    is_device_ptr(input, out, probs) map(to : rows[0 : batch])
        SAMPLE_BODY
    } else {
#pragma omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
    map(to : input[0 : in_bytes], rows[0 : batch]) map(from : out[0 : out_bytes], probs[0 : prob_count])
        SAMPLE_BODY
    }
    return TOPK_OK;
}
