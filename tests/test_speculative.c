/*
 * Chain speculative sampling (topk_chain_speculative_sample) on the cpu and offload backends. The offload
 * tests are the ones named "offload": run them alone with --filter, on the GPU or under TOPK_OFFLOAD_HOST=1.
 *
 *   - known answers: the acceptance test spec_accepts against r * q < p * 2^64 in 128-bit integers;
 *   - parity: offload against cpu bit for bit (tokens and both counts) over shapes, seeds, per-row seeds;
 *   - statistics: drafts drawn from q, the emitted token at every position j (given the row got that far)
 *     against p_j by chi-square, and the independent acceptance count against sum_j sum_x min(p_j, q_j),
 *     for a generic pair, q = 0 where p > 0, p = q and disjoint supports;
 *   - edges: q(d) = 0 accepts, p(d) = 0 rejects, NaN and negative read as 0, -1 after the stop;
 *   - batch invariance: with per-row seeds a row alone draws what it drew in the batch;
 *   - errors: every bad argument returns its status and writes nothing.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen.h"
#include "speculative_math.h"

/* ---- known answers ---- */

/* The acceptance test by definition: r * q < p * 2^64 with q and p as integer mantissas and exponents. */
static bool accepts_by_definition(uint64_t r, float p, float q)
{
    int ep, eq;
    unsigned __int128 mp = spec_mantissa(p, &ep), mq = spec_mantissa(q, &eq);
    /* r * mq * 2^eq < mp * 2^(ep + 64): bring both to the exponent min(eq, ep + 64) */
    int low = eq < ep + 64 ? eq : ep + 64, left = eq - low, right = ep + 64 - low;
    if (!mp) return false;
    if (!mq || !r) return true;
    if (right >= 100) return true; /* mp * 2^right >= 2^100 > r * mq * 2^left when left is 0 */
    if (left >= 100) return false;
    unsigned __int128 lhs = (unsigned __int128)r * mq, rhs = mp << right;
    if (left && lhs >> (127 - left)) return false;
    return (lhs << left) < rhs;
}

static float random_float(rng *g)
{
    switch (rng_below(g, 4)) {
    case 0: return (float)rng_below(g, 100) / 64.0f;
    case 1: return ldexpf((float)(rng_next(g) >> 40), -(int)rng_below(g, 180)); /* denormals too */
    default: return (float)(rng_next(g) >> 40) * 0x1p-24f;
    }
}

Test(speculative_known_answers, accepts)
{
    rng g = {77};
    for (int i = 0; i < 2000000; i++) {
        float p = random_float(&g), q = rng_below(&g, 8) ? random_float(&g) : p;
        uint64_t r = rng_next(&g);
        double ratio = q > 0 ? (double)p / (double)q : 2.0; /* near the boundary, a quarter of the time */
        if (rng_below(&g, 4) == 0 && ratio < 1) r = (uint64_t)(ratio * 0x1p64) + rng_below(&g, 5) - 2;
        cr_assert(spec_accepts(r, p, q) == accepts_by_definition(r, p, q), "r=%016llx p=%a q=%a",
                  (unsigned long long)r, p, q);
    }
    cr_assert(spec_accepts(~0ull, 0.5f, 0.5f) && !spec_accepts(0, 0.0f, 0.5f) && spec_accepts(~0ull, 1e-30f, 0.0f));
}

/* ---- running it ---- */

typedef struct spec_out {
    int64_t *tokens, *accepted, *emitted;
} spec_out;

static spec_out spec_out_new(int64_t batch, int64_t S)
{
    spec_out o = {malloc(batch * (S + 1) * 8), malloc(batch * 8), malloc(batch * 8)};
    return o;
}

static void spec_out_free(spec_out *o)
{
    free(o->tokens);
    free(o->accepted);
    free(o->emitted);
}

