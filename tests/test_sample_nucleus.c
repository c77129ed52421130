/*
 * Nucleus lists: topk_sample's fast path for rows with top-p or min-p and no top-k filter
 * (sample_team_nucleus, src/common/sample_team.h). The big idea of the tests: the fast path claims to
 * compute exactly the whole-row function, so the same call on a context with TOPK_PARAM_SAMPLE_LIST = 1
 * (the whole-row way for every such row, the old path) is the oracle, bit for bit: tokens, probabilities
 * and logprobs, on the cpu backend and on the offload backend, and the two backends against each other.
 *
 * The data are made so that both of the fast path's outcomes happen: rows whose kept set lies inside the
 * list (peaked logits, small p, a large min_p) and rows that fall back (flat logits, p near 1, lists of 2
 * and 16), plus ties, NaN, +inf and -inf rows. A brute-force count over each row's sorted weights says
 * which outcome a row has, and the test asserts that each occurs many times, so it cannot pass vacuously.
 * The min-p rule rests on a bound on how far sample_exp is from monotone: sample_nucleus.exp_bound checks
 * it over every float.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen.h"
#include "sample_team.h"

/* No Criterion .timeout on these long tests (ctest's TIMEOUT bounds them): with two of them running at
 * once, Criterion 2.4's runner leaked 48 bytes of its own under LeakSanitizer, and ci/sanitize fails on
 * any report. */

/* sample_min_p_cuts_below assumes sample_exp(z') <= sample_exp(z) * (1 + 2^-23) for all z' <= z <= 0.
 * Every float from -inf up to -0.0, in order, against the running maximum. */
Test(sample_nucleus, exp_bound)
{
    float most = 0.0f;
    long over = 0;
    uint32_t first = 0;
    for (uint32_t u = 0xFF800000u;; u--) {
        float e = sample_exp(sample_bits_to_f32(u));
        if ((double)most > (double)e * (1.0 + 0x1p-23) && !over++) first = u;
        if (e > most) most = e;
        if (u == 0x80000000u) break;
    }
    cr_assert(over == 0, "sample_exp rises above its bound %ld times, first at z bits %08x", over, first);
    cr_assert(sample_exp(0.0f) >= most);
}

/* The lists the tests try: the backends' defaults (0) and short ones, which make fallbacks common. */
static const int64_t lists[] = {0, 2, 16};
enum { LISTS = sizeof lists / sizeof lists[0] };

typedef struct nucleus_params {
    float temperature, top_p, min_p;
} nucleus_params;

static const nucleus_params param_sets[] = {
    {0.7f, 0.9f, 0.0f}, {1.0f, 0.5f, 0.0f}, {0.7f, 1.0f, 0.1f},  {1.3f, 0.95f, 0.05f},
    {0.5f, 0.3f, 0.3f}, {1.0f, 0.999f, 0.0f}, {0.7f, 1.0f, 0.9f}, {2.0f, 0.05f, 0.0f},
};
enum { PARAM_SETS = sizeof param_sets / sizeof param_sets[0] };

/* Row kinds: normal-ish at several scales, peaked like a language model's, ties, and specials. */
enum row_kind { ROW_NORMAL, ROW_PEAKED, ROW_TIES, ROW_NAN, ROW_PLUS_INF, ROW_ALL_MINUS_INF, ROW_SOME_MINUS_INF,
                ROW_FLAT, ROW_KINDS };

static void fill_row(topk_dtype dtype, char *row, int64_t vocab, int kind, rng *r)
{
    static const float scales[] = {0.3f, 1.0f, 3.0f, 8.0f, 20.0f};
    float scale = scales[rng_below(r, 5)];
    for (int64_t i = 0; i < vocab; i++) {
        float v = (float)rng_normalish(r) * scale;
        if (kind == ROW_TIES) v = (float)rng_below(r, 3) * scale;
        if (kind == ROW_FLAT) v = (float)rng_normalish(r) * 0.01f;
        store_bits(dtype, row, i, encode_f32(dtype, v));
        if (kind == ROW_ALL_MINUS_INF || (kind == ROW_SOME_MINUS_INF && rng_below(r, 2)))
            store_bits(dtype, row, i, inf_bits(dtype, true));
    }
    int64_t specials = 1 + (int64_t)rng_below(r, 3);
    for (int64_t j = 0; j < specials; j++) {
        int64_t at = (int64_t)rng_below(r, (uint64_t)vocab);
        if (kind == ROW_PEAKED) store_bits(dtype, row, at, encode_f32(dtype, 12.0f + (float)j));
        if (kind == ROW_NAN) store_bits(dtype, row, at, nan_bits(dtype, j & 1, 7));
        if (kind == ROW_PLUS_INF) store_bits(dtype, row, at, inf_bits(dtype, false));
    }
}

typedef struct weighed {
    uint64_t c, w;
    float wf;
} weighed;

