/*
 * topk_sample_logprobs on the cpu and offload backends (the offload tests are those named "offload": run
 * them alone with --filter, on the GPU or under TOPK_OFFLOAD_HOST=1).
 *
 *   - reference: raw and top logprobs against log_softmax in double written here (not the library's
 *     code), within the tolerance topk.h documents; top tokens exactly the reference's order; processed
 *     logprobs the log of the reported probability; tokens and probabilities bit for bit topk_sample's;
 *   - parity: offload equals cpu bit for bit in every output;
 *   - edges: NaN, +inf and all -inf rows, greedy rows, ties, top_n 0 and 20, vocab < top_n;
 *   - errors: top_n outside [0, 20] returns a status and writes nothing.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen.h"
#include "sample_ref.h"

/* topk.h's bound on raw logprobs: |got - exact| <= LP_TOLERANCE * (1 + |exact|). */
#define LP_TOLERANCE 2e-6

/* ---- the reference: log_softmax(logits / T) in double ---- */

/* An element as the sampler reads it: NaN is -inf. */
static double ref_logit(topk_dtype dtype, const void *row, int64_t i)
{
    double x = ref_decode(dtype, load_bits(dtype, row, i));
    return x != x ? -INFINITY : x;
}

/* Whether element a ranks above element b: by value (NaN as -inf), ties to the smaller index. */
static bool ref_above(topk_dtype dtype, const void *row, int64_t a, int64_t b)
{
    double x = ref_logit(dtype, row, a), y = ref_logit(dtype, row, b);
    if (x != y) return x > y;
    if (x == 0.0 && signbit(x) != signbit(y)) return !signbit(x); /* +0 above -0 */
    return a < b;
}

/* Every element's raw logprob at temperature t (> 0), into lp[0..vocab). */
static void ref_log_softmax(topk_dtype dtype, const void *row, int64_t vocab, double t, double *lp)
{
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; i++)
        if (ref_above(dtype, row, i, best)) best = i;
    double max = ref_logit(dtype, row, best);
    if (max == -INFINITY || max == INFINITY) { /* all mass on the best, or shared by the +inf tokens */
        double count = 0;
        for (int64_t i = 0; i < vocab; i++) count += ref_logit(dtype, row, i) == max;
        for (int64_t i = 0; i < vocab; i++)
            lp[i] = max == -INFINITY ? (i == best ? 0.0 : -INFINITY)
                                     : (ref_logit(dtype, row, i) == max ? -log(count) : -INFINITY);
        return;
    }
    double sum = 0;
    for (int64_t i = 0; i < vocab; i++) sum += exp((ref_logit(dtype, row, i) - max) / t);
    for (int64_t i = 0; i < vocab; i++) lp[i] = (ref_logit(dtype, row, i) - max) / t - log(sum);
}

static bool within(float got, double want)
{
    if (isinf(want) || isnan(want)) return got == want || (isnan(got) && isnan(want));
    return fabs((double)got - want) <= LP_TOLERANCE * (1.0 + fabs(want));
}

/* ---- running it ---- */

typedef struct outputs {
    int64_t *tokens, *top_tokens;
    float *probs, *raw, *processed, *top_logprobs;
} outputs;

/* Outputs for batch rows and top_n, filled with a sentinel byte. */
static outputs outputs_new(int64_t batch, int64_t top_n)
{
    size_t top = (size_t)(batch * (top_n ? top_n : 1));
    outputs o = {malloc(batch * 8), malloc(top * 8), malloc(batch * 4), malloc(batch * 4), malloc(batch * 4),
                 malloc(top * 4)};
    memset(o.tokens, 0x5A, batch * 8);
    memset(o.top_tokens, 0x5A, top * 8);
    memset(o.probs, 0x5A, batch * 4);
    memset(o.raw, 0x5A, batch * 4);
    memset(o.processed, 0x5A, batch * 4);
    memset(o.top_logprobs, 0x5A, top * 4);
    return o;
}

static void outputs_free(outputs *o)
{
    free(o->tokens);
    free(o->top_tokens);
    free(o->probs);
    free(o->raw);
    free(o->processed);
    free(o->top_logprobs);
}

static topk_status run_logprobs(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                                const topk_sampling *s, int64_t top_n, outputs *o)
{
    topk_logprobs lp = {o->raw, o->processed, top_n, o->top_tokens, o->top_logprobs};
    return topk_sample_logprobs(ctx, logits, dtype, batch, vocab, vocab, s, 0, o->tokens, o->probs, &lp);
}

static const topk_sampling *param_set(int i);

