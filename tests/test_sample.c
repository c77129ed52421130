/*
 * Sampling: topk_sample and its helpers on the cpu and offload backends. The offload tests are the ones
 * named "offload" in each suite: run them alone with --filter, on the GPU or under TOPK_OFFLOAD_HOST=1.
 *
 *   - known answers: Philox-4x32-10 against Random123's published vectors (the library's and the
 *     tests' own), the library's exp against exp() in double;
 *   - parity: every backend against the tests' double-precision sampler (sample_ref.h) over seeds,
 *     shapes, dtypes, strides and per-row parameters, and the cpu and offload backends against each
 *     other bit for bit (tokens and probabilities);
 *   - statistics: chi-square of 200000 draws against the exact distribution, per filter and combined;
 *   - edges: greedy, ties, NaN, +inf and all -inf rows, filtered-out tokens never drawn;
 *   - helpers: softmax, top-k/top-p renormalisation, top-k masking, against double and across backends;
 *   - errors: every bad argument returns its status and writes nothing.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen.h"
#include "sample_math.h"
#include "sample_ref.h"

/* ---- known answers ---- */

typedef struct philox_vector {
    uint32_t ctr[4], key[2], out[4];
} philox_vector;

/* Random123's kat_vectors, philox4x32 with 10 rounds. */
static const philox_vector philox_vectors[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

Test(sample_known_answers, philox)
{
    for (size_t i = 0; i < sizeof philox_vectors / sizeof philox_vectors[0]; i++) {
        const philox_vector *v = &philox_vectors[i];
        uint32_t out[4];
        ref_philox(v->ctr, v->key, out);
        for (int w = 0; w < 4; w++)
            cr_assert(out[w] == v->out[w], "tests' philox, vector %zu word %d: %08x, want %08x", i, w, out[w], v->out[w]);
        uint64_t seed = (uint64_t)v->key[1] << 32 | v->key[0];
        uint64_t offset = (uint64_t)v->ctr[1] << 32 | v->ctr[0], row = (uint64_t)v->ctr[3] << 32 | v->ctr[2];
        uint64_t r = sample_philox(seed, offset, row);
        cr_assert(r == ((uint64_t)v->out[1] << 32 | v->out[0]), "library philox, vector %zu: %016llx", i,
                  (unsigned long long)r);
    }
}

/* The library's exp: within 2 ulp-ish (3e-7 relative) of exp() over [-86, 0], exactly 1 at 0, and
 * never decreasing on a dense sample. */
Test(sample_known_answers, exp)
{
    cr_assert(sample_exp(0.0f) == 1.0f);
    cr_assert(sample_exp(-__builtin_inff()) == 0.0f);
    cr_assert(sample_exp(-100.0f) == 0.0f);
    float previous = 0.0f;
    for (int i = 0; i <= 2000000; i++) {
        float z = -86.0f + 86.0f * (float)i / 2000000.0f;
        float got = sample_exp(z);
        double want = exp((double)z);
        cr_assert(fabs(got - want) <= 3e-7 * want, "exp(%.9g) = %.9g, want %.9g", z, got, want);
        cr_assert(got >= previous, "exp decreases at %.9g", z);
        previous = got;
    }
}

/* ---- running the sampler ---- */

static topk_sampling params_of(ref_params p, uint64_t seed, uint64_t offset)
{
    topk_sampling s = topk_sampling_default();
    s.temperature = (float)p.temperature;
    s.top_k = p.top_k;
    s.top_p = (float)p.top_p;
    s.min_p = (float)p.min_p;
    s.seed = seed;
    s.offset = offset;
    return s;
}

static void sample_or_fail(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                           int64_t stride, const topk_sampling *s, int64_t *tokens, float *probs)
{
    topk_status st = topk_sample(ctx, logits, dtype, batch, vocab, stride, s, 0, tokens, probs);
    cr_assert(st == TOPK_OK, "topk_sample(%s %s B=%lld V=%lld): %s", backend_label(topk_ctx_backend(ctx)),
              dtype_name(dtype), (long long)batch, (long long)vocab, topk_strerror(st));
}

/* ---- parity ---- */

static const ref_params param_sets[] = {
    {1.0, 1.0, 0.0, 0},  {0.7, 0.9, 0.0, 50}, {1.3, 0.8, 0.0, 0}, {1.0, 1.0, 0.1, 0},
    {0.5, 1.0, 0.05, 5}, {0.0, 1.0, 0.0, 0},  {1.0, 1.0, 0.0, 1}, {2.0, 0.5, 0.2, 2000},
    {0.9, 0.95, 0.0, 300}, /* a list longer than the GPU root's rank placement serves: it sorts */
};
enum { PARAM_SETS = sizeof param_sets / sizeof param_sets[0] };

/* Per-row parameters drawn from the sets above, as the API's per-row arrays. */
typedef struct per_row {
    float *t, *p, *m;
    int64_t *k;
} per_row;

static per_row per_row_params(int64_t batch, int64_t vocab, rng *r)
{
    per_row pr = {malloc(batch * 4), malloc(batch * 4), malloc(batch * 4), malloc(batch * 8)};
    for (int64_t i = 0; i < batch; i++) {
        ref_params p = param_sets[rng_below(r, PARAM_SETS)];
        pr.t[i] = (float)p.temperature;
        pr.p[i] = (float)p.top_p;
        pr.m[i] = (float)p.min_p;
        pr.k[i] = p.top_k > vocab ? vocab : p.top_k;
    }
    return pr;
}

static void per_row_free(per_row *pr)
{
    free(pr->t);
    free(pr->p);
    free(pr->m);
    free(pr->k);
}

/* One call on ctx, checked row by row against the reference; returns how many rows were compared. */
static int64_t check_against_reference(topk_ctx *ctx, const void *m, topk_dtype dtype, int64_t batch, int64_t vocab,
                                       int64_t stride, const topk_sampling *s, int64_t *tokens, float *probs,
                                       const char *what)
{
    sample_or_fail(ctx, m, dtype, batch, vocab, stride, s, tokens, probs);
    int64_t compared = 0;
    int elem = dtype_bytes(dtype);
    for (int64_t r = 0; r < batch; r++) {
        ref_params p = {s->temperatures ? s->temperatures[r] : s->temperature, s->top_ps ? s->top_ps[r] : s->top_p,
                        s->min_ps ? s->min_ps[r] : s->min_p, s->top_ks ? s->top_ks[r] : s->top_k};
        const char *row = (const char *)m + r * stride * elem;
        ref_pick want = ref_sample(dtype, row, vocab, p, s->seed, s->offset, (uint64_t)r);
        cr_assert(tokens[r] >= 0 && tokens[r] < vocab, "%s row %lld: token %lld out of range", what, (long long)r,
                  (long long)tokens[r]);
        if (want.ambiguous) continue;
        compared++;
        cr_assert(tokens[r] == want.token, "%s row %lld (T=%g k=%lld p=%g min_p=%g): token %lld, reference %lld", what,
                  (long long)r, p.temperature, (long long)p.top_k, p.top_p, p.min_p, (long long)tokens[r],
                  (long long)want.token);
        cr_assert(fabs(probs[r] - want.prob) <= 1e-4 * want.prob + 1e-6, "%s row %lld: prob %.9g, reference %.9g",
                  what, (long long)r, probs[r], want.prob);
    }
    return compared;
}

static void parity(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    topk_ctx *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    static const int64_t vocabs[] = {1, 2, 7, 33, 1000, 4097, 50304};
    static const int64_t batches[] = {1, 3, 8};
    int64_t compared = 0, rows = 0;
    for (int d = 0; d < 3; d++)
        for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++)
            for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
                topk_dtype dtype = all_dtypes[d];
                int64_t vocab = vocabs[v], batch = batches[b], stride = vocab + (b == 1 ? 3 : 0);
                if (vocab > 5000 && batch > 3) continue;
                uint64_t seed = (uint64_t)vocab * 7919u + (uint64_t)batch * 31u + (uint64_t)d;
                void *m = random_matrix(dtype, batch, vocab, stride, seed);
                rng r = {seed};
                int64_t *tokens = malloc(batch * 8), *cpu_tokens = malloc(batch * 8);
                float *probs = malloc(batch * 4), *cpu_probs = malloc(batch * 4);
                for (int set = 0; set <= PARAM_SETS; set++) {
                    topk_sampling s = params_of(param_sets[set % PARAM_SETS], rng_next(&r), rng_next(&r) >> (set * 7));
                    if (s.top_k > vocab) s.top_k = vocab;
                    per_row pr = {0};
                    if (set == PARAM_SETS) { /* the last round: every row its own filters */
                        pr = per_row_params(batch, vocab, &r);
                        s.temperatures = pr.t;
                        s.top_ps = pr.p;
                        s.min_ps = pr.m;
                        s.top_ks = pr.k;
                    }
                    char what[160];
                    snprintf(what, sizeof what, "%s %s B=%lld V=%lld stride=%lld set %d seed %llu",
                             backend_label(backend), dtype_name(dtype), (long long)batch, (long long)vocab,
                             (long long)stride, set, (unsigned long long)seed);
                    compared += check_against_reference(ctx, m, dtype, batch, vocab, stride, &s, tokens, probs, what);
                    rows += batch;
                    sample_or_fail(cpu, m, dtype, batch, vocab, stride, &s, cpu_tokens, cpu_probs);
                    cr_assert(memcmp(tokens, cpu_tokens, batch * 8) == 0 && memcmp(probs, cpu_probs, batch * 4) == 0,
                              "%s: not bit-identical to the cpu backend", what);
                    per_row_free(&pr);
                }
                free(tokens);
                free(cpu_tokens);
                free(probs);
                free(cpu_probs);
                free(m);
            }
    cr_assert(compared >= rows * 95 / 100, "only %lld of %lld rows were unambiguous", (long long)compared,
              (long long)rows);
    cr_log_info("%lld of %lld rows compared with the reference (the rest within %g of a boundary)",
                (long long)compared, (long long)rows, REF_TOLERANCE);
    topk_ctx_free(cpu);
    topk_ctx_free(ctx);
}

