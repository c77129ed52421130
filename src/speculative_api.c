/*
 * topk_chain_speculative_sample's entry point: validation (a call that returns an error has written
 * nothing) and dispatch. The reference backend runs the cpu backend's code, as for sampling (sample_api.c).
 */
#include "speculative.h"

/* n elements of `bytes` each (n = a * b * c) fit in int64 byte offsets. */
static bool fits(int64_t a, int64_t b, int64_t c, int64_t bytes)
{
    int64_t n;
    return !__builtin_mul_overflow(a, b, &n) && !__builtin_mul_overflow(n, c, &n) &&
           !__builtin_mul_overflow(n, bytes, &n);
}

topk_status topk_chain_speculative_sample(topk_ctx *ctx, const float *draft_probs, const int64_t *draft_token_ids,
                                          const float *target_probs, int64_t batch, int64_t num_speculative,
                                          int64_t vocab, const topk_speculative *params, unsigned flags,
                                          int64_t *output_token_ids, int64_t *accepted_num, int64_t *emitted_num)
{
    if (!ctx || !draft_probs || !draft_token_ids || !target_probs || !params || !output_token_ids)
        return TOPK_ERR_NULL_POINTER;
    int64_t S = num_speculative;
    if (batch < 1 || S < 1 || vocab < 1 || batch > (int64_t)UINT32_MAX || vocab > (int64_t)UINT32_MAX ||
        S >= (int64_t)1 << 31 || !fits(batch, S + 1, vocab, 4) || !fits(batch, S + 1, 1, 8))
        return TOPK_ERR_BAD_SHAPE;
    if (flags & ~TOPK_DEVICE_POINTERS) return TOPK_ERR_BAD_PARAM;
    bool device_pointers = flags & TOPK_DEVICE_POINTERS;
    if (device_pointers && ctx->backend != TOPK_BACKEND_OFFLOAD) return TOPK_ERR_BAD_MEMORY;
    if (!device_pointers)
        for (int64_t i = 0; i < batch * S; i++)
            if (draft_token_ids[i] < 0 || draft_token_ids[i] >= vocab) return TOPK_ERR_BAD_SAMPLING;
    topk_spec_problem p = {.draft = draft_probs, .target = target_probs, .ids = draft_token_ids, .batch = batch,
                           .S = S, .vocab = vocab, .seed = params->seed, .offset = params->offset,
                           .seeds = params->seeds, .offsets = params->offsets, .out = output_token_ids,
                           .accepted = accepted_num, .emitted = emitted_num};
    switch (ctx->backend) {
    case TOPK_BACKEND_CPU:
    case TOPK_BACKEND_REFERENCE: return topk_cpu_speculative(&p, (int)ctx->threads);
    case TOPK_BACKEND_OFFLOAD: return topk_gpu_speculative(ctx->gpu, &p, device_pointers);
    case TOPK_BACKEND_AUTO: break;
    }
    return TOPK_ERR_BAD_BACKEND;
}
