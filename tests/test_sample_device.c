/*
 * Sampling with its per-row parameters in device memory (TOPK_DEVICE_POINTERS): temperatures, top_ks,
 * top_ps, min_ps, seeds and offsets read by the kernel alone, so that nothing is read by the host during
 * a call and a CUDA graph replays whatever they hold.
 *
 *   - the same call with every array in host memory on the cpu backend is the expected answer (the host
 *     path is held to the tests' double-precision sampler by test_sample.c), bit for bit, whatever
 *     max_top_k says (exact bound, below some rows' top_k, unknown);
 *   - a row whose device parameters are out of range gets token -1 and probability NaN (the helpers: a
 *     row of NaN), and the other rows are unchanged;
 *   - the helpers (softmax, renorms, mask) with device arrays equal their host-array calls;
 *   - what the host can still check (the scalars that serve rows, max_top_k) returns a status.
 *
 * Offload tests only: ctest runs them through the host fallback (TOPK_OFFLOAD_HOST=1), ci/gpu-check on
 * the GPU.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "device_mem.h"
#include "gen.h"

enum { B = 64 };

/* Per-row parameters, host copies. */
typedef struct params {
    float t[B], p[B], m[B];
    int64_t k[B];
    uint64_t seeds[B], offsets[B];
} params;

/* The same parameters in device memory. */
typedef struct device_params {
    float *t, *p, *m;
    int64_t *k;
    uint64_t *seeds, *offsets;
    int device;
} device_params;

/* Rows with every kind of filter: greedy, top-k lists short and long (above the GPU's list limit),
 * top-p and min-p alone, plain temperature. */
static params random_params(int64_t vocab, uint64_t seed)
{
    params ps;
    rng r = {seed};
    static const int64_t ks[] = {0, 1, 5, 50, 200, 1500, 0, 40};
    for (int i = 0; i < B; i++) {
        ps.t[i] = rng_below(&r, 6) == 0 ? 0.0f : 0.3f + 0.1f * (float)rng_below(&r, 15);
        ps.k[i] = ks[rng_below(&r, 8)];
        if (ps.k[i] > vocab) ps.k[i] = vocab;
        ps.p[i] = rng_below(&r, 3) == 0 ? 1.0f : 0.5f + 0.05f * (float)rng_below(&r, 10);
        ps.m[i] = rng_below(&r, 4) == 0 ? 0.05f * (float)rng_below(&r, 4) : 0.0f;
        ps.seeds[i] = rng_next(&r);
        ps.offsets[i] = rng_below(&r, 1000);
    }
    return ps;
}

static device_params to_device(const params *ps)
{
    int device = pointer_device();
    return (device_params){device_copy_in(ps->t, sizeof ps->t, device), device_copy_in(ps->p, sizeof ps->p, device),
                           device_copy_in(ps->m, sizeof ps->m, device), device_copy_in(ps->k, sizeof ps->k, device),
                           device_copy_in(ps->seeds, sizeof ps->seeds, device),
                           device_copy_in(ps->offsets, sizeof ps->offsets, device), device};
}

static void device_params_free(device_params *d)
{
    void *all[] = {d->t, d->p, d->m, d->k, d->seeds, d->offsets};
    for (int i = 0; i < 6; i++) device_free(all[i], d->device);
}

/* topk_sample on the offload backend with logits, tokens and probs in device memory. */
static void sample_on_device(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t vocab,
                             const topk_sampling *s, int64_t *tokens, float *probs)
{
    int device = pointer_device();
    size_t in_bytes = (size_t)(B * vocab * dtype_bytes(dtype));
    memset(tokens, 0xA5, B * 8);
    memset(probs, 0xA5, B * 4);
    void *in = device_copy_in(logits, in_bytes, device), *dt = device_copy_in(tokens, B * 8, device),
         *dp = device_copy_in(probs, B * 4, device);
    topk_status st = topk_sample(ctx, in, dtype, B, vocab, vocab, s, TOPK_DEVICE_POINTERS, dt, dp);
    cr_assert(st == TOPK_OK, "topk_sample with device parameters: %s", topk_strerror(st));
    device_free(in, device);
    device_copy_out(tokens, dt, B * 8, device);
    device_copy_out(probs, dp, B * 4, device);
}

/* The host-memory call on the cpu backend: the expected draws. */
static void sample_on_host(const void *logits, topk_dtype dtype, int64_t vocab, const topk_sampling *s,
                           int64_t *tokens, float *probs)
{
    topk_ctx *cpu = open_backend_or_skip(TOPK_BACKEND_CPU);
    topk_status st = topk_sample(cpu, logits, dtype, B, vocab, vocab, s, 0, tokens, probs);
    cr_assert(st == TOPK_OK, "topk_sample on the cpu backend: %s", topk_strerror(st));
    topk_ctx_free(cpu);
}