static void run_or_fail(topk_ctx *ctx, const float *q, const int64_t *ids, const float *p, int64_t batch, int64_t S,
                        int64_t vocab, const topk_speculative *sp, spec_out *o)
{
    topk_status s = topk_chain_speculative_sample(ctx, q, ids, p, batch, S, vocab, sp, 0, o->tokens, o->accepted,
                                                  o->emitted);
    cr_assert(s == TOPK_OK, "%s B=%lld S=%lld V=%lld: %s", backend_label(topk_ctx_backend(ctx)), (long long)batch,
              (long long)S, (long long)vocab, topk_strerror(s));
}

/* A random distribution over vocab (a few zeros, a few large entries), summing to ~1 in float. */
static void random_distribution(rng *g, float *x, int64_t vocab)
{
    double sum = 0;
    for (int64_t i = 0; i < vocab; i++) {
        double v = rng_below(g, 10) == 0 ? 0.0 : exp(3.0 * rng_normalish(g));
        x[i] = (float)v;
        sum += v;
    }
    if (sum == 0) x[0] = 1, sum = 1;
    for (int64_t i = 0; i < vocab; i++) x[i] = (float)(x[i] / sum);
}

/* A token drawn from x (the tests' own inverse CDF in double). */
static int64_t draw_from(rng *g, const float *x, int64_t vocab)
{
    double total = 0, u, below = 0;
    for (int64_t i = 0; i < vocab; i++) total += x[i];
    u = (double)(rng_next(g) >> 11) * 0x1p-53 * total;
    for (int64_t i = 0; i < vocab; i++)
        if (x[i] > 0 && (below += x[i]) > u) return i;
    for (int64_t i = vocab - 1; i >= 0; i--)
        if (x[i] > 0) return i;
    return 0;
}

/* Random inputs for a batch: q, p per position, drafts drawn from q (or uniform, some with q(d) = 0). */
typedef struct spec_inputs {
    float *q, *p;
    int64_t *ids;
} spec_inputs;

static spec_inputs random_inputs(int64_t batch, int64_t S, int64_t vocab, uint64_t seed)
{
    rng g = {seed};
    spec_inputs in = {malloc(batch * S * vocab * 4), malloc(batch * (S + 1) * vocab * 4), malloc(batch * S * 8)};
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t j = 0; j <= S; j++) random_distribution(&g, in.p + (b * (S + 1) + j) * vocab, vocab);
        for (int64_t j = 0; j < S; j++) {
            float *q = in.q + (b * S + j) * vocab;
            if (rng_below(&g, 5) == 0) memcpy(q, in.p + (b * (S + 1) + j) * vocab, vocab * 4); /* p = q */
            else random_distribution(&g, q, vocab);
            in.ids[b * S + j] = rng_below(&g, 4) ? draw_from(&g, q, vocab) : (int64_t)rng_below(&g, vocab);
        }
    }
    return in;
}

static void spec_inputs_free(spec_inputs *in)
{
    free(in->q);
    free(in->p);
    free(in->ids);
}

/* ---- parity ---- */

static void expect_same(const spec_out *a, const spec_out *b, int64_t batch, int64_t S, const char *what)
{
    for (int64_t r = 0; r < batch; r++) {
        cr_assert(!memcmp(a->tokens + r * (S + 1), b->tokens + r * (S + 1), (S + 1) * 8) &&
                      a->accepted[r] == b->accepted[r] && a->emitted[r] == b->emitted[r],
                  "%s: row %lld of %lld (S=%lld) differs: emitted %lld vs %lld, accepted %lld vs %lld", what,
                  (long long)r, (long long)batch, (long long)S, (long long)a->emitted[r], (long long)b->emitted[r],
                  (long long)a->accepted[r], (long long)b->accepted[r]);
    }
}

