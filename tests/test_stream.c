/*
 * Calls on a CUDA stream (topk_ctx_set_stream): the stream launcher runs the same kernels as
 * libomptarget, so every result must equal the synchronous call's bit for bit (and the synchronous call
 * is held to the oracle by the rest of the suite). Also: a CUDA graph captured around the calls replays
 * them on new data, two streams on one context keep their workspaces apart, and what cannot be done on
 * a stream says so with a status.
 *
 * These need a GPU: without one (CI) the tests of the launcher skip, and only the errors run.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda.h"
#include "gen.h"

void cuda_fail(const char *call, const char *error) { cr_assert_fail("%s failed: %s", call, error); }

/* An offload context on the GPU and the driver ready, or the test skips. */
static topk_ctx *gpu_or_skip(void)
{
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    const char *host = getenv("TOPK_OFFLOAD_HOST");
    if ((host && !strcmp(host, "1")) || !cuda_open()) {
        topk_ctx_free(ctx);
        cr_skip_test("stream launcher not tested: no GPU (the host fallback has no streams)");
    }
    return ctx;
}

/* A matrix on the device, and its size. */
typedef struct device_matrix {
    void *host, *device;
    size_t bytes;
} device_matrix;

static device_matrix device_matrix_of(topk_dtype dtype, int64_t batch, int64_t vocab, int64_t stride, uint64_t seed)
{
    device_matrix m = {.host = random_matrix(dtype, batch, vocab, stride, seed)};
    m.bytes = (size_t)matrix_elements(batch, vocab, stride) * (size_t)dtype_bytes(dtype);
    m.device = cuda_alloc(m.bytes);
    cuda_upload(m.device, m.host, m.bytes);
    return m;
}

static void device_matrix_free(device_matrix *m)
{
    free(m->host);
    cuda_free(m->device);
}

/* topk_select on device pointers, synchronous (stream NULL) or enqueued on `stream` and then waited
 * for; the outputs come back to host memory. */
static void select_via(topk_ctx *ctx, void *stream, const select_case *c, const device_matrix *m, void *values,
                       int64_t *indices)
{
    size_t n = (size_t)(c->batch * c->k), elem = (size_t)dtype_bytes(c->dtype);
    void *dv = cuda_alloc(n * elem), *di = cuda_alloc(n * 8);
    /* poisoned first: an output the kernel did not write shows as 0xA5 bytes */
    memset(values, 0xA5, n * elem);
    memset(indices, 0xA5, n * 8);
    cuda_upload(dv, values, n * elem);
    cuda_upload(di, indices, n * 8);
    cr_assert(topk_ctx_set_stream(ctx, stream) == TOPK_OK, "topk_ctx_set_stream: %s", topk_ctx_last_error(ctx));
    topk_status s = topk_select(ctx, m->device, c->dtype, c->batch, c->vocab, c->row_stride, c->k,
                                TOPK_DEVICE_POINTERS | (c->smallest ? TOPK_SMALLEST : 0), dv, di);
    char name[160];
    describe_case(c, name, sizeof name);
    cr_assert(s == TOPK_OK, "%s on %s: %s (%s)", name, stream ? "a stream" : "no stream", topk_strerror(s),
              topk_ctx_last_error(ctx));
    if (stream) cuda_sync(stream);
    cuda_download(values, dv, n * elem);
    cuda_download(indices, di, n * 8);
    cuda_free(dv);
    cuda_free(di);
}

