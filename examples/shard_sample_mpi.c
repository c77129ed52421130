/*
 * Vocab-parallel top-k and sampling over MPI: each of 2 ranks holds half the columns of every row (as
 * with a tensor-parallel LM head), and gets the same top 3 and the same tokens as one process holding
 * the whole rows, bit for bit. Only candidates travel, never the logits.
 *
 *     mpicc shard_sample_mpi.c -ltopk_mpi -ltopk -o shard_sample_mpi   (or CMake: target topk_mpi)
 *     mpirun -np 2 ./shard_sample_mpi
 */
#include <stdio.h>
#include <string.h>
#include <topk_mpi.h>

enum { BATCH = 2, VOCAB = 10, K = 3 };

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    /* the whole rows, which no rank needs to hold: here every rank has them, to compare */
    const float logits[BATCH][VOCAB] = {
        {0.5f, 2.0f, -1.0f, 3.0f, 2.0f, 0.0f, 3.0f, 1.5f, -2.0f, 2.5f},
        {1.0f, 1.0f, 1.0f, 1.2f, 0.9f, 1.1f, 1.2f, 0.8f, 1.0f, 0.7f},
    };
    topk_comm comm;
    topk_ctx *ctx;
    topk_status s = topk_comm_mpi(MPI_COMM_WORLD, &comm);
    if (s == TOPK_OK) s = topk_ctx_create(&ctx, TOPK_BACKEND_CPU);
    if (s != TOPK_OK) {
        fprintf(stderr, "topk: %s\n", topk_strerror(s));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* This rank's columns: [first, first + mine) of every row, copied as its LM head would produce them. */
    int64_t first = VOCAB * comm.rank / comm.size, mine = VOCAB * (comm.rank + 1) / comm.size - first;
    float shard_logits[BATCH][VOCAB];
    for (int r = 0; r < BATCH; r++) memcpy(shard_logits[r], &logits[r][first], (size_t)mine * sizeof(float));
    topk_shard shard = {.data = shard_logits, .dtype = TOPK_F32, .batch = BATCH, .vocab = mine,
                        .row_stride = VOCAB, .column_offset = first, .global_vocab = VOCAB};

    float values[BATCH][K];
    int64_t indices[BATCH][K], tokens[BATCH], whole_tokens[BATCH];
    float probs[BATCH], whole_probs[BATCH];
    topk_sampling params = topk_sampling_default();
    params.temperature = 0.8f;
    params.top_p = 0.9f; /* no top_k: integer weight sums and histograms are all-reduced, no logits move */
    params.seed = 42;

    /* every rank receives (TOPK_ALL_RANKS); a rank number instead gathers the result there alone */
    s = topk_shard_select(ctx, &comm, &shard, K, 0, TOPK_ALL_RANKS, values, &indices[0][0]);
    if (s == TOPK_OK) s = topk_shard_sample(ctx, &comm, &shard, &params, 0, TOPK_ALL_RANKS, tokens, probs);
    if (s == TOPK_OK) s = topk_sample(ctx, logits, TOPK_F32, BATCH, VOCAB, VOCAB, &params, 0, whole_tokens, whole_probs);
    if (s != TOPK_OK) {
        fprintf(stderr, "rank %d: %s\n", comm.rank, topk_strerror(s));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int same = !memcmp(tokens, whole_tokens, sizeof tokens) && !memcmp(probs, whole_probs, sizeof probs);
    if (comm.rank == 0) {
        for (int r = 0; r < BATCH; r++) {
            printf("row %d: top %d", r, K);
            for (int j = 0; j < K; j++) printf(" [%lld] %g", (long long)indices[r][j], values[r][j]);
            printf("; sampled token %lld (p = %.6f)\n", (long long)tokens[r], probs[r]);
        }
        printf("%d ranks: %s as one process\n", comm.size, same ? "the same tokens and probabilities" : "NOT the same");
    }
    topk_ctx_free(ctx);
    MPI_Finalize();
    return same ? 0 : 1;
}