Test(sample_parity, cpu) { parity(TOPK_BACKEND_CPU); }
Test(sample_parity, offload) { parity(TOPK_BACKEND_OFFLOAD); }

/* One call on ctx and the same on the cpu backend: every row's token and probability bit for bit. */
static void expect_cpu_draws(topk_ctx *ctx, topk_ctx *cpu, const void *m, topk_dtype dtype, int64_t batch,
                             int64_t vocab, const topk_sampling *s, const char *what)
{
    int64_t *tokens = malloc(batch * 8), *want = malloc(batch * 8);
    float *probs = malloc(batch * 4), *want_probs = malloc(batch * 4);
    sample_or_fail(ctx, m, dtype, batch, vocab, vocab, s, tokens, probs);
    sample_or_fail(cpu, m, dtype, batch, vocab, vocab, s, want, want_probs);
    for (int64_t r = 0; r < batch; r++)
        cr_assert(tokens[r] == want[r] && memcmp(&probs[r], &want_probs[r], 4) == 0,
                  "%s %s %s B=%lld V=%lld seed %llu row %lld: token %lld (p %.9g), cpu %lld (p %.9g)",
                  backend_label(topk_ctx_backend(ctx)), what, dtype_name(dtype), (long long)batch, (long long)vocab,
                  (unsigned long long)s->seed, (long long)r, (long long)tokens[r], probs[r], (long long)want[r],
                  want_probs[r]);
    free(tokens);
    free(want);
    free(probs);
    free(want_probs);
}