static void parity(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend), *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 1, 7}, {5, 2, 16}, {17, 3, 100}, {8, 4, 1000}, {2, 5, 50304}, {70, 2, 300}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int per_row = 0; per_row < 2; per_row++) {
            int64_t B = shapes[i][0], S = shapes[i][1], V = shapes[i][2];
            spec_inputs in = random_inputs(B, S, V, 1000 + i);
            uint64_t *seeds = malloc(B * 8), *offsets = malloc(B * 8);
            rng g = {42 + i};
            for (int64_t r = 0; r < B; r++) seeds[r] = rng_next(&g), offsets[r] = rng_below(&g, 100);
            topk_speculative sp = {.seed = 7 + i, .offset = 3, .seeds = per_row ? seeds : NULL,
                                   .offsets = per_row ? offsets : NULL};
            spec_out a = spec_out_new(B, S), b = spec_out_new(B, S);
            run_or_fail(ctx, in.q, in.ids, in.p, B, S, V, &sp, &a);
            run_or_fail(cpu, in.q, in.ids, in.p, B, S, V, &sp, &b);
            expect_same(&a, &b, B, S, backend_label(backend));
            for (int64_t r = 0; r < B; r++) {
                int64_t e = a.emitted[r], *t = a.tokens + r * (S + 1);
                cr_assert(e >= 0 && e <= S && a.accepted[r] >= e && a.accepted[r] <= S);
                for (int64_t j = 0; j <= S; j++)
                    cr_assert(j < e ? t[j] == in.ids[r * S + j] : j == e ? t[j] >= 0 && t[j] < V : t[j] == -1,
                              "row %lld position %lld: token %lld, emitted %lld", (long long)r, (long long)j,
                              (long long)t[j], (long long)e);
            }
            spec_out_free(&a);
            spec_out_free(&b);
            free(seeds);
            free(offsets);
            spec_inputs_free(&in);
        }
    topk_ctx_free(cpu);
    topk_ctx_free(ctx);
}

Test(speculative_parity, cpu) { parity(TOPK_BACKEND_CPU); }
Test(speculative_parity, offload, .timeout = 120) { parity(TOPK_BACKEND_OFFLOAD); }

/* Per-row seeds: a request's result depends on its inputs and its own (seed, offset) alone: alone in a
 * batch of 1 it gets what it got at row r of a batch of 64; and different offsets draw differently. */
static void batch_invariance(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    enum { B = 64, S = 3, V = 500 };
    spec_inputs in = random_inputs(B, S, V, 31);
    uint64_t seeds[B], offsets[B];
    rng g = {5};
    for (int r = 0; r < B; r++) seeds[r] = rng_next(&g), offsets[r] = rng_below(&g, 1000);
    topk_speculative sp = {.seed = 1, .offset = 2, .seeds = seeds, .offsets = offsets};
    spec_out all = spec_out_new(B, S), one = spec_out_new(1, S);
    run_or_fail(ctx, in.q, in.ids, in.p, B, S, V, &sp, &all);
    for (int r = 0; r < B; r++) {
        topk_speculative alone = {.seed = 99, .offset = offsets[r], .seeds = seeds + r};
        run_or_fail(ctx, in.q + r * S * V, in.ids + r * S, in.p + r * (S + 1) * V, 1, S, V, &alone, &one);
        spec_out row = {all.tokens + r * (S + 1), all.accepted + r, all.emitted + r};
        expect_same(&one, &row, 1, S, "alone vs in the batch");
    }
    sp.seeds = NULL;
    sp.offsets = NULL;
    spec_out other = spec_out_new(B, S);
    run_or_fail(ctx, in.q, in.ids, in.p, B, S, V, &sp, &other);
    sp.offset = 3;
    run_or_fail(ctx, in.q, in.ids, in.p, B, S, V, &sp, &all);
    cr_assert(memcmp(all.tokens, other.tokens, B * (S + 1) * 8) != 0, "offsets 2 and 3 drew the same");
    spec_out_free(&all);
    spec_out_free(&one);
    spec_out_free(&other);
    spec_inputs_free(&in);
    topk_ctx_free(ctx);
}

Test(speculative_batch_invariance, cpu) { batch_invariance(TOPK_BACKEND_CPU); }
Test(speculative_batch_invariance, offload) { batch_invariance(TOPK_BACKEND_OFFLOAD); }

/* ---- statistics ---- */

