/*
 * The whole-row way of topk_shard_sample (shard_draw.h): the steps of sample_team_draw_row, each one a
 * collective over every row that takes this way, in lockstep on all ranks (every loop bound and branch
 * below depends only on all-reduced values and on the agreed parameters).
 */
#include <stdlib.h>
#include <string.h>

#include "sample_team.h"
#include "shard_draw.h"

enum { BINS = SAMPLE_BINS, ROW_WORDS = 2 * SAMPLE_BINS /* mass bins, then count bins */ };

typedef struct draw_state {
    sample_view view;  /* the rank's part of the row: members have composite >= floor and w >= min_p */
    bool done;         /* decided by the best alone (greedy, or nothing but -inf and NaN) */
    uint64_t target;   /* the current search's target, 0 when the row does not search */
    bool searching;    /* its digit is not settled yet */
    uint64_t need, prefix, settled, found; /* the search's state, as in sample_team_search */
    uint64_t total, kept;
} draw_state;

topk_status shard_draw_alloc(shard_draw *d, const sample_row *rows, int64_t batch, int64_t global_vocab, int64_t most)
{
    *d = (shard_draw){0};
    for (int64_t r = 0; r < batch; r++) d->count += sample_list_length(rows[r], global_vocab, most) == 0;
    if (d->count == 0) return TOPK_OK;
    d->rows = malloc((size_t)d->count * sizeof *d->rows);
    d->state = malloc((size_t)d->count * sizeof *d->state);
    d->send = malloc((size_t)(d->count * ROW_WORDS) * sizeof *d->send);
    d->recv = malloc((size_t)(d->count * ROW_WORDS) * sizeof *d->recv);
    if (!d->rows || !d->state || !d->send || !d->recv) return TOPK_ERR_OUT_OF_MEMORY;
    for (int64_t r = 0, j = 0; r < batch; r++)
        if (sample_list_length(rows[r], global_vocab, most) == 0) d->rows[j++] = r;
    return TOPK_OK;
}

void shard_draw_free(shard_draw *d)
{
    free(d->rows);
    free(d->state);
    free(d->send);
    free(d->recv);
    *d = (shard_draw){0};
}

/* Element i of the rank's part of the row, as the sampling composite of its global column. */
static uint64_t composite_at(const sample_view *v, int64_t column_offset, int64_t i)
{
    return topk_composite(sample_key(v->dtype, sample_bits_at(v->row, v->dtype, i)), column_offset + i);
}

/* What a member weighs in a search: its integer weight, or 1 when counting. 0 for a non-member. */
static uint64_t measure(const sample_view *v, int64_t i, uint64_t c, bool by_mass)
{
    return by_mass ? view_mass(*v, i, c) : (uint64_t)(c >= v->floor);
}

/* recv[0 .. count * words) = the reduction over ranks of send. */
static topk_status reduce(shard_draw *d, const topk_comm *comm, int64_t words, topk_comm_reduce op)
{
    return shard_comm_status(comm->allreduce_u64(comm->handle, d->send, d->recv, (size_t)(d->count * words), op, NULL));
}

/* Each row's best element: the pick of a greedy row, and the max and scale of the others. */
static topk_status find_best(shard_draw *d, const topk_comm *comm, const topk_shard *shard, const sample_row *rows,
                             sample_pick *picks)
{
    for (int64_t j = 0; j < d->count; j++) {
        draw_state *st = &d->state[j];
        *st = (draw_state){.view = {.row = shard->vocab ? shard_row(shard, d->rows[j]) : NULL, .dtype = shard->dtype,
                                    .kind = SAMPLE_LOGITS, .vocab = shard->vocab}};
        uint64_t best = 0;
        for (int64_t i = 0; i < shard->vocab; i++) {
            uint64_t c = composite_at(&st->view, shard->column_offset, i);
            best = c > best ? c : best;
        }
        d->send[j] = best;
    }
    topk_status s = reduce(d, comm, 1, TOPK_COMM_MAX);
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++) {
        draw_state *st = &d->state[j];
        sample_row rp = rows[d->rows[j]];
        float max = sample_value(shard->dtype, sample_key_bits(shard->dtype, (uint32_t)(d->recv[j] >> 32)));
        picks[d->rows[j]] = (sample_pick){topk_composite_column(d->recv[j]), 1.0f};
        st->done = rp.temperature == 0.0f || rp.top_k == 1 || max == -__builtin_inff();
        if (!st->done) st->view.sc = sample_scale_make(max, rp.temperature, shard->global_vocab);
    }
    return s;
}

/* The members' total weight of each row that is not done, into total (or kept). */
static topk_status masses(shard_draw *d, const topk_comm *comm, const topk_shard *shard, bool kept)
{
    for (int64_t j = 0; j < d->count; j++) {
        const draw_state *st = &d->state[j];
        uint64_t sum = 0;
        for (int64_t i = 0; i < shard->vocab && !st->done; i++)
            sum += view_mass(st->view, i, composite_at(&st->view, shard->column_offset, i));
        d->send[j] = sum;
    }
    topk_status s = reduce(d, comm, 1, TOPK_COMM_SUM);
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++) *(kept ? &d->state[j].kept : &d->state[j].total) = d->recv[j];
    return s;
}

/* One radix pass of every searching row: the rank's bins, all-reduced, then the digit each row settles.
 * Returns through *more whether some row still needs a pass. */
