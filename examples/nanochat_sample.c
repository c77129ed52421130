/*
 * nanochat's sample_next_token in C: top-k 50, divide by the temperature, softmax, multinomial, for a
 * batch of rows, over a few decode steps. libtopk does the whole of it in one call per step; the
 * offset advances by one per step, so every step draws fresh numbers and a rerun draws the same ones.
 *
 *     example_nanochat_sample [batch] [vocab]
 */
#include <stdio.h>
#include <stdlib.h>
#include <topk.h>

/* nanochat: temperature 0 is argmax; top_k <= 0 is off and is capped at the vocabulary. */
static topk_status sample_next_token(topk_ctx *ctx, const float *logits, int64_t batch, int64_t vocab,
                                     float temperature, int64_t top_k, uint64_t seed, uint64_t step, int64_t *tokens)
{
    topk_sampling s = topk_sampling_default();
    s.temperature = temperature;
    s.top_k = top_k <= 0 ? 0 : top_k < vocab ? top_k : vocab;
    s.seed = seed;
    s.offset = step;
    return topk_sample(ctx, logits, TOPK_F32, batch, vocab, vocab, &s, 0, tokens, NULL);
}

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoll(argv[1]) : 4, vocab = argc > 2 ? atoll(argv[2]) : 65536;
    float *logits = malloc((size_t)(batch * vocab) * sizeof(float));
    int64_t *tokens = malloc((size_t)batch * sizeof(int64_t));
    topk_ctx *ctx;
    topk_status s = logits && tokens ? topk_ctx_create(&ctx, TOPK_BACKEND_AUTO) : TOPK_ERR_OUT_OF_MEMORY;
    if (s != TOPK_OK) {
        fprintf(stderr, "topk: %s\n", topk_strerror(s));
        return 1;
    }
    unsigned x = 12345;
    for (int step = 0; step < 3 && s == TOPK_OK; step++) {
        for (int64_t i = 0; i < batch * vocab; i++) { /* stand-in logits: a few large, most small */
            x = x * 1664525u + 1013904223u;
            logits[i] = (float)(x >> 8) / 16777216.0f * 8.0f - 4.0f;
        }
        s = sample_next_token(ctx, logits, batch, vocab, 1.0f, 50, 42, (uint64_t)step, tokens);
        printf("step %d (%s):", step, topk_backend_name(topk_ctx_backend(ctx)));
        for (int64_t r = 0; r < batch && s == TOPK_OK; r++) printf(" %lld", (long long)tokens[r]);
        printf("\n");
    }
    if (s != TOPK_OK) fprintf(stderr, "topk: %s\n", topk_strerror(s));
    topk_ctx_free(ctx);
    free(logits);
    free(tokens);
    return s != TOPK_OK;
}
