/*
 * Candidate lists of a sharded call: every rank's best `slots` elements of each row, as composites with
 * GLOBAL columns (keys.h: key << 32 | ~column) and their values, exchanged and merged into the row's
 * best n. Not installed.
 *
 * Why the merge is exact: under a total order the best n of a whole row are each among the best n of
 * their own shard (an element beaten by n others of its shard is beaten by n others of the row), and a
 * composite with a global column compares two elements of different shards exactly as one device
 * compares them. So the best n of the union of the ranks' lists is the row's best n, in the row's order.
 */
#ifndef TOPK_SHARD_LISTS_H
#define TOPK_SHARD_LISTS_H

#include "shard.h"

/* Each rank's block: batch x slots composites, then batch x slots values of elem bytes (then up to 7 bytes
 * of padding), row r's list
 * best first at r * slots; unused slots hold composite 0, which no element has (its column would be
 * 2^32 - 1), so it loses every comparison. */
typedef struct shard_lists {
    int64_t batch, slots;
    int elem, ranks;
    char *send;       /* this rank's block */
    char *recv;       /* every rank's block, rank order; NULL on a rank that does not receive */
    int64_t *heads;   /* the merge's position in each rank's list */
    uint64_t *merged; /* one merged row's composites */
} shard_lists;

/* Allocates the lists of a call whose receiving ranks are given by root (shard.h). Nothing to do when
 * slots is 0. */
topk_status shard_lists_alloc(shard_lists *l, const topk_comm *comm, int root, int64_t batch, int64_t slots, int elem);
void shard_lists_free(shard_lists *l);

/* This rank's block: composites and values of row r. */
static inline uint64_t *shard_lists_words(const shard_lists *l, int64_t r) { return (uint64_t *)l->send + r * l->slots; }
static inline char *shard_lists_values(const shard_lists *l, int64_t r)
{
    return l->send + (size_t)(l->batch * l->slots) * 8 + (size_t)(r * l->slots * l->elem);
}

/* Fills the block from topk_select's call on the shard: selects `kept` per row (kept <= slots, into the
 * block as indices and values), then lays the rows out at `slots` and pads them. The composites are still
 * local column indices: the caller turns them into composites (shard_lists_contract_composites, or the
 * sampler's own). */
topk_status shard_lists_select(shard_lists *l, topk_ctx *ctx, const topk_shard *shard, int64_t kept, unsigned flags);

/* Turns row r's local indices (the first kept slots) into contract composites with global columns. */
void shard_lists_contract_composites(shard_lists *l, int64_t r, int64_t kept, int64_t column_offset, int dtype,
                                     uint32_t key_flip);

/* Sends the blocks to the receiving ranks (allgather, or gather to root). */
topk_status shard_lists_exchange(shard_lists *l, const topk_comm *comm, int root);

/* On a receiving rank: row r's best n over all ranks' lists, composites into l->merged[0..n), values
 * (n elements) into values. n <= slots. */
void shard_lists_merge(shard_lists *l, int64_t r, int64_t n, char *values);

#endif