static void expect_stream_equals_sync(topk_ctx *ctx, void *stream, const select_case *c, const device_matrix *m)
{
    size_t n = (size_t)(c->batch * c->k), elem = (size_t)dtype_bytes(c->dtype);
    selection sync = {malloc(n * elem), malloc(n * 8), c->k}, streamed = {malloc(n * elem), malloc(n * 8), c->k};
    select_via(ctx, NULL, c, m, sync.values, sync.indices);
    select_via(ctx, stream, c, m, streamed.values, streamed.indices);
    char why[300];
    if (find_difference(c, &streamed, &sync, why, sizeof why)) { /* which one is wrong: ask the oracle */
        selection oracle = oracle_selection(c, m->host, false);
        char s_why[300] = "", o_why[300] = "", again[300] = "";
        bool sync_wrong = find_difference(c, &sync, &oracle, s_why, sizeof s_why);
        bool stream_wrong = find_difference(c, &streamed, &oracle, o_why, sizeof o_why);
        /* a race gives a different answer on the next try; a wrong plan the same one */
        selection retry = {malloc(n * elem), malloc(n * 8), c->k};
        select_via(ctx, NULL, c, m, retry.values, retry.indices);
        bool repeats = !find_difference(c, &retry, &sync, again, sizeof again);
        bool retry_right = !find_difference(c, &retry, &oracle, again, sizeof again);
        selection_free(&retry);
        selection_free(&oracle);
        cr_assert_fail("stream vs synchronous: %s. Against the oracle: synchronous %s%s; stream %s%s. The synchronous "
                       "call again: %s, %s",
                       why, sync_wrong ? "WRONG: " : "right", s_why, stream_wrong ? "WRONG: " : "right", o_why,
                       repeats ? "the same answer" : "a different answer", retry_right ? "right" : "wrong");
    }
    selection_free(&sync);
    selection_free(&streamed);
}

Test(stream, select_equals_synchronous)
{
    topk_ctx *ctx = gpu_or_skip();
    void *stream = cuda_stream();
    /* one team a row, several (a merge tree), wide k (a workspace buffer per team), k = vocab, strides */
    const struct { int64_t batch, vocab, stride, k; } shapes[] = {
        {1, 1000, 1000, 1},    {3, 32000, 32000, 50},  {64, 4096, 4100, 64}, {2, 151936, 151936, 2048},
        {1, 262144, 262144, 2049}, {5, 129, 131, 129}, {256, 32000, 32000, 20}, {1, 1 << 20, 1 << 20, 100},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int d = 0; d < 3; d++)
            for (int smallest = 0; smallest < 2; smallest++) {
                select_case c = {TOPK_BACKEND_OFFLOAD, all_dtypes[d], shapes[i].batch, shapes[i].vocab,
                                 shapes[i].stride, shapes[i].k, smallest, "random seed 7"};
                device_matrix m = device_matrix_of(c.dtype, c.batch, c.vocab, c.row_stride, 7 + i);
                expect_stream_equals_sync(ctx, stream, &c, &m);
                device_matrix_free(&m);
            }
    cuda_stream_free(stream);
    topk_ctx_free(ctx);
}

/* topk_sample on device pointers, synchronous or on a stream: tokens and probabilities. */
static void sample_via(topk_ctx *ctx, void *stream, const device_matrix *m, topk_dtype dtype, int64_t batch,
                       int64_t vocab, const topk_sampling *params, int64_t *tokens, float *probs)
{
    void *dt = cuda_alloc((size_t)batch * 8), *dp = cuda_alloc((size_t)batch * 4);
    cr_assert(topk_ctx_set_stream(ctx, stream) == TOPK_OK);
    topk_status s = topk_sample(ctx, m->device, dtype, batch, vocab, vocab, params, TOPK_DEVICE_POINTERS, dt, dp);
    cr_assert(s == TOPK_OK, "topk_sample %s B=%lld V=%lld on %s: %s (%s)", dtype_name(dtype), (long long)batch,
              (long long)vocab, stream ? "a stream" : "no stream", topk_strerror(s), topk_ctx_last_error(ctx));
    if (stream) cuda_sync(stream);
    cuda_download(tokens, dt, (size_t)batch * 8);
    cuda_download(probs, dp, (size_t)batch * 4);
    cuda_free(dt);
    cuda_free(dp);
}