/* Checks one call's outputs against topk_sample's tokens and probabilities and the reference. */
static void check_against_reference(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch,
                                    int64_t vocab, const topk_sampling *s, int64_t top_n, const outputs *o,
                                    const char *what)
{
    int64_t *tokens = malloc(batch * 8);
    float *probs = malloc(batch * 4);
    double *lp = malloc(vocab * sizeof(double));
    cr_assert(topk_sample(ctx, logits, dtype, batch, vocab, vocab, s, 0, tokens, probs) == TOPK_OK);
    for (int64_t r = 0; r < batch; r++) {
        const char *row = (const char *)logits + r * vocab * dtype_bytes(dtype);
        cr_assert(o->tokens[r] == tokens[r], "%s row %lld: token %lld, topk_sample drew %lld", what, (long long)r,
                  (long long)o->tokens[r], (long long)tokens[r]);
        cr_assert(!memcmp(&o->probs[r], &probs[r], 4), "%s row %lld: probability differs from topk_sample's", what,
                  (long long)r);
        ref_log_softmax(dtype, row, vocab, s->temperature > 0.0f ? s->temperature : 1.0, lp);
        cr_assert(within(o->raw[r], lp[tokens[r]]), "%s row %lld: raw %.9g, want %.9g", what, (long long)r,
                  o->raw[r], lp[tokens[r]]);
        double processed = log((double)probs[r]);
        cr_assert(fabs(o->processed[r] - processed) <= 2e-7 * (1.0 + fabs(processed)),
                  "%s row %lld: processed %.9g, log(prob) %.9g", what, (long long)r, o->processed[r], processed);
        /* the top n: each the best of what the earlier ones left, in the reference's order */
        int64_t previous = -1;
        for (int64_t j = 0; j < top_n; j++) {
            int64_t got = o->top_tokens[r * top_n + j];
            float got_lp = o->top_logprobs[r * top_n + j];
            if (j >= vocab) {
                cr_assert(got == -1 && got_lp == -INFINITY, "%s row %lld: top %lld past vocab: %lld %g", what,
                          (long long)r, (long long)j, (long long)got, got_lp);
                continue;
            }
            int64_t want = -1;
            for (int64_t i = 0; i < vocab; i++)
                if ((previous < 0 || ref_above(dtype, row, previous, i)) && (want < 0 || ref_above(dtype, row, i, want)))
                    want = i;
            cr_assert(got == want, "%s row %lld: top %lld is %lld, want %lld", what, (long long)r, (long long)j,
                      (long long)got, (long long)want);
            cr_assert(within(got_lp, lp[want]), "%s row %lld: top %lld logprob %.9g, want %.9g", what, (long long)r,
                      (long long)j, got_lp, lp[want]);
            previous = want;
        }
    }
    free(tokens);
    free(probs);
    free(lp);
}

/* Logits of a normal-ish spread times `scale` (LLM logits span tens), every 4th row with a NaN, a +inf
 * or a run of -inf in it, rows 5 mod 8 entirely -inf and NaN. */
static void *logits_new(topk_dtype dtype, int64_t batch, int64_t vocab, double scale, uint64_t seed)
{
    rng r = {seed};
    void *m = malloc(batch * vocab * dtype_bytes(dtype));
    for (int64_t row = 0; row < batch; row++)
        for (int64_t c = 0; c < vocab; c++) {
            uint32_t bits = encode_f32(dtype, (float)(rng_normalish(&r) * scale));
            if (row % 8 == 5) bits = c % 3 ? inf_bits(dtype, true) : nan_bits(dtype, c & 1, 3);
            else if (row % 4 == 3 && rng_below(&r, 8) == 0)
                bits = rng_below(&r, 3) == 0 ? nan_bits(dtype, false, 1) : inf_bits(dtype, rng_below(&r, 4) != 0);
            store_bits(dtype, m, row * vocab + c, bits);
        }
    return m;
}

/* Parameter set i (0..5) for rows of `vocab`: top_k at most vocab. */
static topk_sampling params_for(int i, int64_t vocab)
{
    topk_sampling s = *param_set(i);
    if (s.top_k > vocab) s.top_k = vocab;
    return s;
}

static const topk_sampling *param_set(int i)
{
    static topk_sampling sets[6];
    for (int j = 0; j < 6; j++) sets[j] = topk_sampling_default();
    sets[1].temperature = 0.7f, sets[1].top_k = 50, sets[1].top_p = 0.9f;
    sets[2].temperature = 0.0f;                               /* greedy: raw under T = 1 */
    sets[3].temperature = 1.3f, sets[3].top_p = 0.8f, sets[3].min_p = 0.05f; /* whole-row */
    sets[4].temperature = 0.5f, sets[4].top_k = 5;            /* a list shorter than top_n 20 */
    sets[5].temperature = 2.0f, sets[5].top_k = 1;
    for (int j = 0; j < 6; j++) sets[j].seed = 1234 + j, sets[j].offset = (uint64_t)j * 7;
    return &sets[i];
}