static topk_sampling with_arrays(const float *t, const int64_t *k, const float *p, const float *m, const uint64_t *seeds,
                                 const uint64_t *offsets)
{
    topk_sampling s = topk_sampling_default();
    s.temperatures = t, s.top_ks = k, s.top_ps = p, s.min_ps = m, s.seeds = seeds, s.offsets = offsets;
    s.seed = 99, s.offset = 7;
    return s;
}

static void expect_same_draws(const int64_t *tokens, const float *probs, const int64_t *want, const float *want_probs,
                              const char *what, topk_dtype dtype, int64_t vocab)
{
    for (int r = 0; r < B; r++)
        cr_assert(tokens[r] == want[r] && !memcmp(&probs[r], &want_probs[r], 4),
                  "%s %s V=%lld row %d: token %lld (p %a), host parameters give %lld (p %a)", what, dtype_name(dtype),
                  (long long)vocab, r, (long long)tokens[r], probs[r], (long long)want[r], want_probs[r]);
}

Test(sample_device_params, offload)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    const int64_t vocabs[] = {4096, 50304};
    for (int v = 0; v < 2; v++)
        for (int d = 0; d < 3; d++) {
            int64_t vocab = vocabs[v];
            void *m = random_matrix(all_dtypes[d], B, vocab, vocab, 40 + v * 3 + d);
            params ps = random_params(vocab, 70 + v * 3 + d);
            device_params dp = to_device(&ps);
            int64_t want[B], tokens[B];
            float want_probs[B], probs[B];
            /* every parameter per row */
            topk_sampling host = with_arrays(ps.t, ps.k, ps.p, ps.m, ps.seeds, ps.offsets);
            sample_on_host(m, all_dtypes[d], vocab, &host, want, want_probs);
            topk_sampling dev = with_arrays(dp.t, dp.k, dp.p, dp.m, dp.seeds, dp.offsets);
            const int64_t bounds[] = {1500, 40, 0}; /* exact, below some rows, unknown */
            for (int b = 0; b < 3; b++) {
                dev.max_top_k = bounds[b];
                sample_on_device(ctx, m, all_dtypes[d], vocab, &dev, tokens, probs);
                expect_same_draws(tokens, probs, want, want_probs, b == 0 ? "max_top_k exact" : "max_top_k low",
                                  all_dtypes[d], vocab);
            }
            /* one array in device memory, the rest scalars */
            host = topk_sampling_default(), dev = topk_sampling_default();
            host.top_p = dev.top_p = 0.9f, host.seed = dev.seed = 5;
            host.top_ks = ps.k, dev.top_ks = dp.k, dev.max_top_k = 200;
            sample_on_host(m, all_dtypes[d], vocab, &host, want, want_probs);
            sample_on_device(ctx, m, all_dtypes[d], vocab, &dev, tokens, probs);
            expect_same_draws(tokens, probs, want, want_probs, "top_ks alone", all_dtypes[d], vocab);
            host.top_ks = dev.top_ks = NULL, host.top_k = dev.top_k = 50;
            host.temperatures = ps.t, dev.temperatures = dp.t;
            sample_on_host(m, all_dtypes[d], vocab, &host, want, want_probs);
            sample_on_device(ctx, m, all_dtypes[d], vocab, &dev, tokens, probs);
            expect_same_draws(tokens, probs, want, want_probs, "temperatures alone", all_dtypes[d], vocab);
            device_params_free(&dp);
            free(m);
        }
    topk_ctx_free(ctx);
}

