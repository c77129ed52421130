/*
 * Candidate lists of a sharded call (shard_lists.h): filled by the rank's own topk_select, exchanged in
 * one collective, merged by walking the ranks' sorted lists.
 */
#include <stdlib.h>
#include <string.h>

#include "shard_lists.h"

/* A rank's block, rounded up to 8 bytes so that every rank's composites are aligned where they arrive. */
static size_t block_bytes(const shard_lists *l)
{
    return ((size_t)(l->batch * l->slots) * (size_t)(8 + l->elem) + 7) & ~(size_t)7;
}

topk_status shard_lists_alloc(shard_lists *l, const topk_comm *comm, int root, int64_t batch, int64_t slots, int elem)
{
    *l = (shard_lists){.batch = batch, .slots = slots, .elem = elem, .ranks = comm->size};
    if (slots == 0) return TOPK_OK;
    /* Gathered at a root through allgather when the binding has no gather: every rank then receives. */
    bool receives = shard_receives(comm, root) || !comm->gather;
    l->send = malloc(block_bytes(l));
    l->recv = receives ? malloc(block_bytes(l) * (size_t)comm->size) : NULL;
    l->heads = malloc((size_t)comm->size * sizeof *l->heads);
    l->merged = malloc((size_t)slots * sizeof *l->merged);
    return l->send && (l->recv || !receives) && l->heads && l->merged ? TOPK_OK : TOPK_ERR_OUT_OF_MEMORY;
}

void shard_lists_free(shard_lists *l)
{
    free(l->send);
    free(l->recv);
    free(l->heads);
    free(l->merged);
    *l = (shard_lists){0};
}

topk_status shard_lists_select(shard_lists *l, topk_ctx *ctx, const topk_shard *shard, int64_t kept, unsigned flags)
{
    char *values = shard_lists_values(l, 0);
    int64_t *indices = (int64_t *)shard_lists_words(l, 0);
    topk_status s = TOPK_OK;
    if (kept > 0)
        s = topk_select(ctx, shard->data, shard->dtype, shard->batch, shard->vocab, shard->row_stride, kept, flags,
                        values, indices);
    if (s != TOPK_OK) return s;
    /* topk_select wrote dense rows of `kept`; spread them to `slots`, last row first (a row only moves up) */
    for (int64_t r = l->batch - 1; r >= 0; r--) {
        memmove(values + r * l->slots * l->elem, values + r * kept * l->elem, (size_t)(kept * l->elem));
        memmove(indices + r * l->slots, indices + r * kept, (size_t)kept * sizeof *indices);
        memset(values + (r * l->slots + kept) * l->elem, 0, (size_t)((l->slots - kept) * l->elem));
        memset(indices + r * l->slots + kept, 0, (size_t)(l->slots - kept) * sizeof *indices);
    }
    return TOPK_OK;
}

void shard_lists_contract_composites(shard_lists *l, int64_t r, int64_t kept, int64_t column_offset, int dtype,
                                     uint32_t key_flip)
{
    uint64_t *words = shard_lists_words(l, r);
    const char *values = shard_lists_values(l, r);
    topk_problem bits = {.dtype = (topk_dtype)dtype, .key_flip = key_flip};
    for (int64_t j = 0; j < kept; j++)
        words[j] = topk_composite(topk_key_at(&bits, values, j), column_offset + (int64_t)words[j]);
}

topk_status shard_lists_exchange(shard_lists *l, const topk_comm *comm, int root)
{
    if (root < 0 || !comm->gather) return shard_comm_status(comm->allgather(comm->handle, l->send, l->recv, block_bytes(l), NULL));
    return shard_comm_status(comm->gather(comm->handle, l->send, l->recv, block_bytes(l), root, NULL));
}

void shard_lists_merge(shard_lists *l, int64_t r, int64_t n, char *values)
{
    size_t block = block_bytes(l), words_bytes = (size_t)(l->batch * l->slots) * 8;
    for (int q = 0; q < l->ranks; q++) l->heads[q] = 0;
    for (int64_t j = 0; j < n; j++) {
        int from = 0;
        uint64_t best = 0;
        for (int q = 0; q < l->ranks; q++) {
            const uint64_t *words = (const uint64_t *)(l->recv + q * block) + r * l->slots;
            uint64_t head = l->heads[q] < l->slots ? words[l->heads[q]] : 0;
            if (head > best) {
                best = head;
                from = q;
            }
        }
        const char *from_values = l->recv + from * block + words_bytes + (size_t)(r * l->slots * l->elem);
        memcpy(values + j * l->elem, from_values + l->heads[from] * l->elem, (size_t)l->elem);
        l->merged[j] = best;
        l->heads[from]++;
    }
}