static void reference(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    const topk_dtype dtypes[] = {TOPK_F32, TOPK_F16, TOPK_BF16};
    const int64_t vocabs[] = {1, 7, 50, 1000, 50304};
    const int64_t top_ns[] = {0, 1, 5, 20};
    const double scales[] = {1.0, 8.0};
    int cases = 0;
    for (int d = 0; d < 3; d++)
        for (int v = 0; v < 5; v++)
            for (int s = 0; s < 6; s++) {
                int64_t batch = vocabs[v] > 5000 ? 6 : 9, top_n = top_ns[(d + v + s) % 4];
                double scale = scales[(d + s) % 2];
                void *logits = logits_new(dtypes[d], batch, vocabs[v], scale, 17 + cases);
                outputs o = outputs_new(batch, top_n);
                topk_sampling params = params_for(s, vocabs[v]);
                cr_assert(run_logprobs(ctx, logits, dtypes[d], batch, vocabs[v], &params, top_n, &o) == TOPK_OK);
                char what[128];
                snprintf(what, sizeof what, "%s %s V=%lld params %d top_n %lld scale %g", backend_label(backend),
                         dtype_name(dtypes[d]), (long long)vocabs[v], s, (long long)top_n, scale);
                check_against_reference(ctx, logits, dtypes[d], batch, vocabs[v], &params, top_n, &o, what);
                outputs_free(&o);
                free(logits);
                cases++;
            }
    topk_ctx_free(ctx);
}

Test(logprobs_reference, cpu) { reference(TOPK_BACKEND_CPU); }
Test(logprobs_reference, offload) { reference(TOPK_BACKEND_OFFLOAD); }

/* Offload against cpu, every output bit for bit, over the shapes and parameter sets above and per-row
 * parameters (the fused sampler's list rows beside whole-row ones in one call). */
Test(logprobs_parity, offload)
{
    topk_ctx *gpu = open_backend_or_skip(TOPK_BACKEND_OFFLOAD), *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    const int64_t vocabs[] = {3, 257, 50304};
    for (int d = 0; d < 3; d++)
        for (int v = 0; v < 3; v++)
            for (int s = 0; s < 7; s++) {
                int64_t batch = 12, top_n = (int64_t[]){0, 3, 20}[(s + v) % 3];
                void *logits = logits_new((topk_dtype)d, batch, vocabs[v], 4.0, 99 + (uint64_t)(d * 100 + v * 10 + s));
                topk_sampling params = params_for(s % 6, vocabs[v]);
                float temperatures[12];
                int64_t top_ks[12];
                if (s == 6) { /* per row: list rows and whole-row rows in one call */
                    for (int r = 0; r < batch; r++) {
                        temperatures[r] = r % 3 == 0 ? 0.0f : 0.25f * (float)r;
                        int64_t k = r % 4 ? 2 : 40;
                        top_ks[r] = r % 2 || k >= vocabs[v] ? 0 : k;
                    }
                    params.temperatures = temperatures, params.top_ks = top_ks;
                }
                outputs a = outputs_new(batch, top_n), b = outputs_new(batch, top_n);
                cr_assert(run_logprobs(cpu, logits, (topk_dtype)d, batch, vocabs[v], &params, top_n, &a) == TOPK_OK);
                cr_assert(run_logprobs(gpu, logits, (topk_dtype)d, batch, vocabs[v], &params, top_n, &b) == TOPK_OK);
                size_t top = (size_t)(batch * (top_n ? top_n : 1));
                cr_assert(!memcmp(a.tokens, b.tokens, batch * 8) && !memcmp(a.probs, b.probs, batch * 4),
                          "%s V=%lld set %d: tokens or probabilities differ", dtype_name((topk_dtype)d),
                          (long long)vocabs[v], s);
                cr_assert(!memcmp(a.raw, b.raw, batch * 4) && !memcmp(a.processed, b.processed, batch * 4),
                          "%s V=%lld set %d: raw or processed logprobs differ", dtype_name((topk_dtype)d),
                          (long long)vocabs[v], s);
                cr_assert(!memcmp(a.top_tokens, b.top_tokens, top * 8) && !memcmp(a.top_logprobs, b.top_logprobs, top * 4),
                          "%s V=%lld set %d: top logprobs differ", dtype_name((topk_dtype)d), (long long)vocabs[v], s);
                outputs_free(&a);
                outputs_free(&b);
                free(logits);
            }
    topk_ctx_free(gpu);
    topk_ctx_free(cpu);
}

/* Known answers: ties (top tokens by index), top_n past vocab, +inf sharing, an all -inf row, greedy
 * rows, and top_n 0 leaving the top outputs alone. */