/* Rows whose device parameters are out of range: token -1, probability NaN; the rest drawn as usual. */
Test(sample_device_params_out_of_range, offload)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    enum { V = 5000 };
    void *m = random_matrix(TOPK_BF16, B, V, V, 3);
    params good = random_params(V, 4), bad = good;
    bool broken[B] = {false};
    bad.t[1] = -1.0f, bad.t[2] = NAN, bad.t[3] = INFINITY, bad.k[4] = -5, bad.k[5] = V + 1, bad.p[6] = 0.0f;
    bad.p[7] = 1.5f, bad.m[8] = -0.1f, bad.m[9] = NAN;
    for (int r = 1; r <= 9; r++) broken[r] = true;
    device_params dp = to_device(&bad);
    int64_t want[B], tokens[B];
    float want_probs[B], probs[B];
    topk_sampling host = with_arrays(good.t, good.k, good.p, good.m, NULL, NULL);
    sample_on_host(m, TOPK_BF16, V, &host, want, want_probs);
    const int64_t bounds[] = {1500, 0};
    for (int b = 0; b < 2; b++) { /* the fused sampler and the whole-row one */
        topk_sampling dev = with_arrays(dp.t, dp.k, dp.p, dp.m, NULL, NULL);
        dev.max_top_k = bounds[b];
        sample_on_device(ctx, m, TOPK_BF16, V, &dev, tokens, probs);
        for (int r = 0; r < B; r++)
            if (broken[r])
                cr_assert(tokens[r] == -1 && isnan(probs[r]), "row %d out of range: token %lld (p %g), not -1 (NaN)",
                          r, (long long)tokens[r], probs[r]);
            else
                cr_assert(tokens[r] == want[r] && !memcmp(&probs[r], &want_probs[r], 4),
                          "row %d beside rows out of range: token %lld, host parameters give %lld", r,
                          (long long)tokens[r], (long long)want[r]);
    }
    device_params_free(&dp);
    free(m);
    topk_ctx_free(ctx);
}

/* A helper on the offload backend, its input and output in device memory: returns the output, malloc'd. */
typedef topk_status (*helper_call)(topk_ctx *ctx, const void *in, const void *per_row, unsigned flags, void *out);

static void *run_helper(topk_ctx *ctx, helper_call call, const void *in, size_t in_bytes, const void *per_row,
                        size_t per_row_bytes, size_t out_bytes)
{
    int device = pointer_device();
    void *out = malloc(out_bytes), *din = device_copy_in(in, in_bytes, device);
    memset(out, 0xA5, out_bytes);
    void *dout = device_copy_in(out, out_bytes, device);
    void *drow = per_row_bytes ? device_copy_in(per_row, per_row_bytes, device) : (void *)per_row;
    topk_status st = call(ctx, din, drow, TOPK_DEVICE_POINTERS, dout);
    cr_assert(st == TOPK_OK, "helper with device arrays: %s", topk_strerror(st));
    device_free(din, device);
    if (per_row_bytes) device_free(drow, device);
    device_copy_out(out, dout, out_bytes, device);
    return out;
}

enum { HV = 3000 };
static topk_status softmax_call(topk_ctx *c, const void *in, const void *t, unsigned f, void *out)
{
    return topk_softmax(c, in, TOPK_F16, B, HV, HV, 1.0f, t, f, out);
}
static topk_status top_k_renorm_call(topk_ctx *c, const void *in, const void *k, unsigned f, void *out)
{
    return topk_top_k_renorm_probs(c, in, B, HV, HV, 0, k, f, out);
}
static topk_status top_p_renorm_call(topk_ctx *c, const void *in, const void *p, unsigned f, void *out)
{
    return topk_top_p_renorm_probs(c, in, B, HV, HV, 1.0f, p, f, out);
}
static topk_status mask_call(topk_ctx *c, const void *in, const void *k, unsigned f, void *out)
{
    return topk_top_k_mask_logits(c, in, TOPK_BF16, B, HV, HV, 0, k, f, out);
}

/* Row r of out (row_bytes each) is all NaN. */
static bool row_is_nan(const void *out, int elem, int64_t r)
{
    for (int64_t c = 0; c < HV; c++) {
        uint32_t bits = load_bits(elem == 4 ? TOPK_F32 : TOPK_BF16, out, r * HV + c);
        if (elem == 4 ? (bits & 0x7FFFFFFFu) <= 0x7F800000u : (bits & 0x7FFFu) <= 0x7F80u) return false;
    }
    return true;
}

