/*
 * topk-stream-bench: what a call costs the host and the GPU when libtopk runs on the caller's CUDA
 * stream (topk_ctx_set_stream), against the synchronous call, in one process on one GPU.
 *
 * Per shape (the decode shapes by default, or --batch/--vocab/--top-k/--dtype), each over --calls
 * back-to-back calls of topk_select on device pointers (and --sample: topk_sample with top-k 50, top-p
 * 0.9, T 0.7 instead):
 *   sync_us      the synchronous call (no stream): launch through libomptarget, wait for the end
 *   stream_us    the call on a stream and a cuStreamSynchronize after each: the driver launch's floor
 *   enqueue_us   host time per call of N calls on a stream with no wait between (the host's cost)
 *   device_us    the same N calls to the end of the stream, per call (the GPU's throughput)
 *   graph_us     one call captured in a CUDA graph, replayed N times back to back, per replay
 * and whether the stream's and the graph's results equal the synchronous call's, bit for bit (the last
 * replay's outputs against a synchronous call's).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cuda.h"

void cuda_fail(const char *call, const char *error)
{
    fprintf(stderr, "topk-stream-bench: %s failed: %s\n", call, error);
    exit(1);
}

typedef struct shape {
    int64_t batch, vocab, k;
    topk_dtype dtype;
} shape;

typedef struct call {
    topk_ctx *ctx;
    shape s;
    bool sample;
    void *input, *values, *indices; /* indices: tokens when sampling; values: probs */
    topk_sampling params;
} call;

static void run(const call *c)
{
    topk_status st = c->sample ? topk_sample(c->ctx, c->input, c->s.dtype, c->s.batch, c->s.vocab, c->s.vocab,
                                             &c->params, TOPK_DEVICE_POINTERS, c->indices, c->values)
                               : topk_select(c->ctx, c->input, c->s.dtype, c->s.batch, c->s.vocab, c->s.vocab,
                                             c->s.k, TOPK_DEVICE_POINTERS, c->values, c->indices);
    if (st != TOPK_OK) {
        fprintf(stderr, "topk-stream-bench: %s\n", topk_strerror(st));
        exit(1);
    }
}

static size_t value_bytes(const call *c)
{
    return c->sample ? (size_t)c->s.batch * 4 : (size_t)(c->s.batch * c->s.k) * (size_t)topk_dtype_size(c->s.dtype);
}

static size_t index_bytes(const call *c) { return (size_t)(c->sample ? c->s.batch : c->s.batch * c->s.k) * 8; }

/* The outputs of the last call, to host memory (the stream is idle). */
static void outputs(const call *c, void **values, void **indices)
{
    *values = bench_realloc(NULL, value_bytes(c));
    *indices = bench_realloc(NULL, index_bytes(c));
    cuda_download(*values, c->values, value_bytes(c));
    cuda_download(*indices, c->indices, index_bytes(c));
}

static bool same_as(const call *c, void *values, void *indices)
{
    void *v, *i;
    outputs(c, &v, &i);
    bool same = !memcmp(v, values, value_bytes(c)) && !memcmp(i, indices, index_bytes(c));
    free(v);
    free(i);
    return same;
}