/* Decode shapes at LLM vocabularies, offload against cpu bit for bit: the top-k list path of the GPU's
 * fused sampler with several teams a row and their merge tree, which the small vocabularies above
 * reach only in part. These shapes crashed the fused sampler on the H100 (issue 14: a list with holes
 * at the root); with the host fallback (CI) they run the same kernel code on the host. */
Test(sample_llm_shapes, offload)
{
    topk_ctx *gpu = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    topk_ctx *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    static const struct {
        int64_t batch, vocab;
        topk_dtype dtype;
        ref_params p;
    } shapes[] = {
        {1, 128256, TOPK_F32, {0.7, 0.9, 0.0, 50}},   {1, 128256, TOPK_BF16, {0.7, 0.9, 0.0, 50}},
        {32, 128256, TOPK_F32, {0.7, 0.9, 0.0, 50}},  {32, 128256, TOPK_BF16, {0.7, 0.9, 0.0, 50}},
        {8, 200019, TOPK_BF16, {0.8, 0.95, 0.05, 40}}, {4, 4096, TOPK_F32, {0.7, 0.9, 0.0, 50}},
        {3, 151936, TOPK_F16, {1.0, 1.0, 0.0, 300}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        void *m = random_matrix(shapes[i].dtype, shapes[i].batch, shapes[i].vocab, shapes[i].vocab, 1000 + i);
        for (uint64_t seed = 1; seed <= 3; seed++) {
            topk_sampling s = params_of(shapes[i].p, seed, 0);
            char what[32];
            snprintf(what, sizeof what, "k=%lld", (long long)s.top_k);
            expect_cpu_draws(gpu, cpu, m, shapes[i].dtype, shapes[i].batch, shapes[i].vocab, &s, what);
        }
        free(m);
    }
    topk_ctx_free(cpu);
    topk_ctx_free(gpu);
}

/* The largest team TOPK_TEAM_THREADS allows (1024) in a fused call whose root team also samples rows the
 * whole-row way (a row without a top-k list beside rows with one; a row whose list starts with a NaN):
 * that path's per-thread arrays hold SAMPLE_TEAM_MAX, so the fused sampler must not plan larger teams
 * (issue 15). Bit for bit against the cpu backend; on the host fallback teams have 1-2 threads. */
Test(sample_team_limit, offload)
{
    cr_assert(setenv("TOPK_TEAM_THREADS", "1024", 1) == 0);
    topk_ctx *gpu = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    topk_ctx *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    enum { BATCH = 4, VOCAB = 50304 };
    float *m = random_matrix(TOPK_F32, BATCH, VOCAB, VOCAB, 77);
    m[3 * VOCAB + 5] = NAN; /* row 3 ranks a NaN first: its list cannot serve sampling */
    float t[BATCH] = {0.8f, 0.8f, 1.0f, 0.7f}, p[BATCH] = {0.9f, 0.9f, 0.95f, 1.0f}, mp[BATCH] = {0, 0, 0.02f, 0};
    int64_t k[BATCH] = {50, 0, 0, 5};
    for (uint64_t seed = 1; seed <= 4; seed++) {
        topk_sampling s = topk_sampling_default();
        s.temperatures = t;
        s.top_ps = p;
        s.min_ps = mp;
        s.top_ks = k;
        s.seed = seed;
        expect_cpu_draws(gpu, cpu, m, TOPK_F32, BATCH, VOCAB, &s, "TOPK_TEAM_THREADS=1024");
    }
    free(m);
    topk_ctx_free(cpu);
    topk_ctx_free(gpu);
}

/* Per-row seeds (topk_sampling.seeds, .offsets): a request's draw depends on its logits, its parameters
 * and its own (seed, offset) alone. At row 173 of a batch of 256 among other requests, or alone in a
 * batch of 1 (with its parameters per row or as the call's scalars), it draws the same token with the
 * same probability; and offload equals cpu on the whole batch. Vocabularies: one team a row, and (50304)
 * the fused sampler's several teams a row on the offload backend. */
static void batch_invariance(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend), *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    enum { B = 256 };
    const int64_t vocabs[] = {4096, 50304}, probe_rows[] = {0, 1, 173, 255};
    for (int v = 0; v < 2; v++)
        for (int d = 0; d < 3; d++) {
            int64_t vocab = vocabs[v], elem = dtype_bytes(all_dtypes[d]);
            char *m = random_matrix(all_dtypes[d], B, vocab, vocab, 500 + v * 3 + d);
            rng r = {900 + v * 3 + d};
            per_row pr = per_row_params(B, vocab, &r);
            uint64_t seeds[B], offsets[B];
            for (int i = 0; i < B; i++) seeds[i] = rng_next(&r), offsets[i] = rng_below(&r, 1000);
            topk_sampling s = topk_sampling_default();
            s.temperatures = pr.t, s.top_ps = pr.p, s.min_ps = pr.m, s.top_ks = pr.k, s.seeds = seeds, s.offsets = offsets;
            int64_t tokens[B];
            float probs[B];
            sample_or_fail(ctx, m, all_dtypes[d], B, vocab, vocab, &s, tokens, probs);
            if (backend != TOPK_BACKEND_CPU) expect_cpu_draws(ctx, cpu, m, all_dtypes[d], B, vocab, &s, "per-row seeds");
            for (int i = 0; i < 4; i++) {
                int64_t row = probe_rows[i], token;
                float prob;
                topk_sampling alone = s; /* its parameters as arrays of one ... */
                alone.temperatures = pr.t + row, alone.top_ps = pr.p + row, alone.min_ps = pr.m + row;
                alone.top_ks = pr.k + row, alone.seeds = seeds + row, alone.offsets = offsets + row;
                sample_or_fail(ctx, m + row * vocab * elem, all_dtypes[d], 1, vocab, vocab, &alone, &token, &prob);
                cr_assert(token == tokens[row] && !memcmp(&prob, &probs[row], 4),
                          "%s %s V=%lld row %lld: alone it drew %lld (p %a), in the batch %lld (p %a)",
                          backend_label(backend), dtype_name(all_dtypes[d]), (long long)vocab, (long long)row,
                          (long long)token, prob, (long long)tokens[row], probs[row]);
                topk_sampling scalars = topk_sampling_default(); /* ... and as the call's scalars */
                scalars.temperature = pr.t[row], scalars.top_p = pr.p[row], scalars.min_p = pr.m[row];
                scalars.top_k = pr.k[row], scalars.seeds = seeds + row, scalars.offset = offsets[row];
                sample_or_fail(ctx, m + row * vocab * elem, all_dtypes[d], 1, vocab, vocab, &scalars, &token, &prob);
                cr_assert(token == tokens[row] && !memcmp(&prob, &probs[row], 4),
                          "%s %s V=%lld row %lld with scalar parameters: drew %lld, in the batch %lld",
                          backend_label(backend), dtype_name(all_dtypes[d]), (long long)vocab, (long long)row,
                          (long long)token, (long long)tokens[row]);
            }
            per_row_free(&pr);
            free(m);
        }
    topk_ctx_free(cpu);
    topk_ctx_free(ctx);
}