Test(sample_device_helpers, offload)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    params ps = random_params(HV, 12);
    float probs_in[B * HV];
    rng r = {13};
    for (int i = 0; i < B * HV; i++) probs_in[i] = (float)rng_below(&r, 1000) / 1000.0f;
    void *logits16 = random_matrix(TOPK_F16, B, HV, HV, 14), *logits_bf16 = random_matrix(TOPK_BF16, B, HV, HV, 15);
    for (int i = 0; i < B; i++)
        if (ps.t[i] == 0.0f) ps.t[i] = 0.5f; /* softmax needs > 0 */
    const struct {
        const char *name;
        helper_call call;
        const void *in, *per_row, *bad_row;
        size_t in_bytes, per_row_bytes, out_elem;
    } helpers[] = {
        {"softmax", softmax_call, logits16, ps.t, &(float){0.0f}, B * HV * 2, sizeof ps.t, 4},
        {"top_k_renorm", top_k_renorm_call, probs_in, ps.k, &(int64_t){-1}, sizeof probs_in, sizeof ps.k, 4},
        {"top_p_renorm", top_p_renorm_call, probs_in, ps.p, &(float){2.0f}, sizeof probs_in, sizeof ps.p, 4},
        {"top_k_mask", mask_call, logits_bf16, ps.k, &(int64_t){HV + 1}, B * HV * 2, sizeof ps.k, 2},
    };
    for (size_t h = 0; h < sizeof helpers / sizeof helpers[0]; h++) {
        size_t out_bytes = B * HV * helpers[h].out_elem;
        void *want = malloc(out_bytes);
        /* the host-array call: offload with host pointers (the helpers' parity with cpu is test_sample's) */
        cr_assert(helpers[h].call(ctx, helpers[h].in, helpers[h].per_row, 0, want) == TOPK_OK);
        void *got = run_helper(ctx, helpers[h].call, helpers[h].in, helpers[h].in_bytes, helpers[h].per_row,
                               helpers[h].per_row_bytes, out_bytes);
        cr_assert(!memcmp(got, want, out_bytes), "%s: device arrays differ from host arrays", helpers[h].name);
        free(got);
        /* row 3 out of range */
        char *bad = malloc(helpers[h].per_row_bytes);
        size_t each = helpers[h].per_row_bytes / B;
        memcpy(bad, helpers[h].per_row, helpers[h].per_row_bytes);
        memcpy(bad + 3 * each, helpers[h].bad_row, each);
        got = run_helper(ctx, helpers[h].call, helpers[h].in, helpers[h].in_bytes, bad, helpers[h].per_row_bytes,
                         out_bytes);
        size_t row = HV * helpers[h].out_elem;
        cr_assert(row_is_nan(got, (int)helpers[h].out_elem, 3), "%s: row 3 out of range is not all NaN",
                  helpers[h].name);
        cr_assert(!memcmp(got, want, 3 * row) && !memcmp((char *)got + 4 * row, (char *)want + 4 * row, out_bytes - 4 * row),
                  "%s: rows beside an out-of-range row changed", helpers[h].name);
        free(bad);
        free(got);
        free(want);
    }
    free(logits16);
    free(logits_bf16);
    topk_ctx_free(ctx);
}

/* What the host can read is still checked: the scalars that serve rows, and max_top_k. Nothing written. */
Test(sample_device_errors, offload)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    int device = pointer_device();
    float logits[8] = {1, 2, 3, 4, 5, 6, 7, 8}, t[2] = {1, 1};
    int64_t tokens[2] = {-7, -7}, k[2] = {1, 2};
    void *dl = device_copy_in(logits, sizeof logits, device), *dt = device_copy_in(t, sizeof t, device),
         *dk = device_copy_in(k, sizeof k, device), *dtokens = device_copy_in(tokens, sizeof tokens, device);
    topk_sampling s = topk_sampling_default();
    s.top_ks = dk, s.max_top_k = -1;
    cr_assert(topk_sample(ctx, dl, TOPK_F32, 2, 4, 4, &s, TOPK_DEVICE_POINTERS, dtokens, NULL) == TOPK_ERR_BAD_SAMPLING,
              "max_top_k -1 accepted");
    s.max_top_k = 2, s.temperature = -1.0f; /* the scalar temperature serves every row */
    cr_assert(topk_sample(ctx, dl, TOPK_F32, 2, 4, 4, &s, TOPK_DEVICE_POINTERS, dtokens, NULL) == TOPK_ERR_BAD_SAMPLING,
              "a bad scalar temperature beside device top_ks accepted");
    cr_assert(topk_softmax(ctx, dl, TOPK_F32, 2, 4, 4, 0.0f, NULL, TOPK_DEVICE_POINTERS, dl) == TOPK_ERR_BAD_SAMPLING);
    int64_t back[2];
    device_copy_out(back, dtokens, sizeof back, device);
    cr_assert(back[0] == -7 && back[1] == -7, "a refused call wrote its output");
    dtokens = device_copy_in(tokens, sizeof tokens, device);
    s = topk_sampling_default();
    s.temperatures = dt, s.temperature = -1.0f; /* overridden by the array: not used, not checked */
    cr_assert(topk_sample(ctx, dl, TOPK_F32, 2, 4, 4, &s, TOPK_DEVICE_POINTERS, dtokens, NULL) == TOPK_OK);
    device_copy_out(back, dtokens, sizeof back, device);
    cr_assert(back[0] >= 0 && back[0] < 4 && back[1] >= 0 && back[1] < 4, "the good call drew %lld, %lld",
              (long long)back[0], (long long)back[1]);
    device_free(dl, device);
    device_free(dt, device);
    device_free(dk, device);
    topk_ctx_free(ctx);
}
