/*
 * The sampling entry points: validation of every argument and of every row's filters, the rows'
 * parameters resolved into one array (sample_row), and dispatch to a backend. As in api.c, a call that
 * returns an error has written nothing.
 *
 * The reference backend has no sampler of its own: it runs the cpu backend's (sampling is defined by
 * exact integer arithmetic on top of one deterministic exp, so there is nothing a slower path would
 * check better; the tests carry an independent sampler in double instead).
 */
#include <math.h>
#include <stdlib.h>

#include "sample.h"

topk_sampling topk_sampling_default(void)
{
    return (topk_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f};
}

static bool temperature_ok(float t, bool zero_allowed)
{
    return isfinite(t) && (zero_allowed ? t >= 0.0f : t > 0.0f);
}

static bool top_k_ok(int64_t k, int64_t vocab) { return k >= 0 && k <= vocab; }
static bool top_p_ok(float p) { return p > 0.0f && p <= 1.0f; }
static bool min_p_ok(float p) { return p >= 0.0f && p <= 1.0f; }

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

topk_status topk_sample_resolve_rows(const topk_sampling *sp, int64_t batch, int64_t vocab, sample_row *rows)
{
    for (int64_t r = 0; r < batch; r++) {
        sample_row *row = &rows[r];
        row->temperature = sp->temperatures ? sp->temperatures[r] : sp->temperature;
        row->top_k = sp->top_ks ? sp->top_ks[r] : sp->top_k;
        row->top_p = sp->top_ps ? sp->top_ps[r] : sp->top_p;
        row->min_p = sp->min_ps ? sp->min_ps[r] : sp->min_p;
        if (!temperature_ok(row->temperature, true) || !top_k_ok(row->top_k, vocab) || !top_p_ok(row->top_p) ||
            !min_p_ok(row->min_p))
            return TOPK_ERR_BAD_SAMPLING;
    }
    return TOPK_OK;
}

static topk_status dispatch(topk_ctx *ctx, topk_sample_problem *p, unsigned flags)
{
    switch (ctx->backend) {
    case TOPK_BACKEND_CPU:
    case TOPK_BACKEND_REFERENCE: return topk_cpu_sample(p, (int)ctx->threads, ctx->chunk);
    case TOPK_BACKEND_OFFLOAD: return topk_gpu_sample(ctx->gpu, p, flags & TOPK_DEVICE_POINTERS, (int)ctx->team_threads);
    case TOPK_BACKEND_AUTO: break;
    }
    return TOPK_ERR_BAD_BACKEND;
}

/* Runs a validated call with its resolved rows, which it frees. */
static topk_status run(topk_ctx *ctx, topk_sample_problem *p, unsigned flags, sample_row *rows)
{
    p->rows = rows;
    topk_status s = dispatch(ctx, p, flags);
    free(rows);
    return s;
}

static sample_row *new_rows(int64_t batch) { return malloc((size_t)batch * sizeof(sample_row)); }

topk_status topk_sample(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                        int64_t row_stride, const topk_sampling *params, unsigned flags, int64_t *tokens_out,
                        float *probs_out)
{
    topk_status s = check_call(ctx, logits, dtype, batch, vocab, row_stride, flags, tokens_out, 1, 8);
    if (s != TOPK_OK) return s;
    if (!params) return TOPK_ERR_NULL_POINTER;
    sample_row *rows = new_rows(batch);
    if (!rows) return TOPK_ERR_OUT_OF_MEMORY;
    if ((s = topk_sample_resolve_rows(params, batch, vocab, rows)) != TOPK_OK) {
        free(rows);
        return s;
    }
    topk_sample_problem p = {SAMPLE_OP_SAMPLE, logits, dtype, batch, vocab, row_stride, NULL, params->seed,
                             params->offset, tokens_out, probs_out, params->seeds, params->offsets};
    return run(ctx, &p, flags, rows);
}

topk_status topk_softmax(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                         int64_t row_stride, float temperature, const float *temperatures, unsigned flags,
                         float *probs_out)
{
    topk_status s = check_call(ctx, logits, dtype, batch, vocab, row_stride, flags, probs_out, vocab, 4);
    if (s != TOPK_OK) return s;
    sample_row *rows = new_rows(batch);
    if (!rows) return TOPK_ERR_OUT_OF_MEMORY;
    for (int64_t r = 0; r < batch; r++) {
        rows[r] = (sample_row){.temperature = temperatures ? temperatures[r] : temperature, .top_p = 1.0f};
        if (!temperature_ok(rows[r].temperature, false)) {
            free(rows);
            return TOPK_ERR_BAD_SAMPLING;
        }
    }
    topk_sample_problem p = {SAMPLE_OP_SOFTMAX, logits, dtype, batch, vocab, row_stride, NULL, 0, 0, probs_out, NULL,
                             NULL, NULL};
    return run(ctx, &p, flags, rows);
}

/* The renormalising helpers and the mask: one filter per row, top_k or top_p. */
static topk_status run_filter(topk_ctx *ctx, sample_op op, const void *input, topk_dtype dtype, int64_t batch,
                              int64_t vocab, int64_t row_stride, int64_t top_k, const int64_t *top_ks,
                              float top_p, const float *top_ps, unsigned flags, void *out)
{
    int out_elem = op == SAMPLE_OP_TOP_K_MASK ? 0 : 4;
    topk_status s = check_call(ctx, input, dtype, batch, vocab, row_stride, flags, out, vocab, out_elem);
    if (s != TOPK_OK) return s;
    sample_row *rows = new_rows(batch);
    if (!rows) return TOPK_ERR_OUT_OF_MEMORY;
    for (int64_t r = 0; r < batch; r++) {
        rows[r] = (sample_row){.temperature = 1.0f,
                               .top_k = top_ks ? top_ks[r] : top_k,
                               .top_p = top_ps ? top_ps[r] : top_p};
        if (!top_k_ok(rows[r].top_k, vocab) || !top_p_ok(rows[r].top_p)) {
            free(rows);
            return TOPK_ERR_BAD_SAMPLING;
        }
    }
    topk_sample_problem p = {op, input, dtype, batch, vocab, row_stride, NULL, 0, 0, out, NULL, NULL, NULL};
    return run(ctx, &p, flags, rows);
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