Test(sample_batch_invariance, cpu) { batch_invariance(TOPK_BACKEND_CPU); }
Test(sample_batch_invariance, offload) { batch_invariance(TOPK_BACKEND_OFFLOAD); }

/* Same seed and offset, any thread count: the same bits. Different offsets: different draws. */
Test(sample_parity, threads_and_offsets)
{
    topk_ctx *one = open_backend_or_skip(TOPK_BACKEND_CPU), *two = open_backend_or_skip(TOPK_BACKEND_CPU);
    topk_ctx_set_param(one, TOPK_PARAM_THREADS, 1);
    topk_ctx_set_param(two, TOPK_PARAM_THREADS, 2);
    int64_t batch = 16, vocab = 32000;
    void *m = random_matrix(TOPK_BF16, batch, vocab, vocab, 99);
    int64_t a[16], b[16], c[16];
    float pa[16], pb[16];
    topk_sampling s = params_of((ref_params){0.8, 0.95, 0.0, 0}, 5, 0);
    sample_or_fail(one, m, TOPK_BF16, batch, vocab, vocab, &s, a, pa);
    sample_or_fail(two, m, TOPK_BF16, batch, vocab, vocab, &s, b, pb);
    cr_assert(memcmp(a, b, sizeof a) == 0 && memcmp(pa, pb, sizeof pa) == 0, "1 and 2 threads differ");
    s.offset = 1;
    sample_or_fail(two, m, TOPK_BF16, batch, vocab, vocab, &s, c, NULL);
    cr_assert(memcmp(a, c, sizeof a) != 0, "offset 1 drew the same 16 tokens as offset 0");
    free(m);
    topk_ctx_free(one);
    topk_ctx_free(two);
}

