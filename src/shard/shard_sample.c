/*
 * topk_shard_sample: topk_sample over rows whose columns are spread over the ranks of a communicator.
 *
 * A row with a top-k list (greedy, or 1 < top_k <= SHARD_LIST_MOST) is sampled from its candidates: each
 * rank selects its shard's best top_k under the sampling order (NaN as -inf) with global columns, the
 * lists are exchanged and merged into the row's best top_k, and sample_from_list draws from them exactly
 * as the cpu backend draws from its own selection of the whole row (shard_lists.h: the merged list IS
 * that selection). Every other row takes the whole-row way of shard_draw.h, which moves no logits.
 */
#include <stdlib.h>
#include <string.h>

#include "select_words.h"
#include "shard_draw.h"
#include "shard_lists.h"

/* Above this top_k a row takes the whole-row way, whose traffic does not grow with top_k. */
enum { SHARD_LIST_MOST = 4096 };

static int64_t list_length(sample_row rp, int64_t global_vocab)
{
    return sample_list_length(rp, global_vocab, SHARD_LIST_MOST);
}

/* A hash of everything that decides the draws, so that ranks given different parameters are caught. */
static int64_t params_digest(const topk_sampling *params, const sample_row *rows, int64_t batch)
{
    uint64_t h = SHARD_HASH_START;
    for (int64_t r = 0; r < batch; r++) {
        const sample_row *rp = &rows[r];
        uint64_t random = sample_row_random(params->seed, params->offset, params->seeds, params->offsets, r);
        h = shard_hash(h, &rp->temperature, sizeof rp->temperature);
        h = shard_hash(h, &rp->top_p, sizeof rp->top_p);
        h = shard_hash(h, &rp->min_p, sizeof rp->min_p);
        h = shard_hash(h, &rp->top_k, sizeof rp->top_k);
        h = shard_hash(h, &random, sizeof random);
    }
    return (int64_t)h;
}

/* The rank's checks beyond its shard's, and the rows' resolved parameters. */
static topk_status check_call(const topk_comm *comm, int root, const topk_sampling *params, unsigned flags,
                              const int64_t *tokens_out, int64_t global_vocab, int64_t batch, sample_row *rows)
{
    if (!rows) return TOPK_ERR_OUT_OF_MEMORY;
    if (!params || (shard_receives(comm, root) && !tokens_out)) return TOPK_ERR_NULL_POINTER;
    if (flags & ~TOPK_DEVICE_POINTERS) return TOPK_ERR_BAD_PARAM;
    if (flags & TOPK_DEVICE_POINTERS) return TOPK_ERR_UNSUPPORTED;
    return topk_sample_resolve_rows(params, batch, global_vocab, rows);
}

/* Row r's list the slow way: every element's sampling composite, the best `kept` of them sorted. For a row
 * whose selection starts with a NaN, which the library's order ranks first and sampling ranks as -inf. */
static void list_by_sampling_order(shard_lists *l, const topk_shard *shard, int64_t r, int64_t kept, uint64_t *scratch)
{
    const char *row = shard_row(shard, r);
    for (int64_t i = 0; i < shard->vocab; i++)
        scratch[i] = topk_composite(sample_key(shard->dtype, sample_bits_at(row, shard->dtype, i)), shard->column_offset + i);
    topk_select_words(scratch, shard->vocab, kept);
    topk_sort_words_descending(scratch, kept);
    uint64_t *words = shard_lists_words(l, r);
    char *values = shard_lists_values(l, r);
    for (int64_t j = 0; j < kept; j++) {
        words[j] = scratch[j];
        memcpy(values + j * l->elem, row + (topk_composite_column(scratch[j]) - shard->column_offset) * l->elem,
               (size_t)l->elem);
    }
}

