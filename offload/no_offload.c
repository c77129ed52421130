/*
 * The GPU backend of a CPU-only build (TOPK_GPU=OFF): there is no device image and no libomptarget,
 * so there is never a usable device, TOPK_OFFLOAD_HOST included.
 */
#include <stddef.h>

#include "internal.h"
#include "sample.h"

topk_status topk_gpu_open(topk_gpu **gpu, int device, int team_threads)
{
    (void)device;
    (void)team_threads;
    *gpu = NULL;
    return TOPK_ERR_NO_DEVICE;
}

void topk_gpu_close(topk_gpu *gpu) { (void)gpu; }

void topk_gpu_set_team_threads(topk_gpu *gpu, int team_threads)
{
    (void)gpu;
    (void)team_threads;
}

topk_status topk_gpu_select(topk_gpu *gpu, const topk_problem *p, bool device_pointers, int64_t teams_per_row)
{
    (void)gpu;
    (void)p;
    (void)device_pointers;
    (void)teams_per_row;
    return TOPK_ERR_NO_DEVICE;
}

topk_status topk_gpu_sample(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers)
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