/* ---- statistics ---- */

/* The chi-square value that a correct sampler exceeds with probability 1e-6 (Wilson-Hilferty, z = 4.753). */
static double chi_square_bar(int df)
{
    double a = 2.0 / (9.0 * df);
    return df * pow(1 - a + 4.753 * sqrt(a), 3);
}

enum { DRAWS = 200000, SMALL_VOCAB = 12 };
static const float small_logits[SMALL_VOCAB] = {2.0f, 1.5f, 1.2f, 1.0f, 0.6f, 0.5f, 0.0f, -0.3f, -1.0f, -1.5f, -2.5f, -4.0f};

/* 200000 rows, all the same, drawn in one call (each row has its own counter), against the exact
 * distribution: a chi-square test at p = 1e-6, and no draw of a token whose probability is 0. */
static void chi_square(topk_backend backend, topk_dtype dtype, ref_params p)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    int elem = dtype_bytes(dtype);
    char *m = malloc((size_t)DRAWS * SMALL_VOCAB * elem);
    for (int64_t r = 0; r < DRAWS; r++)
        for (int i = 0; i < SMALL_VOCAB; i++) store_bits(dtype, m, r * SMALL_VOCAB + i, encode_f32(dtype, small_logits[i]));
    double want[SMALL_VOCAB];
    cr_assert(ref_distribution(dtype, m, SMALL_VOCAB, p, want), "the test's own filters sit on a boundary");
    int64_t *tokens = malloc(DRAWS * 8);
    topk_sampling s = params_of(p, 20240601, 7);
    sample_or_fail(ctx, m, dtype, DRAWS, SMALL_VOCAB, SMALL_VOCAB, &s, tokens, NULL);
    int64_t count[SMALL_VOCAB] = {0};
    for (int64_t r = 0; r < DRAWS; r++) count[tokens[r]]++;
    double chi = 0;
    int df = -1;
    for (int i = 0; i < SMALL_VOCAB; i++) {
        if (want[i] == 0) {
            cr_assert(count[i] == 0, "T=%g k=%lld p=%g min_p=%g: filtered-out token %d drawn %lld times",
                      p.temperature, (long long)p.top_k, p.top_p, p.min_p, i, (long long)count[i]);
            continue;
        }
        double e = want[i] * DRAWS;
        chi += (count[i] - e) * (count[i] - e) / e;
        df++;
    }
    if (df > 0)
        cr_assert(chi < chi_square_bar(df), "T=%g k=%lld p=%g min_p=%g %s: chi-square %.2f with %d df, bar %.2f",
                  p.temperature, (long long)p.top_k, p.top_p, p.min_p, dtype_name(dtype), chi, df, chi_square_bar(df));
    free(tokens);
    free(m);
    topk_ctx_free(ctx);
}

static const ref_params stat_sets[] = {
    {1.0, 1.0, 0.0, 0},  {0.5, 1.0, 0.0, 0},  {2.0, 1.0, 0.0, 0},   {1.0, 1.0, 0.0, 3},
    {1.0, 0.7, 0.0, 0},  {1.0, 1.0, 0.15, 0}, {0.8, 0.8, 0.0, 5},   {0.8, 0.9, 0.1, 6},
    {1.5, 0.95, 0.02, 10}, {0.7, 0.9, 0.05, 0},
};

static void statistics(topk_backend backend)
{
    for (size_t i = 0; i < sizeof stat_sets / sizeof stat_sets[0]; i++) chi_square(backend, TOPK_F32, stat_sets[i]);
    chi_square(backend, TOPK_BF16, stat_sets[7]);
    chi_square(backend, TOPK_F16, stat_sets[9]);
}

Test(sample_stats, cpu, .timeout = 60) { statistics(TOPK_BACKEND_CPU); }
Test(sample_stats, offload, .timeout = 60) { statistics(TOPK_BACKEND_OFFLOAD); }

/* ---- edges ---- */

static void one_row(topk_ctx *ctx, const float *logits, int64_t vocab, ref_params p, uint64_t seed, int64_t *token,
                    float *prob)
{
    topk_sampling s = params_of(p, seed, 0);
    sample_or_fail(ctx, logits, TOPK_F32, 1, vocab, vocab, &s, token, prob);
}

