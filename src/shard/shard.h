/*
 * What the vocab-sharded calls (topk_shard_select, topk_shard_sample) share. Not installed.
 *
 * A sharded call has three stages, in this order on every rank:
 *   1. local: check the arguments, allocate every buffer the call needs and do the rank's own work that
 *      can fail (its selection), recording a status instead of returning;
 *   2. agreement (shard_agree): one allgather of every rank's call header, after which all ranks know
 *      whether the call is good everywhere and return the same status if not;
 *   3. collectives and merges that cannot fail except in the communicator, then the outputs.
 * So a bad call, or one rank out of memory, never leaves another rank waiting in a collective, and no
 * output is written unless the whole call succeeds.
 */
#ifndef TOPK_SHARD_H
#define TOPK_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* One rank's call as the agreement sees it; int64 fields only, so the bytes are the same on every rank. */
typedef struct shard_header {
    int64_t status;                 /* the rank's local verdict (topk_status) */
    int64_t op;                     /* which entry point: the ranks must all call the same one */
    int64_t batch, dtype, global_vocab, column_offset, vocab;
    int64_t k;                      /* topk_shard_select's k; 0 for sampling */
    int64_t flags, root;
    int64_t digest;                 /* sampling: a hash of every row's parameters, seeds and offsets */
} shard_header;

enum { SHARD_OP_SELECT = 1, SHARD_OP_SAMPLE = 2 };

/* The checks that need no other rank: a bad comm or root cannot take part in the agreement, so the
 * entry points return this status at once. */
topk_status shard_check_comm(const topk_comm *comm, int root);

/* The rank's own checks of its shard and k (the same as topk_select's, against the global vocab), in
 * topk_select's order; fills the header's shape fields and k (the caller fills the rest). */
topk_status shard_check_shard(const topk_ctx *ctx, const topk_shard *shard, int64_t k, shard_header *header);

/* Whether this rank receives the result. */
static inline bool shard_receives(const topk_comm *comm, int root) { return root < 0 || root == comm->rank; }

/* Exchanges the headers; returns TOPK_OK on every rank when every rank's status is TOPK_OK, the ranks
 * agree on the call and the shards tile [0, global_vocab), else the same error on every rank (the first
 * failing rank's status, or TOPK_ERR_BAD_SHARDS). TOPK_ERR_COMM when the allgather fails. */
topk_status shard_agree(const topk_comm *comm, const shard_header *mine);

/* FNV-1a over bytes, continuing from h (start with SHARD_HASH_START). */
#define SHARD_HASH_START 0xCBF29CE484222325u
uint64_t shard_hash(uint64_t h, const void *bytes, size_t size);

/* A status from a communicator op's return value. */
static inline topk_status shard_comm_status(int rc) { return rc == 0 ? TOPK_OK : TOPK_ERR_COMM; }

static inline int64_t shard_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* The first element of shard row r. */
static inline const char *shard_row(const topk_shard *shard, int64_t r)
{
    return (const char *)shard->data + (size_t)r * (size_t)shard->row_stride * (size_t)topk_dtype_size(shard->dtype);
}

#endif
