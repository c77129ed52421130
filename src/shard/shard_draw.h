/*
 * The whole-row way of topk_shard_sample: rows without a top-k list (top-p, min-p, plain temperature, or a
 * top_k too long for a list), sampled without moving any logit. Not installed.
 *
 * It computes sample_team_draw_row's function of the whole row (sample_team.h, sample_math.h), every
 * step of it a collective over all such rows at once:
 *   - the best: each rank's best sampling composite (global columns), all-reduced by max. Its key gives
 *     the value back exactly (sample_key_bits), so every rank has the row's max and temperature scale;
 *   - each search of sample_team_search (top_k by count, top-p by mass, the draw by mass R + 1): 8 bits
 *     of the composite a pass, each rank adds its members' integer weights and counts into 256 bins, the
 *     bins are all-reduced by sum, and every rank settles the same digit from the same sums; the member
 *     of the last bin is found by a max all-reduce;
 *   - the masses (total, kept): integer sums, all-reduced.
 * Integer sums do not depend on who adds what, so every decision is the one a single device makes.
 */
#ifndef TOPK_SHARD_DRAW_H
#define TOPK_SHARD_DRAW_H

#include "sample.h"
#include "shard.h"

typedef struct shard_draw {
    int64_t count;        /* rows that take this way */
    int64_t *rows;        /* their batch rows */
    uint64_t *send, *recv; /* count x 512: bins of mass and count */
    struct draw_state *state; /* count */
} shard_draw;

/* Allocates the buffers for the batch rows whose list length (sample_list_length) is 0. */
topk_status shard_draw_alloc(shard_draw *d, const sample_row *rows, int64_t batch, int64_t global_vocab, int64_t most);
void shard_draw_free(shard_draw *d);

/* Draws its rows: picks[r] for each of them. */
topk_status shard_draw_run(shard_draw *d, const topk_comm *comm, const topk_shard *shard, const sample_row *rows,
                           const topk_sampling *params, sample_pick *picks);

#endif