/* The chi-square value that a correct sampler exceeds with probability 1e-6 (Wilson-Hilferty, z = 4.753). */
static double chi_square_bar(int df)
{
    double a = 2.0 / (9.0 * df);
    return df * pow(1 - a + 4.753 * sqrt(a), 3);
}

enum { ROWS = 100000, SV = 12, SMAX = 3 };

typedef enum pair_kind { PAIR_GENERIC, PAIR_Q_ZERO, PAIR_EQUAL, PAIR_DISJOINT } pair_kind;
static const char *const pair_names[] = {"generic", "q = 0 where p > 0", "p = q", "disjoint supports"};

/* Position j's target and draft distributions for a kind of pair. */
static void pair_of(pair_kind kind, int j, float *p, float *q)
{
    rng g = {100 + j};
    random_distribution(&g, p, SV);
    random_distribution(&g, q, SV);
    double ps = 0, qs = 0;
    for (int i = 0; i < SV; i++) {
        if (kind == PAIR_EQUAL) q[i] = p[i];
        if (kind == PAIR_Q_ZERO && i % 3 == 0) q[i] = 0, p[i] += 0.05f;
        if (kind == PAIR_DISJOINT) (i < SV / 2 ? q : p)[i] = 0, (i < SV / 2 ? p : q)[i] += 0.01f;
        ps += p[i], qs += q[i];
    }
    for (int i = 0; i < SV; i++) p[i] = (float)(p[i] / ps), q[i] = (float)(q[i] / qs);
}

/* ROWS rows with the same distributions and drafts drawn from q: at every position j, the token of the
 * rows that got to j (emitted >= j) is distributed as p_j; the independent acceptance count averages
 * sum_j sum_x min(p_j, q_j)(x). */
static void statistics_of(topk_backend backend, pair_kind kind, int S)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    float p[SMAX + 1][SV], q[SMAX + 1][SV]; /* q[S] is not used */
    for (int j = 0; j <= S; j++) pair_of(kind, j, p[j], q[j]);
    float *qs = malloc((size_t)ROWS * S * SV * 4), *ps = malloc((size_t)ROWS * (S + 1) * SV * 4);
    int64_t *ids = malloc((size_t)ROWS * S * 8);
    rng g = {2024 + kind * 10 + S};
    for (int64_t r = 0; r < ROWS; r++) {
        for (int j = 0; j <= S; j++) memcpy(ps + (r * (S + 1) + j) * SV, p[j], sizeof p[j]);
        for (int j = 0; j < S; j++) {
            memcpy(qs + (r * S + j) * SV, q[j], sizeof q[j]);
            ids[r * S + j] = draw_from(&g, q[j], SV);
        }
    }
    spec_out o = spec_out_new(ROWS, S);
    topk_speculative sp = {.seed = 20240601 + kind, .offset = S};
    run_or_fail(ctx, qs, ids, ps, ROWS, S, SV, &sp, &o);
    double alpha_sum = 0, variance = 0, accepted = 0;
    for (int j = 0; j < S; j++) {
        double a = 0;
        for (int i = 0; i < SV; i++) a += fmin(p[j][i], q[j][i]);
        alpha_sum += a, variance += a * (1 - a);
    }
    for (int64_t r = 0; r < ROWS; r++) accepted += o.accepted[r];
    /* five standard deviations, and 1e-4 a row for the inputs' float rounding (p = q sums to 1 - 1e-7) */
    double bar = 5 * sqrt(variance * ROWS) + 1e-4 * ROWS;
    cr_assert(fabs(accepted - alpha_sum * ROWS) < bar, "%s S=%d %s: accepted %.5f a row, want %.5f (+- %.5f)",
              pair_names[kind], S, backend_label(backend), accepted / ROWS, alpha_sum, bar / ROWS);
    for (int j = 0; j <= S; j++) {
        int64_t count[SV] = {0}, reached = 0;
        for (int64_t r = 0; r < ROWS; r++)
            if (o.emitted[r] >= j) count[o.tokens[r * (S + 1) + j]]++, reached++;
        if (reached < 1000) continue;
        double want_total = 0, chi = 0;
        int df = -1;
        for (int i = 0; i < SV; i++) want_total += p[j][i];
        for (int i = 0; i < SV; i++) {
            double e = p[j][i] / want_total * reached;
            if (e == 0) {
                cr_assert(count[i] == 0, "%s S=%d position %d: token %d has p = 0 and was emitted %lld times",
                          pair_names[kind], S, j, i, (long long)count[i]);
                continue;
            }
            chi += (count[i] - e) * (count[i] - e) / e;
            df++;
        }
        cr_assert(chi < chi_square_bar(df), "%s S=%d %s position %d: chi-square %.2f with %d df (bar %.2f), %lld rows",
                  pair_names[kind], S, backend_label(backend), j, chi, df, chi_square_bar(df), (long long)reached);
    }
    spec_out_free(&o);
    free(qs);
    free(ps);
    free(ids);
    topk_ctx_free(ctx);
}

