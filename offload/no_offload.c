/*
 * The GPU backend of a CPU-only build (TOPK_GPU=OFF): there is no device image and no libomptarget,
 * so there is never a usable device, TOPK_OFFLOAD_HOST included.
 */
#include <stddef.h>

#include "internal.h"
#include "sample.h"
#include "speculative.h"

topk_status topk_gpu_open(topk_gpu **gpu, int device)
{
    (void)device;
    *gpu = NULL;
    return TOPK_ERR_NO_DEVICE;
}

void topk_gpu_close(topk_gpu *gpu) { (void)gpu; }

topk_status topk_gpu_select(topk_gpu *gpu, const topk_problem *p, bool device_pointers, int64_t teams_per_row,
                            int team_threads, int shrink_at)
{
    (void)gpu;
    (void)p;
    (void)device_pointers;
    (void)teams_per_row;
    (void)team_threads;
    (void)shrink_at;
    return TOPK_ERR_NO_DEVICE;
}

topk_status topk_gpu_sample(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers, int team_threads,
                            int64_t sample_list)
{
    (void)gpu;
    (void)p;
    (void)device_pointers;
    (void)team_threads;
    (void)sample_list;
    return TOPK_ERR_NO_DEVICE;
}

topk_status topk_gpu_speculative(topk_gpu *gpu, const topk_spec_problem *p, bool device_pointers)
{
    (void)gpu;
    (void)p;
    (void)device_pointers;
    return TOPK_ERR_NO_DEVICE;
}

const char *topk_gpu_device_name(topk_gpu *gpu)
{
    (void)gpu;
    return "unknown";
}

topk_status topk_gpu_set_stream(topk_gpu *gpu, void *stream)
{
    (void)gpu;
    return stream ? TOPK_ERR_NO_DEVICE : TOPK_OK;
}

const char *topk_gpu_last_error(const topk_gpu *gpu)
{
    (void)gpu;
    return "";
}
