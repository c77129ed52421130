/*
 * topk_gpu_sample: the sampler and its helpers as ONE target region per call (teams + parallel, an SPMD
 * kernel like the selection's), a team per row at a time, the team's sample_mem in GPU shared memory.
 *
 * A sampling row with top_k <= SAMPLE_LIST (or greedy) finds its top_k floor by a radix search by count
 * over the row (team_search), gathers the top_k into team memory, sorts them best first (team_sort)
 * and lets one thread run sample_from_list on them: the same code the cpu backend runs on its
 * topk_cpu_select output. Every other row, and every helper, runs the whole-row team operations of
 * src/sample_team.h, shared with the cpu backend. With device pointers the region reads and writes
 * the caller's memory; with host pointers the same region maps them. The rows' parameters are always
 * mapped in (they are a host array). Under TOPK_OFFLOAD_HOST=1 the region runs on host teams.
 */
#include "gpu.h"
#include "sample.h"
#include "sample_team.h"
/* team.h is the selection kernels' (team_sort is used here); its device fence is not. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#include "team.h"
#pragma clang diagnostic pop

#if defined(__NVPTX__)
#define IN_TEAM_MEMORY _Pragma("omp allocate(shared) allocator(omp_pteam_mem_alloc)")
#else
#define IN_TEAM_MEMORY
#endif

#pragma omp declare target

/* Gathers the row's members {composite >= floor} (exactly n of them) into m->list, sorted best first. */
TOPK_INLINE void gather_sorted(sample_team t, team *sorter, sample_view v, uint64_t floor, int64_t n)
{
    if (t.tid == 0) t.m->fill = 0;
    sample_barrier(t);
    for (int64_t i = t.tid; i < v.vocab; i += t.nt) {
        uint64_t c = view_composite(v, i);
        if (c < floor) continue;
        uint32_t at;
#pragma omp atomic capture
        at = t.m->fill++;
        t.m->list[at] = c;
    }
    sample_barrier(t);
    team_sort(sorter, t.m->list, (uint32_t)n);
}

TOPK_INLINE void sample_one_row(sample_team t, team *sorter, sample_view v, sample_row rp, uint64_t random,
                                int64_t *token, float *prob)
{
    v.kind = SAMPLE_LOGITS;
    sample_pick pick;
    int64_t n = rp.temperature == 0.0f || rp.top_k == 1 ? 1 : rp.top_k < v.vocab ? rp.top_k : 0;
    if (n == 1) {
        pick = (sample_pick){sample_column(team_best(t, v)), 1.0f};
    } else if (n > 1 && n <= SAMPLE_LIST) {
        gather_sorted(t, sorter, v, team_search(t, v, false, (uint64_t)n), n);
        if (t.tid == 0) {
            pick = sample_from_list(v.row, v.dtype, v.vocab, t.m->list, n, t.m->w, rp, random);
            t.m->word[0] = (uint64_t)pick.token;
            t.m->word[1] = (uint64_t)sample_f32_bits(pick.prob);
        }
        sample_barrier(t);
        pick = (sample_pick){(int64_t)t.m->word[0], sample_bits_to_f32((uint32_t)t.m->word[1])};
        sample_barrier(t);
    } else {
        pick = team_sample_row(t, v, rp, random, 0);
    }
    if (t.tid == 0) {
        *token = pick.token;
        if (prob) *prob = pick.prob;
    }
}

/* What every thread of every team runs. */
TOPK_INLINE void sample_run_team(sample_mem *m, int op, const char *input, int dtype, int64_t batch,
                                 int64_t vocab, int64_t row_stride, const sample_row *rows, uint64_t seed,
                                 uint64_t offset, char *out, float *probs)
{
    sample_team t = {m, omp_get_thread_num(), omp_get_num_threads()};
    team sorter = {.tid = t.tid, .nt = t.nt};
    int elem = dtype == TOPK_F32 ? 4 : 2;
    for (int64_t r = omp_get_team_num(); r < batch; r += omp_get_num_teams()) {
        sample_view v = {.row = input + r * row_stride * elem, .dtype = dtype, .vocab = vocab};
        sample_row rp = rows[r];
        float *dense = (float *)out + r * vocab;
        if (op == SAMPLE_OP_SAMPLE)
            sample_one_row(t, &sorter, v, rp, sample_philox(seed, offset, (uint64_t)r), (int64_t *)out + r,
                           probs ? probs + r : 0);
        else if (op == SAMPLE_OP_SOFTMAX)
            team_softmax_row(t, v, rp.temperature, dense);
        else if (op == SAMPLE_OP_TOP_K_RENORM)
            team_renorm_row(t, v, rp.top_k, 1.0f, dense);
        else if (op == SAMPLE_OP_TOP_P_RENORM)
            team_renorm_row(t, v, 0, rp.top_p, dense);
        else
            team_mask_row(t, v, rp.top_k, out + r * vocab * elem);
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

topk_status topk_gpu_sample(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers)
{
    int op = (int)p->op, dtype = (int)p->dtype, device = gpu->device;
    bool on_device = !gpu->on_host;
    int64_t batch = p->batch, vocab = p->vocab, row_stride = p->row_stride;
    int elem = topk_dtype_size(p->dtype);
    int teams = (int)(batch < 65536 ? batch : 65536), threads = SAMPLE_TEAM_MAX;
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
