/*
 * Bad sharded calls: a mistake on any one rank (or ranks that disagree on the call, or shards that leave a
 * gap or overlap) returns the same status on every rank, writes nothing anywhere, and leaves no rank
 * waiting in a collective (a hang fails the test by ctest's timeout). Only a bad communicator or root
 * returns at once, on every rank that passed it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "shard_kit.h"

enum { BATCH = 2, VOCAB = 100, K = 5, POISON = 0x5A };

/* One call's outputs, poisoned. */
typedef struct outputs {
    float values[BATCH * VOCAB];
    int64_t indices[BATCH * VOCAB];
    float probs[BATCH];
} outputs;

static void poison(outputs *o) { memset(o, POISON, sizeof *o); }

static bool untouched(const outputs *o)
{
    const unsigned char *b = (const unsigned char *)o;
    for (size_t i = 0; i < sizeof *o; i++)
        if (b[i] != POISON) return false;
    return true;
}

static void expect(kit *kt, const char *what, topk_status got, topk_status want, const outputs *o)
{
    kit_check(kt, got == want, what, "returned \"%s\", expected \"%s\"", topk_strerror(got), topk_strerror(want));
    if (want != TOPK_OK) kit_check(kt, untouched(o), what, "an output was written");
}

/* A select with one thing changed on some ranks. */
typedef struct select_call {
    topk_ctx *ctx;
    topk_comm comm;
    topk_shard shard;
    int64_t k;
    unsigned flags;
    int root;
    bool no_values;
} select_call;

static topk_status run_select(select_call c, outputs *o)
{
    poison(o);
    return topk_shard_select(c.ctx, &c.comm, &c.shard, c.k, c.flags, c.root, c.no_values ? NULL : o->values, o->indices);
}

static topk_status run_sample(topk_ctx *ctx, const topk_comm *comm, const topk_shard *shard, const topk_sampling *s,
                              unsigned flags, int64_t *tokens, outputs *o)
{
    poison(o);
    return topk_shard_sample(ctx, comm, shard, s, flags, TOPK_ALL_RANKS, tokens, o->probs);
}

static int failing_allgather(void *handle, const void *send, void *recv, size_t bytes, void *stream)
{
    (void)handle, (void)send, (void)recv, (void)bytes, (void)stream;
    return 1;
}