/* The shard's best min(slots, vocab) of each row under the sampling order, with global columns. */
static topk_status select_own(shard_lists *l, topk_ctx *ctx, const topk_shard *shard)
{
    int64_t kept = shard_min(l->slots, shard->vocab);
    topk_status s = shard_lists_select(l, ctx, shard, kept, 0);
    uint64_t *scratch = NULL;
    for (int64_t r = 0; r < shard->batch && s == TOPK_OK && kept > 0; r++) {
        const char *values = shard_lists_values(l, r);
        if (sample_bits_are_nan(shard->dtype, sample_bits_at(values, shard->dtype, 0))) {
            if (!scratch && !(scratch = malloc((size_t)shard->vocab * sizeof *scratch))) s = TOPK_ERR_OUT_OF_MEMORY;
            if (scratch) list_by_sampling_order(l, shard, r, kept, scratch);
            continue;
        }
        uint64_t *words = shard_lists_words(l, r);
        for (int64_t j = 0; j < kept; j++)
            words[j] = topk_composite(sample_key(shard->dtype, sample_bits_at(values, shard->dtype, j)),
                                      shard->column_offset + (int64_t)words[j]);
    }
    free(scratch);
    return s;
}

/* The rows with a list, from the merged candidates (receiving ranks only); values and weights hold a list. */
static void draw_lists(shard_lists *l, const topk_shard *shard, const sample_row *rows, const topk_sampling *params,
                       char *values, uint64_t *weights, sample_pick *picks)
{
    for (int64_t r = 0; r < shard->batch; r++) {
        int64_t n = list_length(rows[r], shard->global_vocab);
        if (!n) continue;
        shard_lists_merge(l, r, n, values);
        picks[r] = sample_from_list(values, shard->dtype, shard->global_vocab, l->merged, n, weights, rows[r],
                                    sample_row_random(params->seed, params->offset, params->seeds, params->offsets, r));
    }
}

topk_status topk_shard_sample(topk_ctx *ctx, const topk_comm *comm, const topk_shard *shard,
                              const topk_sampling *params, unsigned flags, int root, int64_t *tokens_out,
                              float *probs_out)
{
    topk_status s = shard_check_comm(comm, root);
    if (s != TOPK_OK) return s;
    shard_header header = {.op = SHARD_OP_SAMPLE, .flags = flags, .root = root};
    s = shard_check_shard(ctx, shard, 0, &header);
    int64_t batch = s == TOPK_OK ? shard->batch : 0, global_vocab = s == TOPK_OK ? shard->global_vocab : 0;
    sample_row *rows = malloc((size_t)batch * sizeof *rows + 1);
    sample_pick *picks = malloc((size_t)batch * sizeof *picks + 1);
    if (s == TOPK_OK) s = check_call(comm, root, params, flags, tokens_out, global_vocab, batch, rows);
    if (s == TOPK_OK && !picks) s = TOPK_ERR_OUT_OF_MEMORY;
    if (s == TOPK_OK) header.digest = params_digest(params, rows, batch);
    /* Every buffer first, and the rank's own selection: a failure here reaches the other ranks through
     * the agreement. */
    int64_t longest = 0;
    for (int64_t r = 0; r < batch && s == TOPK_OK; r++)
        if (list_length(rows[r], global_vocab) > longest) longest = list_length(rows[r], global_vocab);
    shard_lists l = {0};
    shard_draw d = {0};
    int elem = s == TOPK_OK ? topk_dtype_size(shard->dtype) : 0;
    char *list_values = malloc((size_t)(longest * elem) + 1);
    uint64_t *list_weights = malloc((size_t)longest * sizeof *list_weights + 1);
    if (s == TOPK_OK && (!list_values || !list_weights)) s = TOPK_ERR_OUT_OF_MEMORY;
    if (s == TOPK_OK) s = shard_lists_alloc(&l, comm, root, batch, longest, elem);
    if (s == TOPK_OK) s = shard_draw_alloc(&d, rows, batch, global_vocab, SHARD_LIST_MOST);
    if (s == TOPK_OK && longest > 0) s = select_own(&l, ctx, shard);
    header.status = s;
    s = shard_agree(comm, &header);
    bool receives = shard_receives(comm, root);
    if (s == TOPK_OK && longest > 0) s = shard_lists_exchange(&l, comm, root);
    if (s == TOPK_OK && longest > 0 && receives) draw_lists(&l, shard, rows, params, list_values, list_weights, picks);
    if (s == TOPK_OK) s = shard_draw_run(&d, comm, shard, rows, params, picks);
    for (int64_t r = 0; r < batch && s == TOPK_OK && receives; r++) {
        tokens_out[r] = picks[r].token;
        if (probs_out) probs_out[r] = picks[r].prob;
    }
    shard_lists_free(&l);
    shard_draw_free(&d);
    free(list_values);
    free(list_weights);
    free(rows);
    free(picks);
    return s;
}
