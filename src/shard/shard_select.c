/*
 * topk_shard_select: topk_select over rows whose columns are spread over the ranks of a communicator.
 *
 * Each rank selects its shard's best min(k, shard vocab) with the context's backend, turns them into
 * composites with global columns, the lists travel to the receiving ranks with their values, and the
 * receivers merge the best k (shard_lists.h says why that is the row's best k, bit for bit).
 */
#include "shard_lists.h"

/* The rank's own checks beyond its shard's, in topk_select's order. */
static topk_status check_call(const topk_comm *comm, int root, int64_t k, unsigned flags, const void *values_out,
                              const int64_t *indices_out)
{
    if (k > 0 && shard_receives(comm, root) && (!values_out || !indices_out)) return TOPK_ERR_NULL_POINTER;
    if (flags & ~(TOPK_SMALLEST | TOPK_DEVICE_POINTERS)) return TOPK_ERR_BAD_PARAM;
    if (flags & TOPK_DEVICE_POINTERS) return TOPK_ERR_UNSUPPORTED;
    return TOPK_OK;
}

/* The shard's best min(k, vocab) of each row as contract composites with global columns. */
static topk_status select_own(shard_lists *l, topk_ctx *ctx, const topk_shard *shard, unsigned flags)
{
    int64_t kept = shard_min(l->slots, shard->vocab);
    topk_status s = shard_lists_select(l, ctx, shard, kept, flags & TOPK_SMALLEST);
    uint32_t key_flip = (flags & TOPK_SMALLEST) ? (shard->dtype == TOPK_F32 ? 0xFFFFFFFFu : 0xFFFFu) : 0;
    for (int64_t r = 0; r < shard->batch && s == TOPK_OK; r++)
        shard_lists_contract_composites(l, r, kept, shard->column_offset, shard->dtype, key_flip);
    return s;
}

topk_status topk_shard_select(topk_ctx *ctx, const topk_comm *comm, const topk_shard *shard, int64_t k, unsigned flags,
                              int root, void *values_out, int64_t *indices_out)
{
    topk_status s = shard_check_comm(comm, root);
    if (s != TOPK_OK) return s;
    shard_header header = {.op = SHARD_OP_SELECT, .flags = flags, .root = root};
    s = shard_check_shard(ctx, shard, k, &header);
    if (s == TOPK_OK) s = check_call(comm, root, k, flags, values_out, indices_out);
    shard_lists l = {0};
    if (s == TOPK_OK) s = shard_lists_alloc(&l, comm, root, shard->batch, k, topk_dtype_size(shard->dtype));
    if (s == TOPK_OK && k > 0) s = select_own(&l, ctx, shard, flags);
    header.status = s;
    s = shard_agree(comm, &header);
    if (s == TOPK_OK && k > 0) s = shard_lists_exchange(&l, comm, root);
    if (s == TOPK_OK && k > 0 && shard_receives(comm, root)) {
        int elem = topk_dtype_size(shard->dtype);
        for (int64_t r = 0; r < shard->batch; r++) {
            shard_lists_merge(&l, r, k, (char *)values_out + r * k * elem);
            for (int64_t j = 0; j < k; j++) indices_out[r * k + j] = topk_composite_column(l.merged[j]);
        }
    }
    shard_lists_free(&l);
    return s;
}