int main(int argc, char **argv)
{
    kit kt;
    kit_start(&kt, &argc, &argv);
    topk_ctx *ctx = kit_context(TOPK_BACKEND_CPU);
    void *whole = random_matrix(TOPK_F32, BATCH, VOCAB, VOCAB, 7);
    topk_shard shard = take_shard(whole, TOPK_F32, BATCH, VOCAB, LAYOUT_EVEN);
    bool first = kt.rank == 0, last = kt.rank == kt.size - 1, alone = kt.size == 1;
    const select_call good = {ctx, kt.comm, shard, K, 0, TOPK_ALL_RANKS, false};
    outputs o;
    select_call c;

    expect(&kt, "a good call", run_select(good, &o), TOPK_OK, &o);
    c = good, c.k = 0, c.no_values = true;
    expect(&kt, "k = 0 with NULL outputs", run_select(c, &o), TOPK_OK, &o);
    kit_check(&kt, untouched(&o), "k = 0", "an output was written");

    /* the ranks disagree, or the shards do not tile the row */
    c = good, c.k = first ? K : K + 1;
    expect(&kt, "k differs on rank 0", run_select(c, &o), alone ? TOPK_OK : TOPK_ERR_BAD_SHARDS, &o);
    c = good, c.root = first ? TOPK_ALL_RANKS : 0;
    expect(&kt, "root differs on rank 0", run_select(c, &o), alone ? TOPK_OK : TOPK_ERR_BAD_SHARDS, &o);
    c = good, c.flags = first ? TOPK_SMALLEST : 0;
    expect(&kt, "flags differ on rank 0", run_select(c, &o), alone ? TOPK_OK : TOPK_ERR_BAD_SHARDS, &o);
    c = good;
    if (last) c.shard.column_offset++, c.shard.vocab--, c.shard.data = (const float *)shard.data + 1;
    expect(&kt, "a gap before the last shard", run_select(c, &o), TOPK_ERR_BAD_SHARDS, &o);
    c = good;
    if (last && !alone) c.shard.column_offset--, c.shard.vocab++;
    expect(&kt, "the last shard overlaps the one before", run_select(c, &o), alone ? TOPK_OK : TOPK_ERR_BAD_SHARDS, &o);
    c = good;
    if (last) c.shard.global_vocab++;
    expect(&kt, "the last rank's global vocab differs", run_select(c, &o), TOPK_ERR_BAD_SHARDS, &o);

    /* one rank's own mistake reaches every rank */
    c = good;
    if (last) c.shard.row_stride = c.shard.vocab - 1;
    expect(&kt, "a stride below the shard's vocab on the last rank", run_select(c, &o), TOPK_ERR_BAD_STRIDE, &o);
    c = good, c.k = VOCAB + 1;
    expect(&kt, "k above the global vocab", run_select(c, &o), TOPK_ERR_BAD_K, &o);
    c = good, c.shard.global_vocab = (int64_t)UINT32_MAX + 1;
    expect(&kt, "a global vocab of 2^32", run_select(c, &o), TOPK_ERR_BAD_SHAPE, &o);
    c = good;
    if (last) c.shard.column_offset = VOCAB;
    expect(&kt, "a shard past the global vocab on the last rank", run_select(c, &o), TOPK_ERR_BAD_SHAPE, &o);
    c = good;
    if (first) c.shard.dtype = (topk_dtype)7;
    expect(&kt, "an unknown dtype on rank 0", run_select(c, &o), TOPK_ERR_BAD_DTYPE, &o);
    c = good;
    if (last) c.ctx = NULL;
    expect(&kt, "no context on the last rank", run_select(c, &o), TOPK_ERR_NULL_POINTER, &o);
    c = good, c.no_values = last;
    expect(&kt, "no values output on the last rank", run_select(c, &o), TOPK_ERR_NULL_POINTER, &o);
    c = good, c.root = 0, c.no_values = !first;
    expect(&kt, "no outputs where nothing is received", run_select(c, &o), TOPK_OK, &o);
    c = good;
    if (first) c.shard.data = NULL;
    expect(&kt, "no data on rank 0", run_select(c, &o), TOPK_ERR_NULL_POINTER, &o);
    c = good, c.flags = 8;
    expect(&kt, "an unknown flag", run_select(c, &o), TOPK_ERR_BAD_PARAM, &o);
    c = good, c.flags = TOPK_DEVICE_POINTERS;
    expect(&kt, "device pointers", run_select(c, &o), TOPK_ERR_UNSUPPORTED, &o);

    /* the communicator itself: every rank that passes a bad one returns at once */
    c = good, c.root = kt.size;
    expect(&kt, "a root past the last rank", run_select(c, &o), TOPK_ERR_BAD_PARAM, &o);
    c = good, c.comm.allreduce_u64 = NULL;
    expect(&kt, "a comm without allreduce", run_select(c, &o), TOPK_ERR_NULL_POINTER, &o);
    c = good, c.comm.device_buffers = 1;
    expect(&kt, "a comm of device buffers", run_select(c, &o), TOPK_ERR_UNSUPPORTED, &o);
    c = good, c.comm.allgather = failing_allgather;
    expect(&kt, "a failing allgather", run_select(c, &o), TOPK_ERR_COMM, &o);
    poison(&o);
    expect(&kt, "no comm", topk_shard_select(ctx, NULL, &shard, K, 0, TOPK_ALL_RANKS, o.values, o.indices),
           TOPK_ERR_NULL_POINTER, &o);

    /* sampling */
    int64_t tokens[BATCH];
    int64_t *tokens_out = tokens;
    topk_sampling s = topk_sampling_default(), t;
    s.top_p = 0.9f;
    expect(&kt, "a good sample", run_sample(ctx, &kt.comm, &shard, &s, 0, tokens_out, &o), TOPK_OK, &o);
    t = s, t.seed = first ? 1 : 2;
    expect(&kt, "the seed differs on rank 0", run_sample(ctx, &kt.comm, &shard, &t, 0, tokens_out, &o),
           alone ? TOPK_OK : TOPK_ERR_BAD_SHARDS, &o);
    int64_t top_ks[BATCH] = {3, first ? 4 : 5};
    t = s, t.top_ks = top_ks;
    expect(&kt, "a per-row top_k differs on rank 0", run_sample(ctx, &kt.comm, &shard, &t, 0, tokens_out, &o),
           alone ? TOPK_OK : TOPK_ERR_BAD_SHARDS, &o);
    t = s, t.top_p = last ? 0.0f : 0.9f;
    expect(&kt, "top_p 0 on the last rank", run_sample(ctx, &kt.comm, &shard, &t, 0, tokens_out, &o),
           TOPK_ERR_BAD_SAMPLING, &o);
    t = s, t.top_k = VOCAB + 1;
    expect(&kt, "top_k above the global vocab", run_sample(ctx, &kt.comm, &shard, &t, 0, tokens_out, &o),
           TOPK_ERR_BAD_SAMPLING, &o);
    expect(&kt, "no params", run_sample(ctx, &kt.comm, &shard, last ? NULL : &s, 0, tokens_out, &o),
           TOPK_ERR_NULL_POINTER, &o);
    expect(&kt, "no tokens output on rank 0", run_sample(ctx, &kt.comm, &shard, &s, 0, first ? NULL : tokens_out, &o),
           TOPK_ERR_NULL_POINTER, &o);
    expect(&kt, "the smallest flag", run_sample(ctx, &kt.comm, &shard, &s, TOPK_SMALLEST, tokens_out, &o),
           TOPK_ERR_BAD_PARAM, &o);
    expect(&kt, "device pointers", run_sample(ctx, &kt.comm, &shard, &s, TOPK_DEVICE_POINTERS, tokens_out, &o),
           TOPK_ERR_UNSUPPORTED, &o);

    /* rank 0 selects while the others sample: the same header size, so the agreement sees it */
    if (!alone) {
        topk_status got = first ? run_select(good, &o) : run_sample(ctx, &kt.comm, &shard, &s, 0, tokens_out, &o);
        expect(&kt, "rank 0 selects, the others sample", got, TOPK_ERR_BAD_SHARDS, &o);
    }

    free((void *)shard.data);
    free(whole);
    topk_ctx_free(ctx);
    return kit_finish(&kt, "test_shard_errors");
}