static void edges(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    enum { V = 7 };
    float rows[4][V] = {
        {1, 1, 1, 1, 1, 1, 1},                                                   /* ties */
        {0, INFINITY, 2, INFINITY, NAN, -INFINITY, 5},                           /* +inf twice */
        {-INFINITY, NAN, -INFINITY, -INFINITY, NAN, -INFINITY, -INFINITY},        /* nothing to draw */
        {3, NAN, 2, 3, -1, 0.5f, -INFINITY},                                     /* NaN and a tie at the top */
    };
    for (int greedy = 0; greedy < 2; greedy++) {
        topk_sampling s = topk_sampling_default();
        s.temperature = greedy ? 0.0f : 1.0f;
        outputs o = outputs_new(4, 20);
        cr_assert(run_logprobs(ctx, rows, TOPK_F32, 4, V, &s, 20, &o) == TOPK_OK);
        for (int j = 0; j < 20; j++) {
            cr_assert(o.top_tokens[j] == (j < V ? j : -1), "ties: top %d is %lld", j, (long long)o.top_tokens[j]);
            cr_assert(j < V ? within(o.top_logprobs[j], -log(7.0)) : o.top_logprobs[j] == -INFINITY);
        }
        const int64_t inf_order[] = {1, 3, 6, 2, 0, 4, 5}; /* NaN ranks as -inf: a tie with -inf, by index */
        for (int j = 0; j < V; j++) cr_assert(o.top_tokens[20 + j] == inf_order[j], "+inf row: top %d", j);
        cr_assert(within(o.top_logprobs[20], -log(2.0)) && within(o.top_logprobs[21], -log(2.0)));
        cr_assert(o.top_logprobs[22] == -INFINITY && within(o.raw[1], -log(2.0)));
        cr_assert(o.tokens[2] == 0 && o.raw[2] == 0.0f && o.processed[2] == 0.0f && o.top_tokens[40] == 0 &&
                  o.top_logprobs[40] == 0.0f && o.top_logprobs[41] == -INFINITY);
        cr_assert(o.top_tokens[60] == 0 && o.top_tokens[61] == 3 && o.top_tokens[62] == 2);
        cr_assert(o.top_tokens[65] == 1 && o.top_logprobs[65] == -INFINITY, "NaN's logprob is -inf");
        if (greedy)
            for (int r = 0; r < 4; r++) cr_assert(o.processed[r] == 0.0f && o.probs[r] == 1.0f);
        outputs_free(&o);
    }
    /* top_n 0 (and top_n with no top outputs): the top buffers are not written */
    topk_sampling s = topk_sampling_default();
    outputs o = outputs_new(4, 1);
    cr_assert(run_logprobs(ctx, rows, TOPK_F32, 4, V, &s, 0, &o) == TOPK_OK);
    for (int r = 0; r < 4; r++) cr_assert(o.top_tokens[r] == 0x5A5A5A5A5A5A5A5A, "top_n 0 wrote top_tokens");
    topk_logprobs only_raw = {o.raw, NULL, 5, NULL, NULL};
    cr_assert(topk_sample_logprobs(ctx, rows, TOPK_F32, 4, V, V, &s, 0, o.tokens, NULL, &only_raw) == TOPK_OK);
    outputs_free(&o);
    topk_ctx_free(ctx);
}

Test(logprobs_edges, cpu) { edges(TOPK_BACKEND_CPU); }
Test(logprobs_edges, offload) { edges(TOPK_BACKEND_OFFLOAD); }

/* top_n outside [0, TOPK_TOP_LOGPROBS_MAX]: TOPK_ERR_BAD_SAMPLING, and nothing written. */
static void errors(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    float row[30] = {0};
    topk_sampling s = topk_sampling_default();
    const int64_t bad[] = {TOPK_TOP_LOGPROBS_MAX + 1, -1, 1000};
    for (int i = 0; i < 3; i++) {
        outputs o = outputs_new(1, 21);
        cr_assert(run_logprobs(ctx, row, TOPK_F32, 1, 30, &s, bad[i], &o) == TOPK_ERR_BAD_SAMPLING, "top_n %lld",
                  (long long)bad[i]);
        const unsigned char *bytes[] = {(void *)o.tokens, (void *)o.probs, (void *)o.raw, (void *)o.processed,
                                        (void *)o.top_tokens, (void *)o.top_logprobs};
        for (int b = 0; b < 6; b++) cr_assert(bytes[b][0] == 0x5A, "top_n %lld wrote output %d", (long long)bad[i], b);
        outputs_free(&o);
    }
    topk_ctx_free(ctx);
}

Test(logprobs_errors, cpu) { errors(TOPK_BACKEND_CPU); }
Test(logprobs_errors, offload) { errors(TOPK_BACKEND_OFFLOAD); }
