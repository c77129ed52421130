/*
 * The tests' own sampler (sample_ref.h): plain double arithmetic and a full sort, obviously correct
 * rather than fast.
 */
#include "sample_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

void ref_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k[0] += 0x9E3779B9u; /* the golden ratio */
            k[1] += 0xBB67AE85u; /* sqrt(3) - 1 */
        }
        uint64_t a = (uint64_t)0xD2511F53u * x[0], b = (uint64_t)0xCD9E8D57u * x[2];
        uint32_t y[4] = {(uint32_t)(b >> 32) ^ x[1] ^ k[0], (uint32_t)b, (uint32_t)(a >> 32) ^ x[3] ^ k[1], (uint32_t)a};
        memcpy(x, y, sizeof x);
    }
    memcpy(out, x, sizeof x);
}

double ref_decode(topk_dtype dtype, uint32_t bits)
{
    if (dtype == TOPK_F32 || dtype == TOPK_BF16) {
        uint32_t f = dtype == TOPK_F32 ? bits : bits << 16;
        float v;
        memcpy(&v, &f, 4);
        return v;
    }
    int e = (bits >> 10) & 31;
    double m = bits & 1023, sign = (bits & 0x8000) ? -1 : 1;
    if (e == 31) return m ? NAN : sign * INFINITY;
    return sign * (e ? ldexp(1024 + m, e - 25) : ldexp(m, -24));
}

typedef struct ref_elem {
    double x;
    int64_t index;
} ref_elem;

/* Best first: larger value, +0 above -0, then the smaller index. */
static int better_first(const void *pa, const void *pb)
{
    const ref_elem *a = pa, *b = pb;
    if (a->x != b->x) return a->x > b->x ? -1 : 1;
    if (signbit(a->x) != signbit(b->x)) return signbit(a->x) ? 1 : -1;
    return a->index < b->index ? -1 : 1;
}

static ref_elem *sorted_row(topk_dtype dtype, const void *row, int64_t vocab)
{
    ref_elem *e = malloc((size_t)vocab * sizeof *e);
    for (int64_t i = 0; i < vocab; i++) {
        double x = ref_decode(dtype, load_bits(dtype, row, i));
        e[i] = (ref_elem){isnan(x) ? -INFINITY : x, i};
    }
    qsort(e, (size_t)vocab, sizeof *e, better_first);
    return e;
}

int64_t ref_argmax(topk_dtype dtype, const void *row, int64_t vocab)
{
    ref_elem *e = sorted_row(dtype, row, vocab);
    int64_t best = e[0].index;
    free(e);
    return best;
}

static bool near(double a, double b) { return fabs(a - b) <= REF_TOLERANCE * (fabs(b) > 1 ? fabs(b) : 1); }

/* The distribution in best-first order: w[j] for the j-th best, renormalised, 0 where filtered. */
static bool sorted_distribution(const ref_elem *e, int64_t vocab, ref_params p, double *w)
{
    double best = e[0].x;
    bool clear = true;
    for (int64_t j = 0; j < vocab; j++) w[j] = 0;
    if (p.temperature == 0 || p.top_k == 1 || best == -INFINITY) {
        w[0] = 1;
        return true;
    }
    int64_t kept = p.top_k > 0 && p.top_k < vocab ? p.top_k : vocab;
    double total = 0;
    for (int64_t j = 0; j < kept; j++) {
        w[j] = best == INFINITY ? (e[j].x == INFINITY) : exp((e[j].x - best) / p.temperature);
        total += w[j];
    }
    if (p.top_p < 1) {
        double mass = 0;
        int64_t end = 0;
        while (end < kept && mass < p.top_p * total) {
            mass += w[end++];
            if (near(mass / total, p.top_p) || (w[end - 1] > 0 && near((mass - w[end - 1]) / total, p.top_p)))
                clear = false;
        }
        kept = end;
    }
    double sum = 0;
    for (int64_t j = 0; j < vocab; j++) {
        if (j >= kept) w[j] = 0;
        if (p.min_p > 0 && w[j] > 0 && near(w[j], p.min_p) && w[j] > 1e-30) clear = false;
        if (w[j] < p.min_p) w[j] = 0;
        sum += w[j];
    }
    for (int64_t j = 0; j < vocab; j++) w[j] /= sum;
    return clear;
}

bool ref_distribution(topk_dtype dtype, const void *row, int64_t vocab, ref_params p, double *probs)
{
    ref_elem *e = sorted_row(dtype, row, vocab);
    double *w = malloc((size_t)vocab * sizeof *w);
    bool clear = sorted_distribution(e, vocab, p, w);
    for (int64_t j = 0; j < vocab; j++) probs[e[j].index] = w[j];
    free(w);
    free(e);
    return clear;
}

ref_pick ref_sample(topk_dtype dtype, const void *row, int64_t vocab, ref_params p, uint64_t seed, uint64_t offset,
                    uint64_t row_index)
{
    ref_elem *e = sorted_row(dtype, row, vocab);
    double *w = malloc((size_t)vocab * sizeof *w);
    ref_pick pick = {e[0].index, 1, !sorted_distribution(e, vocab, p, w)};
    uint32_t ctr[4] = {(uint32_t)offset, (uint32_t)(offset >> 32), (uint32_t)row_index, (uint32_t)(row_index >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
    ref_philox(ctr, key, out);
    double u = ldexp((double)out[1], -32) + ldexp((double)out[0], -64);
    double below = 0;
    int64_t chosen = -1, last = 0;
    for (int64_t j = 0; j < vocab && chosen < 0; j++) {
        if (w[j] == 0) continue;
        last = j;
        if (near(below + w[j], u)) pick.ambiguous = true;
        if (below + w[j] > u) chosen = j;
        below += w[j];
    }
    if (chosen < 0) { /* u above the rounded total */
        chosen = last;
        pick.ambiguous = true;
    }
    pick.token = e[chosen].index;
    pick.prob = w[chosen];
    free(w);
    free(e);
    return pick;
}
