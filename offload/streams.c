/*
 * A context's calls on CUDA streams (topk_ctx_set_stream): the stream, and a workspace per stream.
 *
 * Calls on one stream run in the stream's order, so they share one workspace; calls on two streams may
 * overlap, so each stream has its own. A buffer that a call on a stream was given is never freed while
 * the context lives: the call may still be running when the host moves on, and a CUDA graph that
 * captured it replays with the same addresses. So a workspace that must grow keeps its old buffers on
 * the retired list, and topk_ctx_free frees them after waiting for the streams.
 *
 * Allocation goes through the driver with the thread's capture mode relaxed, so that a first call
 * inside a stream capture may still make its workspace (the allocation is not part of the graph); the
 * tickets are zeroed by a memset on the stream itself, which a capture records and replays harmlessly
 * (every call leaves them zero).
 */
#include <stdlib.h>

#include "cuda_driver.h"
#include "gpu.h"
#include "launcher.h"

static void retire(topk_gpu *gpu, void *buffer)
{
    if (!buffer) return;
    topk_retired *r = malloc(sizeof *r);
    if (!r) return; /* leaked rather than freed under a running kernel */
    r->buffer = buffer;
    r->next = gpu->retired;
    gpu->retired = r;
}

/* The workspace of `stream`, making one (in place of the oldest when all are taken). */
static topk_workspace *stream_slot(topk_gpu *gpu, void *stream)
{
    for (int i = 0; i < TOPK_STREAM_WORKSPACES; i++)
        if (gpu->streams[i].used && gpu->streams[i].stream == stream) return &gpu->streams[i];
    topk_workspace *w = NULL;
    for (int i = 0; i < TOPK_STREAM_WORKSPACES && !w; i++)
        if (!gpu->streams[i].used) w = &gpu->streams[i];
    if (!w) {
        w = &gpu->streams[gpu->next_evicted];
        gpu->next_evicted = (gpu->next_evicted + 1) % TOPK_STREAM_WORKSPACES;
        retire(gpu, w->scratch);
        retire(gpu, w->tickets);
    }
    *w = (topk_workspace){.stream = stream, .used = true};
    return w;
}

static topk_status grow(topk_gpu *gpu, void *stream, void **buffer, size_t *have, size_t needed, bool zeroed)
{
    if (needed <= *have) return TOPK_OK;
    const topk_cuda_api *cu = topk_cuda();
    size_t bytes = topk_grown(needed);
    topk_cuda_scope scope;
    topk_status s = topk_cuda_enter(gpu, &scope, true);
    if (s != TOPK_OK) return s;
    CUdeviceptr p = 0;
    CUresult r = cu->cuMemAlloc_v2(&p, bytes);
    if (!r && zeroed) r = cu->cuMemsetD8Async(p, 0, bytes, (CUstream)stream);
    topk_cuda_leave(&scope);
    if (r) {
        topk_cuda_message(r, "workspace", gpu->error, sizeof gpu->error);
        return p ? TOPK_ERR_DEVICE_FAILURE : TOPK_ERR_OUT_OF_MEMORY;
    }
    retire(gpu, *buffer);
    *buffer = (void *)(uintptr_t)p;
    *have = bytes;
    return TOPK_OK;
}

topk_status topk_gpu_stream_workspace(topk_gpu *gpu, void *stream, size_t scratch_bytes, size_t ticket_bytes,
                                      topk_workspace **out)
{
    topk_workspace *w = stream_slot(gpu, stream);
    topk_status s = grow(gpu, stream, &w->scratch, &w->scratch_bytes, scratch_bytes, false);
    if (s == TOPK_OK) s = grow(gpu, stream, &w->tickets, &w->ticket_bytes, ticket_bytes, true);
    *out = w;
    return s;
}

topk_status topk_gpu_set_stream(topk_gpu *gpu, void *stream)
{
    if (stream && gpu->on_host) return TOPK_ERR_NO_DEVICE;
    topk_status s = stream ? topk_launcher_open(gpu) : TOPK_OK;
    if (s != TOPK_OK) return s;
    pthread_mutex_lock(&gpu->lock);
    gpu->stream = stream;
    pthread_mutex_unlock(&gpu->lock);
    return TOPK_OK;
}

const char *topk_gpu_last_error(const topk_gpu *gpu) { return gpu ? gpu->error : ""; }

void topk_gpu_close_streams(topk_gpu *gpu)
{
    const topk_cuda_api *cu = topk_cuda();
    bool any = gpu->retired;
    for (int i = 0; i < TOPK_STREAM_WORKSPACES; i++) any = any || gpu->streams[i].used;
    if (!any || !cu) return;
    topk_cuda_scope scope;
    if (topk_cuda_enter(gpu, &scope, true) != TOPK_OK) return;
    /* The whole context, not each stream: the caller may have destroyed a stream by now, and a destroyed
     * handle must not reach the driver (it crashed there on the H100). */
    cu->cuCtxSynchronize();
    for (int i = 0; i < TOPK_STREAM_WORKSPACES; i++) {
        topk_workspace *w = &gpu->streams[i];
        if (!w->used) continue;
        retire(gpu, w->scratch);
        retire(gpu, w->tickets);
    }
    while (gpu->retired) {
        topk_retired *r = gpu->retired;
        cu->cuMemFree_v2((CUdeviceptr)(uintptr_t)r->buffer);
        gpu->retired = r->next;
        free(r);
    }
    topk_cuda_leave(&scope);
}