static void edges(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    const float inf = INFINITY, nan = NAN;
    int64_t t;
    float pr;
    /* greedy: ties to the smaller index, +0 above -0, NaN ranks as -inf */
    float ties[] = {1, 3, 3, -2};
    float zeros[] = {-0.0f, 0.0f, -1};
    float nans[] = {nan, 1, nan, 2, nan};
    for (int greedy = 0; greedy < 2; greedy++) {
        ref_params p = greedy ? (ref_params){1, 1, 0, 1} : (ref_params){0, 1, 0, 0};
        one_row(ctx, ties, 4, p, 1, &t, &pr);
        cr_assert(t == 1 && pr == 1.0f, "greedy tie: %lld", (long long)t);
        one_row(ctx, zeros, 3, p, 1, &t, &pr);
        cr_assert(t == 1, "greedy: +0 must beat -0, got %lld", (long long)t);
        one_row(ctx, nans, 5, p, 1, &t, &pr);
        cr_assert(t == 3, "greedy with NaNs: %lld", (long long)t);
    }
    /* rows with nothing to draw: token 0 (the first element), probability 1 */
    float all_minus_inf[] = {-inf, -inf, -inf}, all_nan[] = {nan, nan}, mixed[] = {nan, -inf, nan};
    for (uint64_t seed = 0; seed < 20; seed++) {
        ref_params p = {1, seed % 2 ? 0.5 : 1.0, 0, seed % 3 == 0 ? 2 : 0};
        one_row(ctx, all_minus_inf, 3, p, seed, &t, &pr);
        cr_assert(t == 0 && pr == 1.0f, "all -inf: %lld %g", (long long)t, pr);
        one_row(ctx, all_nan, 2, p, seed, &t, &pr);
        cr_assert(t == 0 && pr == 1.0f, "all NaN: %lld %g", (long long)t, pr);
        one_row(ctx, mixed, 3, p, seed, &t, &pr);
        cr_assert(t == 0 && pr == 1.0f, "NaN and -inf: %lld %g", (long long)t, pr);
    }
    /* +inf tokens share the mass equally; NaN is never drawn */
    float infs[] = {5, inf, nan, 7, inf, -inf}, with_nan[] = {nan, 0, nan, 0.5f, nan};
    int hits[6] = {0};
    for (uint64_t seed = 0; seed < 400; seed++) {
        one_row(ctx, infs, 6, (ref_params){1, 1, 0, 0}, seed, &t, &pr);
        cr_assert((t == 1 || t == 4) && pr == 0.5f, "+inf row: %lld %g", (long long)t, pr);
        hits[t]++;
        one_row(ctx, with_nan, 5, (ref_params){3, 1, 0, 0}, seed, &t, &pr);
        cr_assert(t == 1 || t == 3, "NaN drawn: %lld", (long long)t);
        /* with a top-k list, which the library's order starts with the NaNs: sampled the whole-row way */
        one_row(ctx, with_nan, 5, (ref_params){3, 1, 0, 2}, seed, &t, &pr);
        cr_assert(t == 1 || t == 3, "NaN drawn with top_k 2: %lld", (long long)t);
    }
    cr_assert(hits[1] > 150 && hits[4] > 150, "+inf tokens drawn %d and %d times of 400", hits[1], hits[4]);
    /* top_k = vocab is the same as no top_k; a filtered-out token is never drawn */
    void *m = random_matrix(TOPK_F32, 64, 500, 500, 5);
    int64_t a[64], b[64];
    float pa[64], pb[64];
    topk_sampling s = params_of((ref_params){1, 1, 0, 0}, 3, 4);
    sample_or_fail(ctx, m, TOPK_F32, 64, 500, 500, &s, a, pa);
    s.top_k = 500;
    sample_or_fail(ctx, m, TOPK_F32, 64, 500, 500, &s, b, pb);
    cr_assert(memcmp(a, b, sizeof a) == 0 && memcmp(pa, pb, sizeof pa) == 0, "top_k = vocab differs from off");
    s.top_k = 2;
    for (uint64_t seed = 0; seed < 20; seed++) {
        s.seed = seed;
        sample_or_fail(ctx, m, TOPK_F32, 64, 500, 500, &s, a, NULL);
        for (int r = 0; r < 64; r++) {
            int64_t first = ref_argmax(TOPK_F32, (float *)m + r * 500, 500);
            float *row = (float *)m + r * 500;
            float saved = row[first];
            row[first] = -INFINITY;
            int64_t second = ref_argmax(TOPK_F32, row, 500);
            row[first] = saved;
            cr_assert(a[r] == first || a[r] == second, "top_k=2 drew %lld (top two %lld %lld)", (long long)a[r],
                      (long long)first, (long long)second);
        }
    }
    free(m);
    topk_ctx_free(ctx);
}

Test(sample_edges, cpu) { edges(TOPK_BACKEND_CPU); }
Test(sample_edges, offload) { edges(TOPK_BACKEND_OFFLOAD); }

/* ---- helpers ---- */

