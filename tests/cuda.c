/*
 * A caller's CUDA driver calls (cuda.h), for the stream tests and topk-stream-bench. Every failure goes
 * to cuda_fail, which each program defines (a test fails, a benchmark stops).
 */
#include <dlfcn.h>
#include <stdint.h>

#include "cuda.h"

typedef int CUresult;
#define CUDA_CALLS(X)                                                                                    \
    X(cuInit, (unsigned))                                                                                \
    X(cuGetErrorName, (CUresult, const char **))                                                         \
    X(cuDeviceGet, (int *, int))                                                                         \
    X(cuDevicePrimaryCtxRetain, (void **, int))                                                          \
    X(cuCtxSetCurrent, (void *))                                                                         \
    X(cuStreamCreate, (void **, unsigned))                                                               \
    X(cuStreamDestroy_v2, (void *))                                                                      \
    X(cuStreamSynchronize, (void *))                                                                     \
    X(cuMemAlloc_v2, (uint64_t *, size_t))                                                               \
    X(cuMemFree_v2, (uint64_t))                                                                          \
    X(cuMemcpyHtoD_v2, (uint64_t, const void *, size_t))                                                 \
    X(cuMemcpyDtoH_v2, (void *, uint64_t, size_t))                                                       \
    X(cuMemcpyHtoDAsync_v2, (uint64_t, const void *, size_t, void *))                                    \
    X(cuStreamBeginCapture_v2, (void *, int))                                                            \
    X(cuStreamEndCapture, (void *, void **))                                                             \
    X(cuGraphInstantiateWithFlags, (void **, void *, unsigned long long))                                \
    X(cuGraphLaunch, (void *, void *))                                                                   \
    X(cuGraphExecDestroy, (void *))                                                                      \
    X(cuGraphDestroy, (void *))

#define FIELD_(name, args) static CUresult(*name) args;
CUDA_CALLS(FIELD_)

#define CHECK(call)                                                                                      \
    do {                                                                                                 \
        CUresult r_ = (call);                                                                            \
        const char *n_ = "?";                                                                            \
        if (r_) cuGetErrorName(r_, &n_);                                                                 \
        if (r_) cuda_fail(#call, n_);                                                                    \
    } while (0)

bool cuda_open(void)
{
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW);
    if (!cuda) return false;
#define LOAD_(name, args)                                                                                \
    *(void **)&name = dlsym(cuda, #name);                                                                \
    if (!name) return false;
    CUDA_CALLS(LOAD_)
    int device;
    void *context;
    if (cuInit(0) || cuDeviceGet(&device, 0) || cuDevicePrimaryCtxRetain(&context, device)) return false;
    return cuCtxSetCurrent(context) == 0;
}

void *cuda_stream(void)
{
    void *s;
    CHECK(cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */));
    return s;
}

void cuda_stream_free(void *stream) { CHECK(cuStreamDestroy_v2(stream)); }
void cuda_sync(void *stream) { CHECK(cuStreamSynchronize(stream)); }

void *cuda_alloc(size_t bytes)
{
    uint64_t p;
    CHECK(cuMemAlloc_v2(&p, bytes ? bytes : 1));
    return (void *)(uintptr_t)p;
}

void cuda_free(void *device) { CHECK(cuMemFree_v2((uint64_t)(uintptr_t)device)); }
void cuda_upload(void *device, const void *host, size_t bytes) { CHECK(cuMemcpyHtoD_v2((uint64_t)(uintptr_t)device, host, bytes)); }
void cuda_download(void *host, const void *device, size_t bytes) { CHECK(cuMemcpyDtoH_v2(host, (uint64_t)(uintptr_t)device, bytes)); }

void cuda_upload_async(void *device, const void *host, size_t bytes, void *stream)
{
    CHECK(cuMemcpyHtoDAsync_v2((uint64_t)(uintptr_t)device, host, bytes, stream));
}

void cuda_capture_begin(void *stream) { CHECK(cuStreamBeginCapture_v2(stream, 0 /* global */)); }

void *cuda_capture_end(void *stream)
{
    void *graph, *exec;
    CHECK(cuStreamEndCapture(stream, &graph));
    CHECK(cuGraphInstantiateWithFlags(&exec, graph, 0));
    CHECK(cuGraphDestroy(graph));
    return exec;
}

void cuda_graph_launch(void *graph, void *stream) { CHECK(cuGraphLaunch(graph, stream)); }
void cuda_graph_free(void *graph) { CHECK(cuGraphExecDestroy(graph)); }
