/*
 * A sampling call's parameters on the device (sample_params.h).
 */
#include <stdlib.h>

#include "sample_params.h"

/* Bytes of one row's parameters as the kernel's arrays hold them: top_k, then three floats. */
#define ROW_BYTES (sizeof(int64_t) + 3 * sizeof(float))

sample_uploads sample_uploads_of(const topk_sample_problem *p, bool device_pointers)
{
    size_t n = (size_t)p->batch;
    sample_uploads up = {
        .rows = p->rows && !sample_rows_uniform(p) ? (n * ROW_BYTES + 7) / 8 * 8 : 0, /* seeds stay aligned */
        .seeds = p->seeds && !device_pointers ? n * sizeof(uint64_t) : 0,
        .offsets = p->offsets && !device_pointers ? n * sizeof(uint64_t) : 0,
    };
    up.bytes = up.rows + up.seeds + up.offsets;
    return up;
}

/* The host's resolved rows as the kernel's arrays (top_ks first, for alignment), in one buffer. */
static void *rows_as_arrays(const topk_sample_problem *p, size_t bytes)
{
    char *block = malloc(bytes);
    if (!block) return NULL;
    size_t n = (size_t)p->batch;
    int64_t *top_ks = (int64_t *)block;
    float *temperatures = (float *)(top_ks + n), *top_ps = temperatures + n, *min_ps = top_ps + n;
    for (size_t r = 0; r < n; r++) {
        top_ks[r] = p->rows[r].top_k;
        temperatures[r] = p->rows[r].temperature;
        top_ps[r] = p->rows[r].top_p;
        min_ps[r] = p->rows[r].min_p;
    }
    return block;
}

topk_status sample_upload(topk_gpu *gpu, const topk_sample_problem *p, const sample_uploads *up, char *at,
                          sample_device_params *d)
{
    /* parameters the host holds and every row shares go as scalars; device arrays go as they are */
    *d = (sample_device_params){.arrays = p->rows ? (sample_arrays){0} : p->arrays,
                                .every = p->rows ? p->rows[0] : p->every,
                                .seeds = p->seeds,
                                .offsets = p->offsets};
    topk_status s = TOPK_OK;
    if (up->rows) {
        void *block = rows_as_arrays(p, up->rows);
        if (!block) return TOPK_ERR_OUT_OF_MEMORY;
        s = topk_gpu_upload(gpu, at, block, up->rows);
        free(block);
        size_t n = (size_t)p->batch;
        d->arrays.top_ks = (const int64_t *)at;
        d->arrays.temperatures = (const float *)(at + n * sizeof(int64_t));
        d->arrays.top_ps = d->arrays.temperatures + n;
        d->arrays.min_ps = d->arrays.top_ps + n;
        at += up->rows;
    }
    if (up->seeds && s == TOPK_OK) {
        s = topk_gpu_upload(gpu, at, p->seeds, up->seeds);
        d->seeds = (const uint64_t *)at;
        at += up->seeds;
    }
    if (up->offsets && s == TOPK_OK) {
        s = topk_gpu_upload(gpu, at, p->offsets, up->offsets);
        d->offsets = (const uint64_t *)at;
    }
    return s;
}