static void statistics(topk_backend backend)
{
    for (int kind = 0; kind < 4; kind++)
        for (int S = 1; S <= SMAX; S++) statistics_of(backend, (pair_kind)kind, S);
}

Test(speculative_stats, cpu, .timeout = 120) { statistics(TOPK_BACKEND_CPU); }
Test(speculative_stats, offload, .timeout = 300) { statistics(TOPK_BACKEND_OFFLOAD); }

/* ---- edges ---- */

static void edges(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    enum { S = 2, V = 4 };
    /* position 0: d = 1 with q = 0, p > 0 (always accepted); position 1: d = 2 with p = 0 (always rejected):
     * the correction comes from max(0, p - q), which holds only token 3. */
    float q[S * V] = {0.5f, 0.0f, 0.5f, 0.0f, /**/ 0.25f, 0.25f, 0.5f, NAN};
    float p[(S + 1) * V] = {0.5f, 0.5f, 0.0f, 0.0f, /**/ 0.25f, 0.25f, -1.0f, 0.5f, /**/ 1, 0, 0, 0};
    int64_t ids[S] = {1, 2};
    for (uint64_t seed = 0; seed < 200; seed++) {
        int64_t tokens[S + 1], accepted, emitted;
        spec_out o = {tokens, &accepted, &emitted};
        topk_speculative sp = {.seed = seed};
        run_or_fail(ctx, q, ids, p, 1, S, V, &sp, &o);
        cr_assert(tokens[0] == 1 && tokens[1] == 3 && tokens[2] == -1 && accepted == 1 && emitted == 1,
                  "seed %llu: %lld %lld %lld, accepted %lld, emitted %lld", (unsigned long long)seed,
                  (long long)tokens[0], (long long)tokens[1], (long long)tokens[2], (long long)accepted,
                  (long long)emitted);
        /* every draft accepted where p = q: the bonus from p_2, which is all on token 0; NULL counts */
        float same[S * V] = {0.25f, 0.25f, 0.5f, 0.0f, 0.25f, 0.25f, 0.5f, 0.0f};
        float target[(S + 1) * V] = {0.25f, 0.25f, 0.5f, 0.0f, 0.25f, 0.25f, 0.5f, 0.0f, 1, 0, 0, 0};
        int64_t drafts[S] = {2, 0};
        cr_assert(topk_chain_speculative_sample(ctx, same, drafts, target, 1, S, V, &sp, 0, tokens, NULL, NULL) ==
                  TOPK_OK);
        cr_assert(tokens[0] == 2 && tokens[1] == 0 && tokens[2] == 0);
        /* p = q = 0 at the draft: rejected, and with no residual the token comes from p */
        int64_t nothing[S] = {3, 3};
        run_or_fail(ctx, same, nothing, target, 1, S, V, &sp, &o);
        cr_assert(emitted == 0 && accepted == 0 && tokens[0] != 3 && tokens[1] == -1 && tokens[2] == -1);
    }
    topk_ctx_free(ctx);
}

