/*
 * Validation of a sharded call and the agreement of all ranks on it (shard.h's stage 2).
 *
 * Every rank checks its own arguments, then the ranks exchange one header each. From the same bytes
 * every rank reaches the same verdict: the first failing rank's status, or TOPK_ERR_BAD_SHARDS when the
 * ranks disagree on the call or their shards leave a gap or overlap. Then all of them return it, or all
 * of them go on to the collectives of the call.
 */
#include <stdlib.h>

#include "shard.h"

uint64_t shard_hash(uint64_t h, const void *bytes, size_t size)
{
    const unsigned char *b = bytes;
    for (size_t i = 0; i < size; i++) h = (h ^ b[i]) * 0x100000001B3u;
    return h;
}

topk_status shard_check_comm(const topk_comm *comm, int root)
{
    if (!comm || !comm->allgather || !comm->allreduce_u64) return TOPK_ERR_NULL_POINTER;
    if (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size || root < TOPK_ALL_RANKS || root >= comm->size)
        return TOPK_ERR_BAD_PARAM;
    if (comm->device_buffers) return TOPK_ERR_UNSUPPORTED;
    return TOPK_OK;
}

topk_status shard_check_shard(const topk_ctx *ctx, const topk_shard *shard, int64_t k, shard_header *header)
{
    header->k = k;
    if (!shard) return TOPK_ERR_NULL_POINTER;
    header->batch = shard->batch;
    header->dtype = shard->dtype;
    header->global_vocab = shard->global_vocab;
    header->column_offset = shard->column_offset;
    header->vocab = shard->vocab;
    if (!ctx || (shard->vocab > 0 && !shard->data)) return TOPK_ERR_NULL_POINTER;
    int elem = topk_dtype_size(shard->dtype);
    if (!elem) return TOPK_ERR_BAD_DTYPE;
    /* Columns are global and take the composites' 32 bits, so the whole row must fit them. */
    if (shard->batch < 1 || shard->global_vocab < 1 || shard->global_vocab > (int64_t)UINT32_MAX || shard->vocab < 0 ||
        shard->column_offset < 0 || shard->column_offset > shard->global_vocab - shard->vocab)
        return TOPK_ERR_BAD_SHAPE;
    if (k < 0 || k > shard->global_vocab) return TOPK_ERR_BAD_K;
    if (shard->row_stride < shard->vocab) return TOPK_ERR_BAD_STRIDE;
    if (!topk_fits_in_offsets(shard->batch, shard->vocab, shard->row_stride, k, elem)) return TOPK_ERR_BAD_SHAPE;
    return TOPK_OK;
}

typedef struct span {
    int64_t begin, end;
} span;

static int earlier_first(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Whether the non-empty shards, in column order, follow each other from 0 to global_vocab. */
static bool shards_tile(const shard_header *all, int size, span *spans)
{
    int n = 0;
    for (int r = 0; r < size; r++)
        if (all[r].vocab > 0) spans[n++] = (span){all[r].column_offset, all[r].column_offset + all[r].vocab};
    qsort(spans, (size_t)n, sizeof *spans, earlier_first);
    int64_t next = 0;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin != next) return false;
        next = spans[i].end;
    }
    return next == all[0].global_vocab;
}

static bool same_call(const shard_header *a, const shard_header *b)
{
    return a->op == b->op && a->batch == b->batch && a->dtype == b->dtype && a->global_vocab == b->global_vocab &&
           a->k == b->k && a->flags == b->flags && a->root == b->root && a->digest == b->digest;
}

static topk_status verdict(const shard_header *all, int size, span *spans)
{
    for (int r = 0; r < size; r++)
        if (all[r].status != TOPK_OK) return (topk_status)all[r].status;
    for (int r = 1; r < size; r++)
        if (!same_call(&all[r], &all[0])) return TOPK_ERR_BAD_SHARDS;
    return shards_tile(all, size, spans) ? TOPK_OK : TOPK_ERR_BAD_SHARDS;
}

topk_status shard_agree(const topk_comm *comm, const shard_header *mine)
{
    /* size headers: the one allocation that cannot report its failure to the other ranks (a process that
     * cannot find size x 128 bytes will not get much further anyway) */
    shard_header *all = malloc((size_t)comm->size * sizeof *all);
    span *spans = malloc((size_t)comm->size * sizeof *spans);
    topk_status s = all && spans ? shard_comm_status(comm->allgather(comm->handle, mine, all, sizeof *mine, NULL))
                                 : TOPK_ERR_OUT_OF_MEMORY;
    if (s == TOPK_OK) s = verdict(all, comm->size, spans);
    free(all);
    free(spans);
    return s;
}
