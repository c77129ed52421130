/*
 * The old sample_logits call in C: temperature, top-k, top-p and min-p in one call, with a fixed seed
 * (the same tokens on every backend and every run), the chosen tokens' probabilities, and a per-row
 * temperature for the last row (greedy).
 *
 *     example_sample_logits
 */
#include <stdio.h>
#include <topk.h>

int main(void)
{
    float logits[3][8] = {
        {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f, -5.0f, 0.5f},
        {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f},
        {4.0f, 1.0f, 4.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    };
    float temperatures[3] = {0.7f, 0.7f, 0.0f};
    int64_t tokens[3];
    float probs[3];
    topk_sampling s = topk_sampling_default();
    s.temperatures = temperatures; /* per row; row 2 is greedy */
    s.top_k = 5;
    s.top_p = 0.9f;
    s.min_p = 0.05f;
    s.seed = 1234;
    topk_ctx *ctx;
    topk_status st = topk_ctx_create(&ctx, TOPK_BACKEND_AUTO);
    if (st == TOPK_OK) st = topk_sample(ctx, logits, TOPK_F32, 3, 8, 8, &s, 0, tokens, probs);
    if (st != TOPK_OK) {
        fprintf(stderr, "topk: %s\n", topk_strerror(st));
        return 1;
    }
    for (int r = 0; r < 3; r++) printf("row %d: token %lld, p = %.6f\n", r, (long long)tokens[r], probs[r]);
    topk_ctx_free(ctx);
    return 0;
}