static int by_composite_desc(const void *a, const void *b)
{
    uint64_t x = ((const weighed *)a)->c, y = ((const weighed *)b)->c;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Brute force over the sorted row: whether the row's kept set lies inside its best n, the way the fast
 * path decides it (only to count the two outcomes; the assertions compare draws). */
static bool kept_inside(topk_dtype dtype, const char *row, int64_t vocab, nucleus_params p, int64_t n)
{
    weighed *e = malloc((size_t)vocab * sizeof *e);
    uint64_t best = 0;
    bool nan = false;
    for (int64_t i = 0; i < vocab; i++) {
        uint32_t bits = load_bits(dtype, row, i);
        nan = nan || sample_bits_are_nan(dtype, bits);
        e[i].c = topk_composite(sample_key(dtype, bits), i);
        best = e[i].c > best ? e[i].c : best;
    }
    float max = sample_value(dtype, load_bits(dtype, row, topk_composite_column(best)));
    bool inside = !nan;
    if (inside && max != -__builtin_inff() && n < vocab) {
        sample_scale sc = sample_scale_make(max, p.temperature, vocab);
        uint64_t total = 0, mass = 0;
        for (int64_t i = 0; i < vocab; i++) {
            e[i].wf = sample_w(sc, sample_value(dtype, load_bits(dtype, row, i)));
            e[i].w = sample_fixed(sc, e[i].wf);
            total += e[i].w;
        }
        qsort(e, (size_t)vocab, sizeof *e, by_composite_desc);
        for (int64_t j = 0; j < n; j++) mass += e[j].w;
        inside = (p.top_p < 1.0f && sample_top_p_target(p.top_p, total) <= mass) ||
                 sample_min_p_cuts_below(e[n - 1].wf, p.min_p);
    }
    free(e);
    return inside;
}

static topk_ctx *open_with_list(topk_backend backend, int64_t list)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_SAMPLE_LIST, list) == TOPK_OK);
    return ctx;
}

typedef struct draws {
    int64_t *tokens, *top_tokens;
    float *probs, *raw, *processed, *top_logprobs;
} draws;

enum { TOP_N = 4 };

static draws draws_new(int64_t batch)
{
    return (draws){malloc(batch * 8), malloc(batch * TOP_N * 8), malloc(batch * 4), malloc(batch * 4),
                   malloc(batch * 4), malloc(batch * TOP_N * 4)};
}

static void draws_free(draws *d)
{
    free(d->tokens);
    free(d->top_tokens);
    free(d->probs);
    free(d->raw);
    free(d->processed);
    free(d->top_logprobs);
}

static void draw(topk_ctx *ctx, const void *m, topk_dtype dtype, int64_t batch, int64_t vocab, const topk_sampling *s,
                 bool logprobs, draws *d)
{
    topk_logprobs lp = {.raw = d->raw, .processed = d->processed, .top_n = TOP_N, .top_tokens = d->top_tokens,
                        .top_logprobs = d->top_logprobs};
    topk_status st = topk_sample_logprobs(ctx, m, dtype, batch, vocab, vocab, s, 0, d->tokens, d->probs,
                                          logprobs ? &lp : NULL);
    cr_assert(st == TOPK_OK, "topk_sample: %s", topk_strerror(st));
}

static void expect_same(const draws *got, const draws *want, int64_t batch, int64_t vocab, bool logprobs,
                        const char *what)
{
    for (int64_t r = 0; r < batch; r++)
        cr_assert(got->tokens[r] == want->tokens[r] && memcmp(&got->probs[r], &want->probs[r], 4) == 0,
                  "%s row %lld: token %lld p %.9g, whole-row way %lld p %.9g", what, (long long)r,
                  (long long)got->tokens[r], got->probs[r], (long long)want->tokens[r], want->probs[r]);
    if (!logprobs) return;
    int64_t top = TOP_N < vocab ? TOP_N : vocab;
    cr_assert(memcmp(got->raw, want->raw, batch * 4) == 0 && memcmp(got->processed, want->processed, batch * 4) == 0,
              "%s: logprobs differ", what);
    for (int64_t r = 0; r < batch; r++)
        cr_assert(memcmp(got->top_tokens + r * TOP_N, want->top_tokens + r * TOP_N, top * 8) == 0 &&
                      memcmp(got->top_logprobs + r * TOP_N, want->top_logprobs + r * TOP_N, top * 4) == 0,
                  "%s row %lld: top logprobs differ", what, (long long)r);
}

/* Every shape x dtype x parameter set, the call on nucleus lists of each length against the whole-row way
 * on the same backend and against the cpu backend's whole-row way. */