static void helpers(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend), *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    for (int d = 0; d < 3; d++) {
        topk_dtype dtype = all_dtypes[d];
        int64_t batch = 5, vocab = 3001, stride = 3005;
        void *m = random_matrix(dtype, batch, vocab, stride, 77 + d);
        float *probs = malloc(batch * vocab * 4), *again = malloc(batch * vocab * 4);
        float *renorm = malloc(batch * vocab * 4), *renorm_cpu = malloc(batch * vocab * 4);
        char *masked = malloc(batch * vocab * 4), *masked_cpu = malloc(batch * vocab * 4);
        float temps[5] = {1, 0.5f, 2, 0.7f, 1.1f};
        cr_assert(topk_softmax(ctx, m, dtype, batch, vocab, stride, 1, temps, 0, probs) == TOPK_OK);
        cr_assert(topk_softmax(cpu, m, dtype, batch, vocab, stride, 1, temps, 0, again) == TOPK_OK);
        cr_assert(memcmp(probs, again, batch * vocab * 4) == 0, "softmax differs from the cpu backend");
        for (int64_t r = 0; r < batch; r++) {
            ref_params p = {temps[r], 1, 0, 0};
            double *want = malloc(vocab * sizeof(double));
            ref_distribution(dtype, (char *)m + r * stride * dtype_bytes(dtype), vocab, p, want);
            for (int64_t i = 0; i < vocab; i++)
                cr_assert(fabs(probs[r * vocab + i] - want[i]) <= 1e-5 * want[i] + 1e-12, "%s softmax [%lld][%lld]: %g want %g",
                          dtype_name(dtype), (long long)r, (long long)i, probs[r * vocab + i], want[i]);
            free(want);
        }
        int64_t ks[5] = {1, 10, 0, 3001, 50};
        float ps[5] = {0.5f, 1, 0.9f, 0.1f, 0.99f};
        cr_assert(topk_top_k_renorm_probs(ctx, probs, batch, vocab, vocab, 0, ks, 0, renorm) == TOPK_OK);
        cr_assert(topk_top_k_renorm_probs(cpu, probs, batch, vocab, vocab, 0, ks, 0, renorm_cpu) == TOPK_OK);
        cr_assert(memcmp(renorm, renorm_cpu, batch * vocab * 4) == 0, "top-k renorm differs from the cpu backend");
        for (int64_t r = 0; r < batch; r++) {
            double sum = 0;
            int64_t kept = 0;
            for (int64_t i = 0; i < vocab; i++) {
                sum += renorm[r * vocab + i];
                kept += renorm[r * vocab + i] > 0;
            }
            int64_t k = ks[r] ? ks[r] : vocab;
            cr_assert(fabs(sum - 1) < 1e-5 && kept <= k, "top-k renorm row %lld: sum %g, %lld kept of k %lld", (long long)r,
                      sum, (long long)kept, (long long)k);
        }
        cr_assert(topk_top_p_renorm_probs(ctx, probs, batch, vocab, vocab, 1, ps, 0, renorm) == TOPK_OK);
        cr_assert(topk_top_p_renorm_probs(cpu, probs, batch, vocab, vocab, 1, ps, 0, renorm_cpu) == TOPK_OK);
        cr_assert(memcmp(renorm, renorm_cpu, batch * vocab * 4) == 0, "top-p renorm differs from the cpu backend");
        for (int64_t r = 0; r < batch; r++) {
            double kept_mass = 0, sum = 0;
            float smallest_kept = 2;
            for (int64_t i = 0; i < vocab; i++) {
                if (renorm[r * vocab + i] > 0) {
                    kept_mass += probs[r * vocab + i];
                    smallest_kept = fminf(smallest_kept, probs[r * vocab + i]);
                }
                sum += renorm[r * vocab + i];
            }
            cr_assert(fabs(sum - 1) < 1e-5 && kept_mass >= ps[r] - 1e-5 && kept_mass - smallest_kept < ps[r] + 1e-5,
                      "top-p renorm row %lld: kept mass %g for p %g (smallest kept %g)", (long long)r, kept_mass, ps[r],
                      smallest_kept);
        }
        cr_assert(topk_top_k_mask_logits(ctx, m, dtype, batch, vocab, stride, 0, ks, 0, masked) == TOPK_OK);
        cr_assert(topk_top_k_mask_logits(cpu, m, dtype, batch, vocab, stride, 0, ks, 0, masked_cpu) == TOPK_OK);
        cr_assert(memcmp(masked, masked_cpu, batch * vocab * dtype_bytes(dtype)) == 0, "mask differs from the cpu backend");
        for (int64_t r = 0; r < batch; r++) {
            int64_t k = ks[r] ? ks[r] : vocab, left = 0;
            const char *row = (const char *)m + r * stride * dtype_bytes(dtype);
            for (int64_t i = 0; i < vocab; i++) {
                uint32_t got = load_bits(dtype, masked + r * vocab * dtype_bytes(dtype), i), in = load_bits(dtype, row, i);
                left += got == in;
                cr_assert(got == in || got == inf_bits(dtype, true), "mask [%lld][%lld] is neither the input nor -inf",
                          (long long)r, (long long)i);
            }
            cr_assert(left >= k, "mask row %lld kept %lld of %lld", (long long)r, (long long)left, (long long)k);
        }
        free(probs);
        free(again);
        free(renorm);
        free(renorm_cpu);
        free(masked);
        free(masked_cpu);
        free(m);
    }
    topk_ctx_free(cpu);
    topk_ctx_free(ctx);
}