Test(speculative_edges, cpu) { edges(TOPK_BACKEND_CPU); }
Test(speculative_edges, offload) { edges(TOPK_BACKEND_OFFLOAD); }

/* ---- errors ---- */

static void errors(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    float q[2 * 4] = {0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f}, p[3 * 4] = {0};
    int64_t ids[2] = {0, 1}, bad_ids[2] = {0, 4}, negative_ids[2] = {-1, 0};
    int64_t tokens[3] = {-7, -7, -7}, accepted = -7, emitted = -7;
    topk_speculative sp = {0};
#define SPEC(c, qq, i, pp, B, S, V, s, f, t) topk_chain_speculative_sample(c, qq, i, pp, B, S, V, s, f, t, &accepted, &emitted)
    cr_assert(SPEC(NULL, q, ids, p, 1, 2, 4, &sp, 0, tokens) == TOPK_ERR_NULL_POINTER);
    cr_assert(SPEC(ctx, NULL, ids, p, 1, 2, 4, &sp, 0, tokens) == TOPK_ERR_NULL_POINTER);
    cr_assert(SPEC(ctx, q, NULL, p, 1, 2, 4, &sp, 0, tokens) == TOPK_ERR_NULL_POINTER);
    cr_assert(SPEC(ctx, q, ids, NULL, 1, 2, 4, &sp, 0, tokens) == TOPK_ERR_NULL_POINTER);
    cr_assert(SPEC(ctx, q, ids, p, 1, 2, 4, NULL, 0, tokens) == TOPK_ERR_NULL_POINTER);
    cr_assert(SPEC(ctx, q, ids, p, 1, 2, 4, &sp, 0, NULL) == TOPK_ERR_NULL_POINTER);
    cr_assert(SPEC(ctx, q, ids, p, 0, 2, 4, &sp, 0, tokens) == TOPK_ERR_BAD_SHAPE);
    cr_assert(SPEC(ctx, q, ids, p, 1, 0, 4, &sp, 0, tokens) == TOPK_ERR_BAD_SHAPE);
    cr_assert(SPEC(ctx, q, ids, p, 1, 2, 0, &sp, 0, tokens) == TOPK_ERR_BAD_SHAPE);
    cr_assert(SPEC(ctx, q, ids, p, 1, 2, (int64_t)1 << 32, &sp, 0, tokens) == TOPK_ERR_BAD_SHAPE);
    cr_assert(SPEC(ctx, q, ids, p, (int64_t)1 << 32, 2, 4, &sp, 0, tokens) == TOPK_ERR_BAD_SHAPE);
    cr_assert(SPEC(ctx, q, ids, p, (int64_t)1 << 30, (int64_t)1 << 30, 1 << 30, &sp, 0, tokens) == TOPK_ERR_BAD_SHAPE);
    cr_assert(SPEC(ctx, q, ids, p, 1, 2, 4, &sp, 4, tokens) == TOPK_ERR_BAD_PARAM);
    cr_assert(SPEC(ctx, q, bad_ids, p, 1, 2, 4, &sp, 0, tokens) == TOPK_ERR_BAD_SAMPLING);
    cr_assert(SPEC(ctx, q, negative_ids, p, 1, 2, 4, &sp, 0, tokens) == TOPK_ERR_BAD_SAMPLING);
    if (backend != TOPK_BACKEND_OFFLOAD)
        cr_assert(SPEC(ctx, q, ids, p, 1, 2, 4, &sp, TOPK_DEVICE_POINTERS, tokens) == TOPK_ERR_BAD_MEMORY);
#undef SPEC
    cr_assert(tokens[0] == -7 && tokens[1] == -7 && tokens[2] == -7 && accepted == -7 && emitted == -7,
              "an error wrote its outputs");
    topk_ctx_free(ctx);
}

Test(speculative_errors, cpu) { errors(TOPK_BACKEND_CPU); }
Test(speculative_errors, offload) { errors(TOPK_BACKEND_OFFLOAD); }