static void nucleus_matches_whole_row(topk_backend backend)
{
    topk_ctx *whole = open_with_list(backend, 1), *cpu_whole = open_with_list(TOPK_BACKEND_CPU, 1);
    topk_ctx *fast[LISTS];
    for (int l = 0; l < LISTS; l++) fast[l] = open_with_list(backend, lists[l]);
    static const int64_t vocabs[] = {1, 2, 3, 17, 129, 1000, 4097, 32000, 200000};
    int64_t inside[LISTS] = {0}, outside[LISTS] = {0}, rows = 0;
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++)
        for (int d = 0; d < 3; d++) {
            topk_dtype dtype = all_dtypes[d];
            int64_t vocab = vocabs[v], batch = vocab >= 32000 ? (vocab > 100000 ? 1 : 3) : vocab >= 1000 ? 16 : 64;
            int elem = dtype_bytes(dtype);
            rng r = {(uint64_t)vocab * 1000003u + (uint64_t)d};
            char *m = malloc((size_t)(batch * vocab * elem));
            for (int64_t b = 0; b < batch; b++)
                fill_row(dtype, m + b * vocab * elem, vocab, (int)((b + v) % ROW_KINDS), &r);
            draws want = draws_new(batch), cpu_want = draws_new(batch), got = draws_new(batch);
            float *ts = malloc(batch * 4), *ps = malloc(batch * 4), *mps = malloc(batch * 4);
            int64_t *ks = malloc(batch * 8);
            for (int set = 0; set <= PARAM_SETS; set++) {
                topk_sampling s = topk_sampling_default();
                s.seed = rng_next(&r);
                s.offset = (uint64_t)set;
                if (set < PARAM_SETS) {
                    s.temperature = param_sets[set].temperature;
                    s.top_p = param_sets[set].top_p;
                    s.min_p = param_sets[set].min_p;
                    s.top_k = set % 2 ? vocab : 0; /* top_k >= vocab is no filter either */
                } else { /* every row its own, some with a top-k list, so that the call also selects for those */
                    for (int64_t b = 0; b < batch; b++) {
                        nucleus_params p = param_sets[rng_below(&r, PARAM_SETS)];
                        ts[b] = p.temperature;
                        ps[b] = p.top_p;
                        mps[b] = p.min_p;
                        ks[b] = rng_below(&r, 4) == 0 ? (vocab < 50 ? vocab : 50) : 0;
                    }
                    s.temperatures = ts;
                    s.top_ps = ps;
                    s.min_ps = mps;
                    s.top_ks = ks;
                }
                bool logprobs = set % 3 == 0;
                draw(whole, m, dtype, batch, vocab, &s, logprobs, &want);
                if (backend != TOPK_BACKEND_CPU) {
                    draw(cpu_whole, m, dtype, batch, vocab, &s, logprobs, &cpu_want);
                    expect_same(&want, &cpu_want, batch, vocab, logprobs, "whole-row way, offload against cpu");
                }
                for (int l = 0; l < LISTS; l++) {
                    char what[200];
                    snprintf(what, sizeof what, "%s list %lld %s B=%lld V=%lld set %d seed %llu", backend_label(backend),
                             (long long)lists[l], dtype_name(dtype), (long long)batch, (long long)vocab, set,
                             (unsigned long long)s.seed);
                    draw(fast[l], m, dtype, batch, vocab, &s, logprobs, &got);
                    expect_same(&got, &want, batch, vocab, logprobs, what);
                    if (set == PARAM_SETS) continue;
                    int64_t n = lists[l] ? lists[l] : backend == TOPK_BACKEND_CPU ? SAMPLE_NUCLEUS_CPU : SAMPLE_NUCLEUS_GPU;
                    for (int64_t b = 0; b < batch; b++) {
                        bool in = kept_inside(dtype, m + b * vocab * elem, vocab, param_sets[set], n < vocab ? n : vocab);
                        inside[l] += in;
                        outside[l] += !in;
                    }
                }
                rows += batch;
            }
            draws_free(&want);
            draws_free(&cpu_want);
            draws_free(&got);
            free(ts);
            free(ps);
            free(mps);
            free(ks);
            free(m);
        }
    for (int l = 0; l < LISTS; l++) {
        cr_log_info("%s list %lld: %lld rows inside the list, %lld fell back", backend_label(backend),
                    (long long)lists[l], (long long)inside[l], (long long)outside[l]);
        cr_assert(inside[l] >= 100 && outside[l] >= 100, "list %lld: %lld rows inside, %lld fell back: both must be common",
                  (long long)lists[l], (long long)inside[l], (long long)outside[l]);
        topk_ctx_free(fast[l]);
    }
    cr_log_info("%lld rows in all", (long long)rows);
    topk_ctx_free(whole);
    topk_ctx_free(cpu_whole);
}

Test(sample_nucleus, cpu) { nucleus_matches_whole_row(TOPK_BACKEND_CPU); }
Test(sample_nucleus, offload) { nucleus_matches_whole_row(TOPK_BACKEND_OFFLOAD); }

/* The knob: TOPK_SAMPLE_LIST reads into TOPK_PARAM_SAMPLE_LIST; 0 and 1..1024 are its values. */
Test(sample_nucleus, knob)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_CPU);
    int64_t value = -1;
    cr_assert(topk_ctx_get_param(ctx, TOPK_PARAM_SAMPLE_LIST, &value) == TOPK_OK && value == 0);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_SAMPLE_LIST, 1025) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_SAMPLE_LIST, -1) == TOPK_ERR_BAD_PARAM);
    cr_assert(topk_ctx_set_param(ctx, TOPK_PARAM_SAMPLE_LIST, 1024) == TOPK_OK);
    cr_assert(topk_ctx_get_param(ctx, TOPK_PARAM_SAMPLE_LIST, &value) == TOPK_OK && value == 1024);
    topk_ctx_free(ctx);
}