Test(sample_helpers, cpu) { helpers(TOPK_BACKEND_CPU); }
Test(sample_helpers, offload) { helpers(TOPK_BACKEND_OFFLOAD); }

/* ---- errors ---- */

static void errors(topk_backend backend)
{
    topk_ctx *ctx = open_backend_or_skip(backend);
    float logits[8] = {1, 2, 3, 4, 5, 6, 7, 8}, probs_out[16];
    int64_t tokens[2] = {-7, -7};
    float probs[2] = {-7, -7};
    topk_sampling good = topk_sampling_default();
    float bad_t[] = {-1, INFINITY, NAN}, bad_p[] = {0, -0.5f, 1.5f, NAN}, bad_m[] = {-0.1f, 1.1f, NAN};
    int64_t bad_k[] = {-1, 5};
    for (int i = 0; i < 3; i++) {
        topk_sampling s = good;
        s.temperature = bad_t[i];
        cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &s, 0, tokens, probs) == TOPK_ERR_BAD_SAMPLING);
        s = good;
        s.min_p = bad_m[i];
        cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &s, 0, tokens, probs) == TOPK_ERR_BAD_SAMPLING);
    }
    for (int i = 0; i < 4; i++) {
        topk_sampling s = good;
        s.top_p = bad_p[i];
        cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &s, 0, tokens, probs) == TOPK_ERR_BAD_SAMPLING);
    }
    for (int i = 0; i < 2; i++) {
        topk_sampling s = good;
        s.top_k = bad_k[i];
        cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &s, 0, tokens, probs) == TOPK_ERR_BAD_SAMPLING);
        int64_t ks[2] = {1, bad_k[i]};
        s = good;
        s.top_ks = ks;
        cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &s, 0, tokens, probs) == TOPK_ERR_BAD_SAMPLING);
    }
    float per_row_t[2] = {1, -1};
    topk_sampling s = good;
    s.temperatures = per_row_t;
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &s, 0, tokens, probs) == TOPK_ERR_BAD_SAMPLING);
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, NULL, 0, tokens, probs) == TOPK_ERR_NULL_POINTER);
    cr_assert(topk_sample(ctx, NULL, TOPK_F32, 2, 4, 4, &good, 0, tokens, probs) == TOPK_ERR_NULL_POINTER);
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &good, 0, NULL, probs) == TOPK_ERR_NULL_POINTER);
    cr_assert(topk_sample(NULL, logits, TOPK_F32, 2, 4, 4, &good, 0, tokens, probs) == TOPK_ERR_NULL_POINTER);
    cr_assert(topk_sample(ctx, logits, (topk_dtype)9, 2, 4, 4, &good, 0, tokens, probs) == TOPK_ERR_BAD_DTYPE);
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 0, 4, 4, &good, 0, tokens, probs) == TOPK_ERR_BAD_SHAPE);
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 3, &good, 0, tokens, probs) == TOPK_ERR_BAD_STRIDE);
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 1, (int64_t)1 << 32, (int64_t)1 << 32, &good, 0, tokens, probs) ==
              TOPK_ERR_BAD_SHAPE);
    cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &good, 8, tokens, probs) == TOPK_ERR_BAD_PARAM);
    if (backend != TOPK_BACKEND_OFFLOAD)
        cr_assert(topk_sample(ctx, logits, TOPK_F32, 2, 4, 4, &good, TOPK_DEVICE_POINTERS, tokens, probs) ==
                  TOPK_ERR_BAD_MEMORY);
    cr_assert(tokens[0] == -7 && tokens[1] == -7 && probs[0] == -7 && probs[1] == -7, "an error wrote its outputs");
    for (int i = 0; i < 16; i++) probs_out[i] = -7;
    cr_assert(topk_softmax(ctx, logits, TOPK_F32, 2, 4, 4, 0, NULL, 0, probs_out) == TOPK_ERR_BAD_SAMPLING);
    cr_assert(topk_top_k_renorm_probs(ctx, logits, 2, 4, 4, 5, NULL, 0, probs_out) == TOPK_ERR_BAD_SAMPLING);
    cr_assert(topk_top_p_renorm_probs(ctx, logits, 2, 4, 4, 0, NULL, 0, probs_out) == TOPK_ERR_BAD_SAMPLING);
    cr_assert(topk_top_k_mask_logits(ctx, logits, TOPK_F32, 2, 4, 4, -1, NULL, 0, probs_out) == TOPK_ERR_BAD_SAMPLING);
    cr_assert(topk_top_k_mask_logits(ctx, logits, TOPK_F32, 2, 4, 4, 1, NULL, 0, NULL) == TOPK_ERR_NULL_POINTER);
    for (int i = 0; i < 16; i++) cr_assert(probs_out[i] == -7, "a helper's error wrote its output");
    cr_assert(strcmp(topk_strerror(TOPK_ERR_BAD_SAMPLING), "unknown status") != 0);
    topk_ctx_free(ctx);
}

Test(sample_errors, cpu) { errors(TOPK_BACKEND_CPU); }
Test(sample_errors, offload) { errors(TOPK_BACKEND_OFFLOAD); }