Test(stream, sample_equals_synchronous)
{
    topk_ctx *ctx = gpu_or_skip();
    void *stream = cuda_stream();
    enum { B = 32 };
    float temperatures[B];
    int64_t top_ks[B];
    for (int r = 0; r < B; r++) {
        temperatures[r] = r % 4 == 0 ? 0.0f : 0.5f + 0.1f * (float)r;
        top_ks[r] = r % 3 == 0 ? 0 : 1 + r * 7;
    }
    /* per-row arrays go where the call's other pointers are: device memory (TOPK_DEVICE_POINTERS) */
    float *device_temperatures = cuda_alloc(sizeof temperatures);
    int64_t *device_top_ks = cuda_alloc(sizeof top_ks);
    cuda_upload(device_temperatures, temperatures, sizeof temperatures);
    cuda_upload(device_top_ks, top_ks, sizeof top_ks);
    topk_sampling top_k = topk_sampling_default(), top_p = topk_sampling_default(), rows = topk_sampling_default();
    top_k.top_k = 50, top_k.top_p = 0.9f, top_k.temperature = 0.7f, top_k.seed = 11, top_k.offset = 3;
    top_p.top_p = 0.8f, top_p.min_p = 0.05f, top_p.seed = 12; /* the whole-row path */
    rows.temperatures = device_temperatures, rows.top_ks = device_top_ks, rows.seed = 13; /* per row: both paths */
    rows.max_top_k = 1 + (B - 1) * 7;
    const topk_sampling *sets[] = {&top_k, &top_p, &rows};
    const int64_t vocabs[] = {4096, 128256};
    for (int v = 0; v < 2; v++)
        for (int d = 0; d < 3; d++)
            for (int p = 0; p < 3; p++) {
                device_matrix m = device_matrix_of(all_dtypes[d], B, vocabs[v], vocabs[v], 100 + v * 10 + d);
                int64_t t_sync[B], t_stream[B];
                float p_sync[B], p_stream[B];
                sample_via(ctx, NULL, &m, all_dtypes[d], B, vocabs[v], sets[p], t_sync, p_sync);
                sample_via(ctx, stream, &m, all_dtypes[d], B, vocabs[v], sets[p], t_stream, p_stream);
                for (int r = 0; r < B; r++)
                    cr_assert(t_sync[r] == t_stream[r] && !memcmp(&p_sync[r], &p_stream[r], 4),
                              "%s V=%lld parameter set %d row %d: stream drew %lld (p %a), synchronous %lld (p %a)",
                              dtype_name(all_dtypes[d]), (long long)vocabs[v], p, r, (long long)t_stream[r],
                              p_stream[r], (long long)t_sync[r], p_sync[r]);
                device_matrix_free(&m);
            }
    cuda_free(device_temperatures);
    cuda_free(device_top_ks);
    cuda_stream_free(stream);
    topk_ctx_free(ctx);
}

/* Capture topk_select and topk_sample in one graph, then replay it on new inputs written into the
 * captured input buffer: every replay must give what a synchronous call gives on that input. */