static topk_status search_pass(shard_draw *d, const topk_comm *comm, const topk_shard *shard, bool by_mass, int shift,
                               bool *more)
{
    memset(d->send, 0, (size_t)(d->count * ROW_WORDS) * sizeof *d->send);
    for (int64_t j = 0; j < d->count; j++) {
        const draw_state *st = &d->state[j];
        uint64_t *bins = d->send + j * ROW_WORDS;
        for (int64_t i = 0; i < shard->vocab && st->searching; i++) {
            uint64_t c = composite_at(&st->view, shard->column_offset, i);
            if ((c ^ st->prefix) & st->settled) continue;
            uint64_t x = measure(&st->view, i, c, by_mass);
            if (!x) continue;
            uint32_t b = (uint32_t)(c >> shift) & (BINS - 1);
            bins[b] += x;
            bins[BINS + b] += 1;
        }
    }
    topk_status s = reduce(d, comm, ROW_WORDS, TOPK_COMM_SUM);
    *more = false;
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++) {
        draw_state *st = &d->state[j];
        if (!st->searching) continue;
        const uint64_t *mass = d->recv + j * ROW_WORDS, *count = mass + BINS;
        uint64_t above = 0;
        int b = BINS - 1;
        for (; b > 0 && above + mass[b] < st->need; b--) above += mass[b];
        st->need -= above;
        st->prefix |= (uint64_t)b << shift;
        st->settled |= (uint64_t)(BINS - 1) << shift;
        st->searching = count[b] > 1 && shift > 0; /* else the bin holds one member, or every bit is settled */
        *more = *more || st->searching;
    }
    return s;
}

/* sample_team_search for every row with a target (by count or by mass): the member at which the row's
 * best-first cumulative measure reaches its target, as its composite, into found. */
static topk_status search(shard_draw *d, const topk_comm *comm, const topk_shard *shard, bool by_mass)
{
    bool more = false;
    for (int64_t j = 0; j < d->count; j++) {
        draw_state *st = &d->state[j];
        st->prefix = st->settled = st->found = 0;
        st->need = st->target;
        st->searching = st->target != 0;
        more = more || st->searching;
    }
    if (!more) return TOPK_OK; /* no row searches: the ranks agree on that too, so none calls a collective */
    topk_status s = TOPK_OK;
    for (int shift = 56; more && s == TOPK_OK; shift -= 8) s = search_pass(d, comm, shard, by_mass, shift, &more);
    /* The settled bin of each row holds one member: the rank that has it names it. */
    for (int64_t j = 0; j < d->count; j++) {
        const draw_state *st = &d->state[j];
        d->send[j] = 0;
        for (int64_t i = 0; i < shard->vocab && st->target; i++) {
            uint64_t c = composite_at(&st->view, shard->column_offset, i);
            if (!((c ^ st->prefix) & st->settled) && measure(&st->view, i, c, by_mass)) d->send[j] = c;
        }
    }
    if (s == TOPK_OK) s = reduce(d, comm, 1, TOPK_COMM_MAX);
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++) d->state[j].found = d->recv[j];
    return s;
}

/* The weight of a member, from its composite alone (its key gives its value back). */
static uint64_t weight_of(const draw_state *st, uint64_t c)
{
    float x = sample_value(st->view.dtype, sample_key_bits(st->view.dtype, (uint32_t)(c >> 32)));
    return sample_fixed(st->view.sc, sample_w(st->view.sc, x));
}

topk_status shard_draw_run(shard_draw *d, const topk_comm *comm, const topk_shard *shard, const sample_row *rows,
                           const topk_sampling *params, sample_pick *picks)
{
    if (d->count == 0) return TOPK_OK;
    int64_t vocab = shard->global_vocab;
    topk_status s = find_best(d, comm, shard, rows, picks);
    /* top_k: the floor is the top_k-th best by count */
    for (int64_t j = 0; j < d->count; j++) {
        sample_row rp = rows[d->rows[j]];
        d->state[j].target = !d->state[j].done && rp.top_k > 0 && rp.top_k < vocab ? (uint64_t)rp.top_k : 0;
    }
    if (s == TOPK_OK) s = search(d, comm, shard, false);
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++)
        if (d->state[j].target) d->state[j].view.floor = d->state[j].found;
    if (s == TOPK_OK) s = masses(d, comm, shard, false);
    /* top-p: the floor moves up to the member where the best-first mass reaches ceil(p * total) */
    for (int64_t j = 0; j < d->count; j++) {
        sample_row rp = rows[d->rows[j]];
        draw_state *st = &d->state[j];
        st->target = !st->done && rp.top_p < 1.0f ? sample_top_p_target(rp.top_p, st->total) : 0;
    }
    if (s == TOPK_OK) s = search(d, comm, shard, true);
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++) {
        draw_state *st = &d->state[j];
        if (st->target) st->view.floor = st->found;
        st->view.min_p = rows[d->rows[j]].min_p;
    }
    if (s == TOPK_OK) s = masses(d, comm, shard, true);
    /* the draw: the member where the best-first kept mass exceeds R = floor(u * kept) */
    for (int64_t j = 0; j < d->count; j++) {
        draw_state *st = &d->state[j];
        uint64_t random = sample_row_random(params->seed, params->offset, params->seeds, params->offsets, d->rows[j]);
        st->target = st->done ? 0 : sample_mulhi(random, st->kept) + 1;
    }
    if (s == TOPK_OK) s = search(d, comm, shard, true);
    for (int64_t j = 0; j < d->count && s == TOPK_OK; j++) {
        const draw_state *st = &d->state[j];
        if (st->done) continue;
        picks[d->rows[j]] = (sample_pick){topk_composite_column(st->found), sample_ratio(weight_of(st, st->found), st->kept)};
    }
    return s;
}
