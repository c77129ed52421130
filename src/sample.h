/*
 * What the sampling entry points (sample_api.c) hand to a backend. Not installed.
 *
 * Everything is validated first: pointers non-NULL (probs may be NULL), 1 <= batch, 1 <= vocab <= 2^32 - 1,
 * vocab <= row_stride, offsets fit in int64, and every row's parameters in range (sample_row) where the
 * host can read them; parameters in device memory are checked by the kernel (sample_row_valid).
 */
#ifndef TOPK_SAMPLE_H
#define TOPK_SAMPLE_H

#include "internal.h"
#include "sample_math.h"

/* The five operations, which share validation, dispatch and the GPU region. */
typedef enum sample_op {
    SAMPLE_OP_SAMPLE,       /* topk_sample(_logprobs): out is batch int64 tokens, probs NULL or batch floats */
    SAMPLE_OP_SOFTMAX,      /* topk_softmax: out is batch x vocab fp32; rows[r].temperature */
    SAMPLE_OP_TOP_K_RENORM, /* topk_top_k_renorm_probs: fp32 in and out; rows[r].top_k */
    SAMPLE_OP_TOP_P_RENORM, /* topk_top_p_renorm_probs: fp32 in and out; rows[r].top_p */
    SAMPLE_OP_TOP_K_MASK    /* topk_top_k_mask_logits: out is batch x vocab of dtype; rows[r].top_k */
} sample_op;

typedef struct topk_sample_problem {
    sample_op op;
    const void *input;
    topk_dtype dtype;
    int64_t batch, vocab, row_stride;
    /* Each row's parameters, checked: batch entries in host memory; NULL when some per-row array is
     * device memory (TOPK_DEVICE_POINTERS), which only a kernel reads: then `arrays` over `every`. */
    const sample_row *rows;
    sample_arrays arrays; /* the caller's per-row arrays */
    sample_row every;     /* the call's scalars */
    int64_t max_top_k;    /* with top_ks in device memory: the caller's bound on them (0: unknown) */
    uint64_t seed, offset;
    void *out;
    float *probs;
    const uint64_t *seeds, *offsets; /* per row or NULL; device memory when the call has device pointers */
    sample_logprobs lp;              /* topk_sample_logprobs's outputs (all NULL, top_n 0: none) */
} topk_sample_problem;

/* Row r's first input element. */
static inline const char *sample_input_row(const topk_sample_problem *p, int64_t r)
{
    return (const char *)p->input + (size_t)r * (size_t)p->row_stride * (size_t)topk_dtype_size(p->dtype);
}

/* The longest list (sample_list_length, top-k lists up to `most`; sample_nucleus_length, `nucleus` for rows
 * with top-p or min-p and no top-k filter, 0: none) that a topk_sample call's rows sample from; 0 for the
 * helpers and when no row has one. */
static inline int64_t sample_longest_sampled(const topk_sample_problem *p, int64_t most, int64_t nucleus)
{
    int64_t longest = 0;
    if (p->op == SAMPLE_OP_SAMPLE && !p->rows) {
        /* Parameters the host cannot read: the caller's bound on top_ks (or the one top_k), and at
         * least 1 for rows that turn out greedy. A row whose list would be longer is sampled the
         * whole-row way by its root team (sample_fused.c): exact either way, only slower. Without a bound,
         * rows may have no top-k filter and top-p or min-p: they get a nucleus list. */
        int64_t k = p->arrays.top_ks ? (p->max_top_k < most ? p->max_top_k : most) : p->every.top_k;
        k = k > 1 && k < p->vocab && k <= most ? k : 1;
        bool no_top_k = p->arrays.top_ks ? p->max_top_k == 0 : p->every.top_k == 0 || p->every.top_k >= p->vocab;
        bool filtered = p->arrays.top_ps || p->arrays.min_ps || p->every.top_p < 1.0f || p->every.min_p > 0.0f;
        if (nucleus > p->vocab) nucleus = p->vocab;
        return no_top_k && filtered && nucleus > k ? nucleus : k;
    }
    if (p->op == SAMPLE_OP_SAMPLE)
        for (int64_t r = 0; r < p->batch; r++) {
            int64_t n = sample_list_length(p->rows[r], p->vocab, most);
            if (!n) n = sample_nucleus_length(p->rows[r], p->vocab, nucleus);
            longest = n > longest ? n : longest;
        }
    return longest;
}

/* How many of a row's best its top logprobs name (topk_sample_logprobs): top_n, at most vocab. */
static inline int64_t sample_top_count(const topk_sample_problem *p)
{
    return p->lp.top_n < p->vocab ? p->lp.top_n : p->vocab;
}

/* How many of each row's best a topk_sample call selects: the longest list its rows sample from, and, when
 * any row has one, at least the top logprobs' count (rows with lists then take their top tokens from the
 * list, sample_team_logprobs); 0 for the helpers and when no row has a list. */
static inline int64_t sample_longest_list(const topk_sample_problem *p, int64_t most, int64_t nucleus)
{
    int64_t longest = sample_longest_sampled(p, most, nucleus);
    return longest && longest < sample_top_count(p) ? sample_top_count(p) : longest;
}

/* Whether every row of the call has the same parameters (then a GPU call passes them as scalars). */
static inline bool sample_rows_uniform(const topk_sample_problem *p)
{
    const sample_row *rows = p->rows;
    if (!rows) return false;
    for (int64_t r = 1; r < p->batch; r++)
        if (rows[r].temperature != rows[0].temperature || rows[r].top_k != rows[0].top_k ||
            rows[r].top_p != rows[0].top_p || rows[r].min_p != rows[0].min_p)
            return false;
    return true;
}

/* Fills rows[0..batch) with each row's filters from params (per-row arrays win over the scalars) and checks
 * them against vocab: TOPK_ERR_BAD_SAMPLING for a value out of range (sample_api.c). */
topk_status topk_sample_resolve_rows(const topk_sampling *params, int64_t batch, int64_t vocab, sample_row *rows);

/* The length of the nucleus lists (sample_nucleus_length) a call's TOPK_PARAM_SAMPLE_LIST asks for: 0 (none)
 * for 1, the backend's default for 0, else the value. */
static inline int64_t sample_nucleus_of(int64_t knob, int64_t backend_default)
{
    return knob == 1 ? 0 : knob ? knob : backend_default;
}

/* The cpu backend (sample_cpu.c): threads <= 0 means OpenMP's default; chunk goes to topk_cpu_select;
 * sample_list the context's TOPK_PARAM_SAMPLE_LIST. */
topk_status topk_cpu_sample(const topk_sample_problem *p, int threads, int64_t chunk, int64_t sample_list);

/* The offload backend (offload/sample_gpu.c): one target region per call. team_threads: the context's
 * TOPK_PARAM_TEAM_THREADS, 0 for the planner's choice (only the top-k list path plans teams). */
topk_status topk_gpu_sample(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers, int team_threads,
                            int64_t sample_list);

/* Its topk_sample for calls where some row has a top-k or a nucleus list (offload/sample_fused.c): the
 * selection kernel with k = the longest list, and a sampling root; nucleus: whether rows without a top-k
 * filter try their list (sample_team_nucleus) before the whole-row way. */
topk_status topk_gpu_sample_top(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers, int64_t k,
                                int team_threads, bool nucleus);

#endif
