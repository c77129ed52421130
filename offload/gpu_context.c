/*
 * Opening and closing a context's hold on a device, and its workspace (gpu.h).
 *
 * TOPK_OFFLOAD_HOST=1 makes the host the "device": the same target regions then run through OpenMP's
 * host fallback, so machines without a GPU test the kernel code itself.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

#define TOPK_DEFAULT_SM_COUNT 132

static bool offload_on_host(void)
{
    const char *text = getenv("TOPK_OFFLOAD_HOST");
    return text && strcmp(text, "1") == 0;
}

/* Resolves the device number and checks that a region really runs there. */
static topk_status find_device(int asked, int *device)
{
    int d = asked <= 0 ? omp_get_default_device() : asked;
    /* before anything makes the device's context: libomptarget then keeps our scheduling flag */
    topk_cuda_prefer_spin(d);
    if (d < 0 || d >= omp_get_num_devices()) return TOPK_ERR_NO_DEVICE;
    int on_initial = 1;
#pragma omp target device(d) map(tofrom : on_initial)
    on_initial = omp_is_initial_device();
    if (on_initial) return TOPK_ERR_NO_DEVICE;
    *device = d;
    return TOPK_OK;
}

topk_status topk_gpu_open(topk_gpu **out, int device)
{
    *out = NULL;
    bool on_host = offload_on_host();
    int d = omp_get_initial_device();
    if (!on_host) {
        topk_status s = find_device(device, &d);
        if (s != TOPK_OK) return s;
    }
    topk_gpu *gpu = calloc(1, sizeof *gpu);
    if (!gpu) return TOPK_ERR_OUT_OF_MEMORY;
    gpu->device = d;
    gpu->on_host = on_host;
    if (on_host)
        strcpy(gpu->name, "host");
    else
        topk_cuda_device_name(d, gpu->name, (int)sizeof gpu->name);
    if (!gpu->name[0]) strcpy(gpu->name, "unknown");
    gpu->sm_count = on_host ? 0 : topk_cuda_sm_count(d);
    if (gpu->sm_count <= 0) gpu->sm_count = TOPK_DEFAULT_SM_COUNT;
    if (pthread_mutex_init(&gpu->lock, NULL) != 0) {
        free(gpu);
        return TOPK_ERR_OUT_OF_MEMORY;
    }
    *out = gpu;
    return TOPK_OK;
}

const char *topk_gpu_device_name(topk_gpu *gpu) { return gpu ? gpu->name : "unknown"; }

void topk_gpu_close(topk_gpu *gpu)
{
    if (!gpu) return;
    topk_gpu_close_streams(gpu);
    if (gpu->sync.scratch) omp_target_free(gpu->sync.scratch, gpu->device);
    if (gpu->sync.tickets) omp_target_free(gpu->sync.tickets, gpu->device);
    pthread_mutex_destroy(&gpu->lock);
    free(gpu);
}

size_t topk_grown(size_t needed) { return (needed + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1); }

/* The synchronous calls' workspace, through libomptarget. */
static topk_status reserve_sync(topk_gpu *gpu, size_t scratch_bytes, size_t ticket_bytes)
{
    topk_workspace *w = &gpu->sync;
    if (scratch_bytes > w->scratch_bytes) {
        if (w->scratch) omp_target_free(w->scratch, gpu->device);
        w->scratch_bytes = 0;
        w->scratch = omp_target_alloc(topk_grown(scratch_bytes), gpu->device);
        if (!w->scratch) return TOPK_ERR_OUT_OF_MEMORY;
        w->scratch_bytes = topk_grown(scratch_bytes);
    }
    if (ticket_bytes > w->ticket_bytes) {
        size_t bytes = topk_grown(ticket_bytes);
        void *zeros = calloc(1, bytes);
        if (!zeros) return TOPK_ERR_OUT_OF_MEMORY;
        if (w->tickets) omp_target_free(w->tickets, gpu->device);
        w->ticket_bytes = 0;
        w->tickets = omp_target_alloc(bytes, gpu->device);
        int copied = w->tickets ? omp_target_memcpy(w->tickets, zeros, bytes, 0, 0, gpu->device,
                                                    omp_get_initial_device())
                                : -1;
        free(zeros);
        if (!w->tickets) return TOPK_ERR_OUT_OF_MEMORY;
        if (copied != 0) return TOPK_ERR_DEVICE_FAILURE;
        w->ticket_bytes = bytes;
    }
    return TOPK_OK;
}

topk_status topk_gpu_workspace(topk_gpu *gpu, void *stream, size_t scratch_bytes, size_t ticket_bytes,
                               topk_workspace **out)
{
    /* Some workspace even for a call that needs none: the kernel offsets its bases, and NULL + 0 is
     * undefined behaviour (UBSan stops there). */
    if (scratch_bytes == 0) scratch_bytes = 1;
    if (ticket_bytes == 0) ticket_bytes = 1;
    if (stream) return topk_gpu_stream_workspace(gpu, stream, scratch_bytes, ticket_bytes, out);
    *out = &gpu->sync;
    return reserve_sync(gpu, scratch_bytes, ticket_bytes);
}

topk_status topk_gpu_upload(topk_gpu *gpu, void *to, const void *from, size_t bytes)
{
    return omp_target_memcpy(to, from, bytes, 0, 0, gpu->device, omp_get_initial_device()) == 0
               ? TOPK_OK
               : TOPK_ERR_DEVICE_FAILURE;
}
