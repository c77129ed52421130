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
    if (gpu->scratch) omp_target_free(gpu->scratch, gpu->device);
    if (gpu->tickets) omp_target_free(gpu->tickets, gpu->device);
    pthread_mutex_destroy(&gpu->lock);
    free(gpu);
}

/* Rounds a reservation up so that slowly growing calls do not reallocate every time. */
static size_t grown(size_t needed) { return (needed + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1); }

topk_status topk_gpu_reserve(topk_gpu *gpu, size_t scratch_bytes, size_t ticket_bytes)
{
    /* Some workspace even for a call that needs none: the kernel offsets its bases, and NULL + 0 is
     * undefined behaviour (UBSan stops there). */
    if (scratch_bytes == 0) scratch_bytes = 1;
    if (ticket_bytes == 0) ticket_bytes = 1;
    if (scratch_bytes > gpu->scratch_bytes) {
        if (gpu->scratch) omp_target_free(gpu->scratch, gpu->device);
        gpu->scratch_bytes = 0;
        gpu->scratch = omp_target_alloc(grown(scratch_bytes), gpu->device);
        if (!gpu->scratch) return TOPK_ERR_OUT_OF_MEMORY;
        gpu->scratch_bytes = grown(scratch_bytes);
    }
    if (ticket_bytes > gpu->ticket_bytes) {
        size_t bytes = grown(ticket_bytes);
        void *zeros = calloc(1, bytes);
        if (!zeros) return TOPK_ERR_OUT_OF_MEMORY;
        if (gpu->tickets) omp_target_free(gpu->tickets, gpu->device);
        gpu->ticket_bytes = 0;
        gpu->tickets = omp_target_alloc(bytes, gpu->device);
        int copied = gpu->tickets ? omp_target_memcpy(gpu->tickets, zeros, bytes, 0, 0, gpu->device,
                                                      omp_get_initial_device())
                                  : -1;
        free(zeros);
        if (!gpu->tickets) return TOPK_ERR_OUT_OF_MEMORY;
        if (copied != 0) return TOPK_ERR_DEVICE_FAILURE;
        gpu->ticket_bytes = bytes;
    }
    return TOPK_OK;
}