static void bench_shape(topk_ctx *ctx, void *stream, shape s, bool sample, int calls)
{
    size_t in_bytes = (size_t)(s.batch * s.vocab) * (size_t)topk_dtype_size(s.dtype);
    void *host = bench_realloc(NULL, in_bytes);
    matrix_fill(host, s.dtype, s.batch, s.vocab, s.vocab, 1);
    call c = {ctx, s, sample, cuda_alloc(in_bytes), NULL, NULL, topk_sampling_default()};
    c.params.top_k = 50, c.params.top_p = 0.9f, c.params.temperature = 0.7f, c.params.seed = 1;
    cuda_upload(c.input, host, in_bytes);
    c.values = cuda_alloc(value_bytes(&c));
    c.indices = cuda_alloc(index_bytes(&c));

    topk_ctx_set_stream(ctx, NULL);
    for (int i = 0; i < 20; i++) run(&c);
    double t0 = bench_now();
    for (int i = 0; i < calls; i++) run(&c);
    double sync_us = (bench_now() - t0) / calls * 1e6;
    void *want_values, *want_indices;
    outputs(&c, &want_values, &want_indices);

    if (topk_ctx_set_stream(ctx, stream) != TOPK_OK) {
        fprintf(stderr, "topk-stream-bench: topk_ctx_set_stream: %s\n", topk_ctx_last_error(ctx));
        exit(1);
    }
    for (int i = 0; i < 20; i++) run(&c);
    cuda_sync(stream);
    t0 = bench_now();
    for (int i = 0; i < calls; i++) {
        run(&c);
        cuda_sync(stream);
    }
    double stream_us = (bench_now() - t0) / calls * 1e6;
    t0 = bench_now();
    for (int i = 0; i < calls; i++) run(&c);
    double enqueued = bench_now();
    cuda_sync(stream);
    double enqueue_us = (enqueued - t0) / calls * 1e6, device_us = (bench_now() - t0) / calls * 1e6;
    bool stream_same = same_as(&c, want_values, want_indices);

    cuda_capture_begin(stream);
    run(&c);
    void *graph = cuda_capture_end(stream);
    cuda_graph_launch(graph, stream);
    cuda_sync(stream);
    t0 = bench_now();
    for (int i = 0; i < calls; i++) cuda_graph_launch(graph, stream);
    cuda_sync(stream);
    double graph_us = (bench_now() - t0) / calls * 1e6;
    bool graph_same = same_as(&c, want_values, want_indices);
    cuda_graph_free(graph);

    printf("%-7s %5lld %7lld %5lld %-5s %8.2f %9.2f %10.2f %9.2f %8.2f  %s\n", sample ? "sample" : "select",
           (long long)s.batch, (long long)s.vocab, (long long)s.k, dtype_name(s.dtype), sync_us, stream_us,
           enqueue_us, device_us, graph_us, stream_same && graph_same ? "same" : "DIFFERENT");
    fflush(stdout);
    free(want_values);
    free(want_indices);
    free(host);
    cuda_free(c.input);
    cuda_free(c.values);
    cuda_free(c.indices);
    if (!stream_same || !graph_same) exit(1);
}

int main(int argc, char **argv)
{
    int64_t batch = 0, vocab = 0, top_k = 50, calls = 1000;
    bool sample = false;
    static const char *const dtypes[] = {"fp32", "fp16", "bf16", NULL};
    int dtype = TOPK_BF16;
    flag flags[] = {
        {"--batch", FLAG_INT64, &batch, "N", "rows (without --batch and --vocab: B 1, 8, 32, 64 x V 4096, 128256, 151936)",
         .min = 1, .max = INT32_MAX},
        {"--vocab", FLAG_INT64, &vocab, "N", "columns", .min = 1, .max = INT32_MAX},
        {"--top-k", FLAG_INT64, &top_k, "N", "k of topk_select", true, .min = 1, .max = INT32_MAX},
        {"--dtype", FLAG_CHOICE, &dtype, "T", "fp32, fp16 or bf16 (default bf16)", .choices = dtypes},
        {"--calls", FLAG_INT64, &calls, "N", "back-to-back calls timed per measure", true, .min = 1, .max = 1000000},
        {"--sample", FLAG_ON, &sample, NULL, "time topk_sample (top-k 50, top-p 0.9, T 0.7) instead of topk_select",
         .show_default = false},
    };
    flag_table table = {"topk-stream-bench",
                        "Times libtopk's calls on a CUDA stream and in CUDA graphs against the synchronous call.\n",
                        NULL, flags, sizeof flags / sizeof flags[0]};
    flags_parse(&table, argc, argv);
    topk_ctx *ctx;
    if (!cuda_open() || topk_ctx_create(&ctx, TOPK_BACKEND_OFFLOAD) != TOPK_OK) {
        fprintf(stderr, "topk-stream-bench: needs a GPU (the offload backend and the CUDA driver)\n");
        return 1;
    }
    void *stream = cuda_stream();
    printf("# topk-stream-bench on %s, %lld calls per measure; microseconds per call\n", topk_ctx_tuning_device(ctx),
           (long long)calls);
    printf("%-7s %5s %7s %5s %-5s %8s %9s %10s %9s %8s  %s\n", "call", "batch", "vocab", "k", "dtype", "sync_us",
           "stream_us", "enqueue_us", "device_us", "graph_us", "vs sync");
    if (batch && vocab)
        bench_shape(ctx, stream, (shape){batch, vocab, top_k, (topk_dtype)dtype}, sample, (int)calls);
    else {
        const int64_t batches[] = {1, 8, 32, 64}, vocabs[] = {4096, 128256, 151936};
        for (int v = 0; v < 3; v++)
            for (int b = 0; b < 4; b++)
                bench_shape(ctx, stream, (shape){batches[b], vocabs[v], top_k, (topk_dtype)dtype}, sample, (int)calls);
    }
    cuda_stream_free(stream);
    topk_ctx_free(ctx);
    return 0;
}
