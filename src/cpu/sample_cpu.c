/*
 * The cpu backend of sampling and its helpers.
 *
 * Rows with a small top_k (and greedy rows, top_k = 1 in effect) take the library's own selection
 * first: topk_cpu_select filters the row with SIMD compares against a running threshold and returns the
 * row's best top_k sorted, so the sampler only ever looks at those (sample_from_list). The library's
 * order ranks NaN above +inf while sampling ranks NaN as -inf, so a row whose selection starts with a
 * NaN is done the whole-row way instead. Rows with top-p or min-p and no top_k select a nucleus list of
 * their best (TOPK_PARAM_SAMPLE_LIST, 1024 by default) the same way and draw from it when their kept set
 * lies inside it (sample_team_nucleus: the same draw, after one pass for the row's mass when top-p is on).
 * Every other row (no filter, a large top_k, a nucleus that overflows its list, and the helpers) runs
 * the team operations of sample_team.h with a team of one thread per row, rows spread over OpenMP
 * threads, with the row's float weights cached so the exponentials are computed once.
 *
 * Both ways compute the same function of the row (sample_math.h defines it), which the offload backend
 * computes too: the tests compare them bit for bit.
 */
#include <omp.h>
#include <stdlib.h>

#include "sample.h"
#include "sample_team.h"

/* Above this top_k a row is sampled the whole-row way (the selection's buffers grow with k). */
enum { CPU_LIST_MOST = 4096 };

/* The length of the row's top-k list (top_k, or 1 for a greedy row), else of its nucleus list (`nucleus`:
 * 0 for none), or 0 for the whole-row way. */
static int64_t list_length(const sample_row *rp, int64_t vocab, int64_t nucleus)
{
    int64_t n = sample_list_length(*rp, vocab, CPU_LIST_MOST);
    return n ? n : sample_nucleus_length(*rp, vocab, nucleus);
}

/* The top `k` of every row that has a list (k = the longest list), best first, by topk_cpu_select:
 * in one call for the whole batch when every row has one, else one call per such row. */
static topk_status select_lists(const topk_sample_problem *p, int64_t k, int64_t nucleus, int threads,
                                int64_t chunk, char *values, int64_t *indices)
{
    int elem = topk_dtype_size(p->dtype);
    bool every_row = true;
    for (int64_t r = 0; r < p->batch; r++) every_row = every_row && list_length(&p->rows[r], p->vocab, nucleus) > 0;
    topk_problem sel = {.input = p->input, .dtype = p->dtype, .batch = p->batch, .vocab = p->vocab,
                        .row_stride = p->row_stride, .k = k, .values = values, .indices = indices};
    if (every_row) return topk_cpu_select(&sel, threads, chunk);
    sel.batch = 1;
    for (int64_t r = 0; r < p->batch; r++) {
        if (!list_length(&p->rows[r], p->vocab, nucleus)) continue;
        sel.input = sample_input_row(p, r);
        sel.values = values + r * k * elem;
        sel.indices = indices + r * k;
        topk_status s = topk_cpu_select(&sel, threads, chunk);
        if (s != TOPK_OK) return s;
    }
    return TOPK_OK;
}

/* Turns a selected list into sampling composites; false if it starts with a NaN, which the library's
 * order ranks first and sampling ranks as -inf. */
static bool list_composites(const topk_sample_problem *p, const char *values, const int64_t *indices, int64_t n,
                            uint64_t *list)
{
    if (sample_bits_are_nan(p->dtype, sample_bits_at(values, p->dtype, 0))) return false;
    for (int64_t j = 0; j < n; j++)
        list[j] = topk_composite(sample_key(p->dtype, sample_bits_at(values, p->dtype, j)), indices[j]);
    return true;
}

/* One row of a helper (softmax, renorm, mask), with a one-thread team. */
static void run_helper_row(const topk_sample_problem *p, int64_t r, sample_mem *mem)
{
    sample_team t = {mem, 0, 1};
    const sample_row *rp = &p->rows[r];
    sample_view v = {.row = sample_input_row(p, r), .dtype = p->dtype, .vocab = p->vocab};
    switch (p->op) {
    case SAMPLE_OP_SAMPLE: break; /* sample_row_of */
    case SAMPLE_OP_SOFTMAX: sample_team_softmax_row(t, v, rp->temperature, (float *)p->out + r * p->vocab); break;
    case SAMPLE_OP_TOP_K_RENORM: sample_team_renorm_row(t, v, rp->top_k, 1.0f, (float *)p->out + r * p->vocab); break;
    case SAMPLE_OP_TOP_P_RENORM: sample_team_renorm_row(t, v, 0, rp->top_p, (float *)p->out + r * p->vocab); break;
    case SAMPLE_OP_TOP_K_MASK:
        sample_team_mask_row(t, v, rp->top_k, (char *)p->out + r * p->vocab * topk_dtype_size(p->dtype));
        break;
    }
}

