/*
 * The sampling entry points: validation of every argument and of every row's filters, the rows'
 * parameters resolved into one array (sample_row), and dispatch to a backend. As in api.c, a call that
 * returns an error has written nothing. Per-row parameters in device memory (TOPK_DEVICE_POINTERS) are
 * never read here: the kernel resolves and checks them (sample_row_at, sample_row_valid).
 *
 * The reference backend has no sampler of its own: it runs the cpu backend's (sampling is defined by
 * exact integer arithmetic on top of one deterministic exp, so there is nothing a slower path would
 * check better; the tests carry an independent sampler in double instead).
 */
#include <stdlib.h>

#include "sample.h"

topk_sampling topk_sampling_default(void)
{
    return (topk_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f};
}

/* The input's rows and a dense output of batch x out_row elements of out_elem bytes must be addressable
 * with int64 byte offsets, and columns must fit the composites' 32 bits. */
static bool shape_fits(int64_t batch, int64_t vocab, int64_t row_stride, int elem, int64_t out_row, int out_elem)
{
    int64_t last_row, span, out;
    if (vocab > (int64_t)UINT32_MAX) return false;
    if (__builtin_mul_overflow(batch - 1, row_stride, &last_row)) return false;
    if (__builtin_add_overflow(last_row, vocab, &span)) return false;
    if (__builtin_mul_overflow(span, (int64_t)elem, &span)) return false;
    if (__builtin_mul_overflow(batch, out_row, &out)) return false;
    return !__builtin_mul_overflow(out, (int64_t)out_elem, &out);
}

static topk_status check_call(const topk_ctx *ctx, const void *input, topk_dtype dtype, int64_t batch,
                              int64_t vocab, int64_t row_stride, unsigned flags, const void *out,
                              int64_t out_row, int out_elem)
{
    if (!ctx || !input || !out) return TOPK_ERR_NULL_POINTER;
    int elem = topk_dtype_size(dtype);
    if (!elem) return TOPK_ERR_BAD_DTYPE;
    if (batch < 1 || vocab < 1) return TOPK_ERR_BAD_SHAPE;
    if (row_stride < vocab) return TOPK_ERR_BAD_STRIDE;
    if (!shape_fits(batch, vocab, row_stride, elem, out_row, out_elem ? out_elem : elem)) return TOPK_ERR_BAD_SHAPE;
    if (flags & ~TOPK_DEVICE_POINTERS) return TOPK_ERR_BAD_PARAM;
    if ((flags & TOPK_DEVICE_POINTERS) && ctx->backend != TOPK_BACKEND_OFFLOAD) return TOPK_ERR_BAD_MEMORY;
    return TOPK_OK;
}

/* Fills rows[0..batch) with each row's parameters (host arrays over the scalars) and checks them. */
static topk_status resolve_rows(sample_arrays a, sample_row every, int64_t batch, int64_t vocab,
                                bool zero_temperature, sample_row *rows)
{
    for (int64_t r = 0; r < batch; r++) {
        rows[r] = sample_row_at(a, every, r);
        if (!sample_row_valid(rows[r], vocab, zero_temperature)) return TOPK_ERR_BAD_SAMPLING;
    }
    return TOPK_OK;
}

topk_status topk_sample_resolve_rows(const topk_sampling *sp, int64_t batch, int64_t vocab, sample_row *rows)
{
    return resolve_rows((sample_arrays){sp->temperatures, sp->top_ks, sp->top_ps, sp->min_ps},
                        (sample_row){sp->temperature, sp->top_p, sp->min_p, sp->top_k}, batch, vocab, true, rows);
}

static topk_status dispatch(topk_ctx *ctx, topk_sample_problem *p, unsigned flags)
{
    switch (ctx->backend) {
    case TOPK_BACKEND_CPU:
    case TOPK_BACKEND_REFERENCE: return topk_cpu_sample(p, (int)ctx->threads, ctx->chunk, ctx->sample_list);
    case TOPK_BACKEND_OFFLOAD:
        return topk_gpu_sample(ctx->gpu, p, flags & TOPK_DEVICE_POINTERS, (int)ctx->team_threads, ctx->sample_list);
    case TOPK_BACKEND_AUTO: break;
    }
    return TOPK_ERR_BAD_BACKEND;
}

/* Runs a validated call: each row's parameters resolved and checked where the host may read them (per-row
 * arrays in host memory win over the scalars), else the scalars checked that serve rows and the arrays
 * left to the kernel. zero_temperature: whether temperature 0 (greedy) is allowed. */
static topk_status run(topk_ctx *ctx, topk_sample_problem *p, unsigned flags, bool zero_temperature)
{
    sample_arrays a = p->arrays;
    if ((flags & TOPK_DEVICE_POINTERS) && (a.temperatures || a.top_ks || a.top_ps || a.min_ps)) {
        sample_row used = p->every; /* the scalars that some row will use */
        if (a.temperatures) used.temperature = 1.0f;
        if (a.top_ks) used.top_k = 0;
        if (a.top_ps) used.top_p = 1.0f;
        if (a.min_ps) used.min_p = 0.0f;
        if (!sample_row_valid(used, p->vocab, zero_temperature) || p->max_top_k < 0) return TOPK_ERR_BAD_SAMPLING;
        p->rows = NULL;
        return dispatch(ctx, p, flags);
    }
    sample_row *rows = malloc((size_t)p->batch * sizeof(sample_row));
    if (!rows) return TOPK_ERR_OUT_OF_MEMORY;
    topk_status s = resolve_rows(a, p->every, p->batch, p->vocab, zero_temperature, rows);
    if (s != TOPK_OK) {
        free(rows);
        return s;
    }
    p->rows = rows;
    s = dispatch(ctx, p, flags);
    free(rows);
    return s;
}