Test(stream, graph_replays_on_new_data)
{
    topk_ctx *ctx = gpu_or_skip();
    void *stream = cuda_stream();
    enum { B = 8, V = 50304, K = 50 };
    topk_dtype dtype = TOPK_BF16;
    select_case c = {TOPK_BACKEND_OFFLOAD, dtype, B, V, V, K, false, "graph replay"};
    device_matrix m = device_matrix_of(dtype, B, V, V, 1);
    void *values = cuda_alloc(B * K * 2), *indices = cuda_alloc(B * K * 8), *tokens = cuda_alloc(B * 8),
         *probs = cuda_alloc(B * 4);
    topk_sampling params = topk_sampling_default();
    params.top_k = 40, params.temperature = 0.8f, params.seed = 5;
    cr_assert(topk_ctx_set_stream(ctx, stream) == TOPK_OK);
    /* warm up: the first call of a shape makes the workspace */
    cr_assert(topk_select(ctx, m.device, dtype, B, V, V, K, TOPK_DEVICE_POINTERS, values, indices) == TOPK_OK);
    cuda_capture_begin(stream);
    topk_status s1 = topk_select(ctx, m.device, dtype, B, V, V, K, TOPK_DEVICE_POINTERS, values, indices);
    topk_status s2 = topk_sample(ctx, m.device, dtype, B, V, V, &params, TOPK_DEVICE_POINTERS, tokens, probs);
    void *graph = cuda_capture_end(stream);
    cr_assert(s1 == TOPK_OK && s2 == TOPK_OK, "calls inside the capture: %s, %s (%s)", topk_strerror(s1),
              topk_strerror(s2), topk_ctx_last_error(ctx));
    topk_ctx *sync = gpu_or_skip();
    for (uint64_t replay = 0; replay < 5; replay++) {
        void *fresh = random_matrix(dtype, B, V, V, 1000 + replay);
        cuda_upload_async(m.device, fresh, m.bytes, stream);
        cuda_graph_launch(graph, stream);
        cuda_sync(stream);
        selection got = {malloc(B * K * 2), malloc(B * K * 8), K}, want = {malloc(B * K * 2), malloc(B * K * 8), K};
        int64_t t_got[B], t_want[B];
        float p_got[B], p_want[B];
        cuda_download(got.values, values, B * K * 2);
        cuda_download(got.indices, indices, B * K * 8);
        cuda_download(t_got, tokens, B * 8);
        cuda_download(p_got, probs, B * 4);
        memcpy(m.host, fresh, m.bytes);
        select_via(sync, NULL, &c, &m, want.values, want.indices);
        sample_via(sync, NULL, &m, dtype, B, V, &params, t_want, p_want);
        assert_same(&c, &got, &want, "a synchronous call on the replay's data");
        cr_assert(!memcmp(t_got, t_want, sizeof t_got) && !memcmp(p_got, p_want, sizeof p_got),
                  "replay %llu: the graph's tokens differ from a synchronous call's", (unsigned long long)replay);
        selection_free(&got);
        selection_free(&want);
        free(fresh);
    }
    cuda_graph_free(graph);
    topk_ctx_free(sync);
    device_matrix_free(&m);
    cuda_free(values), cuda_free(indices), cuda_free(tokens), cuda_free(probs);
    topk_ctx_free(ctx);
    cuda_stream_free(stream);
}

/* Seeds and offsets in device memory are read by the kernel: a graph replayed after new offsets were
 * written draws fresh tokens, each replay what a synchronous call with those offsets draws. */
Test(stream, graph_reads_seeds_from_device)
{
    topk_ctx *ctx = gpu_or_skip(), *sync = gpu_or_skip();
    void *stream = cuda_stream();
    enum { B = 16, V = 32000, REPLAYS = 6 };
    device_matrix m = device_matrix_of(TOPK_F32, B, V, V, 9);
    uint64_t seeds[B], offsets[B];
    for (int r = 0; r < B; r++) seeds[r] = 1000 + (uint64_t)r * 7919, offsets[r] = 0;
    uint64_t *d_seeds = cuda_alloc(sizeof seeds), *d_offsets = cuda_alloc(sizeof offsets);
    cuda_upload(d_seeds, seeds, sizeof seeds);
    cuda_upload(d_offsets, offsets, sizeof offsets);
    int64_t *tokens = cuda_alloc(B * 8);
    float *probs = cuda_alloc(B * 4);
    topk_sampling params = topk_sampling_default();
    params.top_k = 200, params.temperature = 1.5f, params.seeds = d_seeds, params.offsets = d_offsets;
    cr_assert(topk_ctx_set_stream(ctx, stream) == TOPK_OK);
    cr_assert(topk_sample(ctx, m.device, TOPK_F32, B, V, V, &params, TOPK_DEVICE_POINTERS, tokens, probs) == TOPK_OK);
    cuda_capture_begin(stream);
    topk_status st = topk_sample(ctx, m.device, TOPK_F32, B, V, V, &params, TOPK_DEVICE_POINTERS, tokens, probs);
    void *graph = cuda_capture_end(stream);
    cr_assert(st == TOPK_OK, "%s", topk_strerror(st));
    int changed = 0;
    int64_t previous[B] = {0};
    for (int replay = 0; replay < REPLAYS; replay++) {
        for (int r = 0; r < B; r++) offsets[r] = (uint64_t)replay;
        cuda_upload_async(d_offsets, offsets, sizeof offsets, stream);
        cuda_graph_launch(graph, stream);
        cuda_sync(stream);
        int64_t got[B], want[B];
        float got_p[B], want_p[B];
        cuda_download(got, tokens, sizeof got);
        cuda_download(got_p, probs, sizeof got_p);
        sample_via(sync, NULL, &m, TOPK_F32, B, V, &params, want, want_p);
        cr_assert(!memcmp(got, want, sizeof got) && !memcmp(got_p, want_p, sizeof got_p),
                  "replay %d: the graph drew other tokens than a synchronous call with the same offsets", replay);
        for (int r = 0; r < B && replay; r++) changed += got[r] != previous[r];
        memcpy(previous, got, sizeof got);
    }
    cr_assert(changed > 0, "new offsets in device memory drew the same tokens on every replay");
    cuda_graph_free(graph);
    cuda_free(d_seeds), cuda_free(d_offsets), cuda_free(tokens), cuda_free(probs);
    device_matrix_free(&m);
    cuda_stream_free(stream);
    topk_ctx_free(sync);
    topk_ctx_free(ctx);
}