/* Samples row r: from its top-k list (selected[0..longest) values and indices) when it has one that does
 * not start with a NaN, or from its nucleus list when that holds the row's kept set, else the whole row with
 * a one-thread team; then its logprobs. list: 2 * longest entries of scratch. */
static void sample_row_of(const topk_sample_problem *p, int64_t r, const char *values, const int64_t *indices,
                          int64_t nucleus, uint64_t *list, sample_mem *mem, float *cache)
{
    sample_team t = {mem, 0, 1};
    sample_row rp = p->rows[r];
    sample_view v = {.row = sample_input_row(p, r), .dtype = p->dtype, .vocab = p->vocab};
    uint64_t random = sample_row_random(p->seed, p->offset, p->seeds, p->offsets, r);
    int64_t n = sample_list_length(rp, p->vocab, CPU_LIST_MOST);
    int64_t tried = n ? 0 : sample_nucleus_length(rp, p->vocab, nucleus);
    if (tried < 2 && tried != p->vocab) tried = 0; /* a nucleus list of one entry cannot tell anything */
    int64_t top = sample_top_count(p), built = n ? n : tried, listed = built > top ? built : top;
    sample_pick pick = {0, 1.0f};
    bool list_ok = built && list_composites(p, values, indices, listed, list), drawn = false;
    if (n && list_ok) {
        pick = sample_from_list(values, p->dtype, p->vocab, list, n, list + listed, rp, random);
        drawn = true;
    } else if (tried && list_ok) {
        drawn = sample_team_nucleus(t, v, list, list + listed, tried, rp, random, &pick);
    }
    if (!drawn) pick = sample_team_draw_row(t, v, rp, random, cache);
    if (!list_ok) listed = 0; /* a nucleus list that did not hold the kept set still holds the row's best */
    ((int64_t *)p->out)[r] = pick.token;
    if (p->probs) p->probs[r] = pick.prob;
    if (sample_logprobs_wanted(p->lp)) sample_team_logprobs(t, v, rp, list, listed, pick, p->lp, r);
}

topk_status topk_cpu_sample(const topk_sample_problem *p, int threads, int64_t chunk, int64_t sample_list)
{
    int64_t nucleus = sample_nucleus_of(sample_list, SAMPLE_NUCLEUS_CPU);
    int64_t longest = sample_longest_list(p, CPU_LIST_MOST, nucleus);
    int elem = topk_dtype_size(p->dtype);
    char *values = NULL;
    int64_t *indices = NULL;
    if (longest) {
        values = malloc((size_t)(p->batch * longest * elem));
        indices = malloc((size_t)(p->batch * longest) * sizeof(int64_t));
        topk_status s = values && indices ? select_lists(p, longest, nucleus, threads, chunk, values, indices)
                                          : TOPK_ERR_OUT_OF_MEMORY;
        if (s != TOPK_OK) {
            free(values);
            free(indices);
            return s;
        }
    }
    /* Each thread's team memory, weight cache and list buffers, allocated before any row runs. */
    int team_count = threads > 0 ? threads : omp_get_max_threads();
    if (team_count > p->batch) team_count = (int)p->batch;
    int64_t cache_len = p->op == SAMPLE_OP_SAMPLE ? p->vocab : 0, list_len = 2 * longest;
    sample_mem *mems = malloc((size_t)team_count * sizeof *mems);
    float *caches = malloc((size_t)(team_count * cache_len + 1) * sizeof(float));
    uint64_t *lists = malloc((size_t)(team_count * list_len + 1) * sizeof(uint64_t));
    if (!mems || !caches || !lists) {
        free(mems);
        free(caches);
        free(lists);
        free(values);
        free(indices);
        return TOPK_ERR_OUT_OF_MEMORY;
    }
#pragma omp parallel for num_threads(team_count) schedule(dynamic, 1)
    for (int64_t r = 0; r < p->batch; r++) {
        int me = omp_get_thread_num();
        if (p->op == SAMPLE_OP_SAMPLE) /* no lists at all (longest 0): values and indices are NULL */
            sample_row_of(p, r, values ? values + r * longest * elem : NULL, indices ? indices + r * longest : NULL,
                          nucleus, lists + me * list_len, &mems[me], caches + me * cache_len);
        else
            run_helper_row(p, r, &mems[me]);
    }
    free(mems);
    free(caches);
    free(lists);
    free(values);
    free(indices);
    return TOPK_OK;
}
