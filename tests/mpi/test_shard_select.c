/*
 * topk_shard_select against one process: over every way of cutting the rows (shard_kit.h's layouts:
 * even, a one-column shard, an empty shard, uneven shards in reverse rank order), rows with ties across
 * every boundary and rows of NaN and infinities, fp32/fp16/bf16, largest and smallest, k from 1 to 2048
 * and k = V, the cpu and reference backends on the shards, and the result received by every rank, by
 * one root through MPI_Gather, or by one root through a binding without gather. On each receiving rank
 * the result must equal the tests' oracle (tests/oracle.h) on the whole rows, values' bits and global
 * indices; the reference backend's topk_select on the whole rows is checked against the same oracle, so
 * the sharded call equals it too. Ranks that do not receive must leave their outputs alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "oracle.h"
#include "shard_kit.h"

enum { BATCH = 5, POISON = 0xA5 };

typedef struct vocab_case {
    int64_t vocab;
    int64_t ks[6];
} vocab_case;

static const vocab_case vocab_cases[] = {
    {37, {1, 2, 9, 36, 37, 0}},
    {2503, {1, 3, 64, 777, 2048, 2503}},
};

/* The whole rows' answer for every k at once: the oracle's full ranking, and the reference backend's
 * topk_select, which must agree with it. */
typedef struct whole_answer {
    char *values;
    int64_t *indices;
} whole_answer;

static whole_answer whole_rows(kit *kt, topk_ctx *reference, const void *whole, topk_dtype dtype, int64_t vocab,
                               bool smallest, const char *what)
{
    int elem = dtype_bytes(dtype);
    whole_answer a = {malloc((size_t)(BATCH * vocab * elem)), malloc((size_t)(BATCH * vocab) * sizeof(int64_t))};
    oracle_select(whole, dtype, BATCH, vocab, vocab, vocab, smallest, a.values, a.indices);
    char *values = malloc((size_t)(BATCH * vocab * elem));
    int64_t *indices = malloc((size_t)(BATCH * vocab) * sizeof(int64_t));
    topk_status s = topk_select(reference, whole, dtype, BATCH, vocab, vocab, vocab, smallest ? TOPK_SMALLEST : 0, values,
                                indices);
    kit_check(kt, s == TOPK_OK && !memcmp(values, a.values, (size_t)(BATCH * vocab * elem)) &&
                      !memcmp(indices, a.indices, (size_t)(BATCH * vocab) * sizeof(int64_t)),
              what, "topk_select (reference backend) on the whole rows differs from the oracle");
    free(values);
    free(indices);
    return a;
}

typedef struct receiver {
    const char *name;
    int root;       /* TOPK_ALL_RANKS, or a rank */
    bool no_gather; /* the binding has no gather: allgather serves the root */
} receiver;

/* One sharded call compared with the whole rows' answer. */
static void check_call(kit *kt, topk_ctx *ctx, const topk_shard *shard, int64_t k, bool smallest, receiver rc,
                       const whole_answer *want, const char *what)
{
    int elem = dtype_bytes(shard->dtype);
    size_t values_bytes = (size_t)(BATCH * k * elem), indices_bytes = (size_t)(BATCH * k) * sizeof(int64_t);
    char *values = malloc(values_bytes + 1);
    int64_t *indices = malloc(indices_bytes + 1);
    memset(values, POISON, values_bytes);
    memset(indices, POISON, indices_bytes);
    topk_comm comm = kt->comm;
    if (rc.no_gather) comm.gather = NULL;
    int root = rc.root;
    topk_status s = topk_shard_select(ctx, &comm, shard, k, smallest ? TOPK_SMALLEST : 0, root, values, indices);
    if (kit_check(kt, s == TOPK_OK, what, "k=%lld: returned \"%s\"", (long long)k, topk_strerror(s))) {
        bool receives = root == TOPK_ALL_RANKS || root == kt->rank;
        for (int64_t r = 0; r < BATCH; r++) {
            bool same_values = receives ? !memcmp(values + r * k * elem, want->values + r * shard->global_vocab * elem,
                                                  (size_t)(k * elem))
                                        : values[r * k * elem] == (char)POISON;
            bool same_indices = receives ? !memcmp(indices + r * k, want->indices + r * shard->global_vocab,
                                                   (size_t)k * sizeof(int64_t))
                                         : ((unsigned char *)indices)[r * k * 8] == POISON;
            kit_check(kt, same_values && same_indices, what, "k=%lld row %lld: %s", (long long)k, (long long)r,
                      receives ? "differs from the whole rows' answer" : "a rank that does not receive wrote");
        }
    }
    free(values);
    free(indices);
}

static const receiver receivers[] = {
    {"every rank", TOPK_ALL_RANKS, false},
    {"gathered at the last rank", -2, false}, /* -2: the last rank, whatever the size */
    {"gathered at rank 0 by allgather", 0, true},
};

int main(int argc, char **argv)
{
    kit kt;
    kit_start(&kt, &argc, &argv);
    topk_ctx *reference = kit_context(TOPK_BACKEND_REFERENCE), *cpu = kit_context(TOPK_BACKEND_CPU);
    topk_ctx *backends[2] = {cpu, reference};
    uint64_t seed = 1;
    for (int d = 0; d < 3; d++)
        for (size_t v = 0; v < sizeof vocab_cases / sizeof vocab_cases[0]; v++)
            for (int p = 0; p < PATTERN_COUNT; p++, seed++) {
                topk_dtype dtype = all_dtypes[d];
                int64_t vocab = vocab_cases[v].vocab;
                void *whole = pattern_matrix((pattern)p, dtype, BATCH, vocab, seed);
                for (int smallest = 0; smallest < 2; smallest++) {
                    char what[160];
                    snprintf(what, sizeof what, "%s V=%lld %s %s", dtype_name(dtype), (long long)vocab,
                             pattern_name((pattern)p), smallest ? "smallest" : "largest");
                    whole_answer want = whole_rows(&kt, reference, whole, dtype, vocab, smallest, what);
                    for (int l = 0; l < LAYOUT_COUNT; l++) {
                        topk_shard shard = take_shard(whole, dtype, BATCH, vocab, (layout)l);
                        for (int b = 0; b < 2; b++)
                            for (size_t rc = 0; rc < sizeof receivers / sizeof receivers[0]; rc++) {
                                receiver to = receivers[rc];
                                if (to.root == -2) to.root = kt.size - 1;
                                char full[320];
                                snprintf(full, sizeof full, "%s, %s, %s backend, %s", what, layout_name((layout)l),
                                         b ? "reference" : "cpu", to.name);
                                for (int i = 0; i < 6 && vocab_cases[v].ks[i]; i++)
                                    check_call(&kt, backends[b], &shard, vocab_cases[v].ks[i], smallest, to, &want, full);
                            }
                        free((void *)shard.data);
                    }
                    free(want.values);
                    free(want.indices);
                }
                free(whole);
            }
    topk_ctx_free(cpu);
    topk_ctx_free(reference);
    return kit_finish(&kt, "test_shard_select");
}