/* One context, two streams, calls interleaved without waiting in between: each stream's results are
 * its own input's (the workspaces are per stream). */
Test(stream, two_streams_keep_their_workspaces)
{
    topk_ctx *ctx = gpu_or_skip();
    enum { B = 64, V = 151936, K = 64, ROUNDS = 4 };
    void *streams[2] = {cuda_stream(), cuda_stream()};
    device_matrix m[2] = {device_matrix_of(TOPK_F32, B, V, V, 21), device_matrix_of(TOPK_F32, B, V, V, 22)};
    void *values[2][ROUNDS], *indices[2][ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        for (int s = 0; s < 2; s++) {
            values[s][round] = cuda_alloc(B * K * 4);
            indices[s][round] = cuda_alloc(B * K * 8);
            cr_assert(topk_ctx_set_stream(ctx, streams[s]) == TOPK_OK);
            cr_assert(topk_select(ctx, m[s].device, TOPK_F32, B, V, V, K, TOPK_DEVICE_POINTERS, values[s][round],
                                  indices[s][round]) == TOPK_OK);
        }
    cuda_sync(streams[0]);
    cuda_sync(streams[1]);
    select_case c = {TOPK_BACKEND_OFFLOAD, TOPK_F32, B, V, V, K, false, "two streams"};
    topk_ctx *sync = gpu_or_skip();
    for (int s = 0; s < 2; s++) {
        selection want = {malloc(B * K * 4), malloc(B * K * 8), K};
        select_via(sync, NULL, &c, &m[s], want.values, want.indices);
        for (int round = 0; round < ROUNDS; round++) {
            selection got = {malloc(B * K * 4), malloc(B * K * 8), K};
            cuda_download(got.values, values[s][round], B * K * 4);
            cuda_download(got.indices, indices[s][round], B * K * 8);
            assert_same(&c, &got, &want, "a synchronous call");
            selection_free(&got);
            cuda_free(values[s][round]);
            cuda_free(indices[s][round]);
        }
        selection_free(&want);
        device_matrix_free(&m[s]);
        cuda_stream_free(streams[s]);
    }
    topk_ctx_free(sync);
    topk_ctx_free(ctx);
}

/* Per-row sampling parameters in device memory are read at each replay: a graph captured with them,
 * replayed after new values were written there, draws what a synchronous call with those values draws. */
Test(stream, graph_reads_rows_from_device)
{
    topk_ctx *ctx = gpu_or_skip();
    void *stream = cuda_stream();
    enum { B = 4, V = 1000 };
    device_matrix m = device_matrix_of(TOPK_F32, B, V, V, 3);
    float *temperatures = cuda_alloc(B * 4);
    int64_t *top_ks = cuda_alloc(B * 8), *tokens = cuda_alloc(B * 8);
    topk_sampling params = topk_sampling_default();
    params.temperatures = temperatures, params.top_ks = top_ks, params.max_top_k = 100, params.seed = 8;
    float t0[B] = {0.5f, 0.7f, 0.9f, 1.1f};
    int64_t k0[B] = {10, 0, 100, 1};
    cuda_upload(temperatures, t0, sizeof t0);
    cuda_upload(top_ks, k0, sizeof k0);
    cr_assert(topk_ctx_set_stream(ctx, stream) == TOPK_OK);
    cr_assert(topk_sample(ctx, m.device, TOPK_F32, B, V, V, &params, TOPK_DEVICE_POINTERS, tokens, NULL) == TOPK_OK);
    cuda_capture_begin(stream);
    topk_status s = topk_sample(ctx, m.device, TOPK_F32, B, V, V, &params, TOPK_DEVICE_POINTERS, tokens, NULL);
    void *graph = cuda_capture_end(stream);
    cr_assert(s == TOPK_OK, "topk_sample with device rows inside a capture: %s", topk_strerror(s));
    for (int replay = 0; replay < 3; replay++) {
        float t[B];
        int64_t k[B], got[B], want[B];
        for (int r = 0; r < B; r++) t[r] = t0[(r + replay) % B] * (1 + replay), k[r] = k0[(r + replay + 1) % B];
        cuda_upload_async(temperatures, t, sizeof t, stream); /* in the stream's order, before the replay */
        cuda_upload_async(top_ks, k, sizeof k, stream);
        cuda_graph_launch(graph, stream);
        cuda_sync(stream);
        cuda_download(got, tokens, sizeof got);
        topk_sampling host = topk_sampling_default(); /* the same values from host memory, synchronously */
        host.temperatures = t, host.top_ks = k, host.seed = 8;
        topk_ctx *sync = gpu_or_skip();
        cr_assert(topk_sample(sync, m.host, TOPK_F32, B, V, V, &host, 0, want, NULL) == TOPK_OK);
        topk_ctx_free(sync);
        for (int r = 0; r < B; r++)
            cr_assert(got[r] == want[r], "replay %d row %d: the graph drew %lld, a call with those values %lld", replay,
                      r, (long long)got[r], (long long)want[r]);
    }
    cuda_graph_free(graph);
    cuda_free(temperatures);
    cuda_free(top_ks);
    cuda_free(tokens);
    device_matrix_free(&m);
    cuda_stream_free(stream);
    topk_ctx_free(ctx);
}

/* Runs everywhere: a stream on a context without a GPU is TOPK_ERR_NO_DEVICE; NULL is always fine. */
Test(stream, needs_a_gpu)
{
    const topk_backend backends[] = {TOPK_BACKEND_CPU, TOPK_BACKEND_REFERENCE};
    for (int b = 0; b < 2; b++) {
        topk_ctx *ctx = open_backend_or_skip(backends[b]);
        cr_assert(topk_ctx_set_stream(ctx, (void *)0x2 /* CU_STREAM_PER_THREAD */) == TOPK_ERR_NO_DEVICE);
        cr_assert(topk_ctx_set_stream(ctx, NULL) == TOPK_OK);
        cr_assert_str_eq(topk_ctx_last_error(ctx), "");
        topk_ctx_free(ctx);
    }
    cr_assert(topk_ctx_set_stream(NULL, NULL) == TOPK_ERR_NULL_POINTER);
    cr_assert_str_eq(topk_ctx_last_error(NULL), "");
}

/* Under the host fallback the offload backend has no streams either. */
Test(stream, host_fallback_has_no_streams)
{
    const char *host = getenv("TOPK_OFFLOAD_HOST");
    if (!host || strcmp(host, "1")) cr_skip_test("only under TOPK_OFFLOAD_HOST=1");
    topk_ctx *ctx = open_backend_or_skip(TOPK_BACKEND_OFFLOAD);
    cr_assert(topk_ctx_set_stream(ctx, (void *)0x2) == TOPK_ERR_NO_DEVICE);
    topk_ctx_free(ctx);
}