topk_status topk_sample_logprobs(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                                 int64_t row_stride, const topk_sampling *params, unsigned flags,
                                 int64_t *tokens_out, float *probs_out, const topk_logprobs *logprobs)
{
    topk_status s = check_call(ctx, logits, dtype, batch, vocab, row_stride, flags, tokens_out, 1, 8);
    if (s != TOPK_OK) return s;
    if (!params) return TOPK_ERR_NULL_POINTER;
    sample_logprobs lp = {0};
    if (logprobs) {
        if (logprobs->top_n < 0 || logprobs->top_n > TOPK_TOP_LOGPROBS_MAX) return TOPK_ERR_BAD_SAMPLING;
        lp = (sample_logprobs){logprobs->raw, logprobs->processed, logprobs->top_n, logprobs->top_tokens,
                               logprobs->top_logprobs};
        if (!lp.top_tokens && !lp.top_logprobs) lp.top_n = 0;
        if (!shape_fits(batch, vocab, row_stride, topk_dtype_size(dtype), lp.top_n, 8)) return TOPK_ERR_BAD_SHAPE;
    }
    topk_sample_problem p = {
        .op = SAMPLE_OP_SAMPLE, .input = logits, .dtype = dtype, .batch = batch, .vocab = vocab,
        .row_stride = row_stride,
        .arrays = {params->temperatures, params->top_ks, params->top_ps, params->min_ps},
        .every = {params->temperature, params->top_p, params->min_p, params->top_k},
        .max_top_k = params->max_top_k, .seed = params->seed, .offset = params->offset, .out = tokens_out,
        .probs = probs_out, .seeds = params->seeds, .offsets = params->offsets, .lp = lp};
    return run(ctx, &p, flags, true);
}

topk_status topk_sample(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                        int64_t row_stride, const topk_sampling *params, unsigned flags, int64_t *tokens_out,
                        float *probs_out)
{
    return topk_sample_logprobs(ctx, logits, dtype, batch, vocab, row_stride, params, flags, tokens_out, probs_out,
                                NULL);
}

topk_status topk_softmax(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                         int64_t row_stride, float temperature, const float *temperatures, unsigned flags,
                         float *probs_out)
{
    topk_status s = check_call(ctx, logits, dtype, batch, vocab, row_stride, flags, probs_out, vocab, 4);
    if (s != TOPK_OK) return s;
    topk_sample_problem p = {.op = SAMPLE_OP_SOFTMAX, .input = logits, .dtype = dtype, .batch = batch,
                             .vocab = vocab, .row_stride = row_stride, .arrays = {.temperatures = temperatures},
                             .every = {temperature, 1.0f, 0.0f, 0}, .out = probs_out};
    return run(ctx, &p, flags, false);
}

/* The renormalising helpers and the mask: one filter per row, top_k or top_p. */
static topk_status run_filter(topk_ctx *ctx, sample_op op, const void *input, topk_dtype dtype, int64_t batch,
                              int64_t vocab, int64_t row_stride, int64_t top_k, const int64_t *top_ks,
                              float top_p, const float *top_ps, unsigned flags, void *out)
{
    int out_elem = op == SAMPLE_OP_TOP_K_MASK ? 0 : 4;
    topk_status s = check_call(ctx, input, dtype, batch, vocab, row_stride, flags, out, vocab, out_elem);
    if (s != TOPK_OK) return s;
    topk_sample_problem p = {.op = op, .input = input, .dtype = dtype, .batch = batch, .vocab = vocab,
                             .row_stride = row_stride, .arrays = {.top_ks = top_ks, .top_ps = top_ps},
                             .every = {1.0f, top_p, 0.0f, top_k}, .out = out};
    return run(ctx, &p, flags, true);
}

topk_status topk_top_k_renorm_probs(topk_ctx *ctx, const float *probs, int64_t batch, int64_t vocab,
                                    int64_t row_stride, int64_t top_k, const int64_t *top_ks, unsigned flags,
                                    float *probs_out)
{
    return run_filter(ctx, SAMPLE_OP_TOP_K_RENORM, probs, TOPK_F32, batch, vocab, row_stride, top_k, top_ks, 1.0f,
                      NULL, flags, probs_out);
}

topk_status topk_top_p_renorm_probs(topk_ctx *ctx, const float *probs, int64_t batch, int64_t vocab,
                                    int64_t row_stride, float top_p, const float *top_ps, unsigned flags,
                                    float *probs_out)
{
    return run_filter(ctx, SAMPLE_OP_TOP_P_RENORM, probs, TOPK_F32, batch, vocab, row_stride, 0, NULL, top_p,
                      top_ps, flags, probs_out);
}

topk_status topk_top_k_mask_logits(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch,
                                   int64_t vocab, int64_t row_stride, int64_t top_k, const int64_t *top_ks,
                                   unsigned flags, void *logits_out)
{
    return run_filter(ctx, SAMPLE_OP_TOP_K_MASK, logits, dtype, batch, vocab, row_stride, top_k, top_ks, 1.0f, NULL,
                      flags, logits_out);
}
