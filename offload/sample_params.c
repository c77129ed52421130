/*
 * A sampling call's parameters on the device (sample_params.h).
 */
#include "sample_params.h"

sample_uploads sample_uploads_of(const topk_sample_problem *p, bool uniform, bool device_pointers)
{
    size_t n = (size_t)p->batch;
    sample_uploads up = {
        .rows = uniform ? 0 : n * sizeof(sample_row),
        .seeds = p->seeds && !device_pointers ? n * sizeof(uint64_t) : 0,
        .offsets = p->offsets && !device_pointers ? n * sizeof(uint64_t) : 0,
    };
    up.bytes = up.rows + up.seeds + up.offsets;
    return up;
}

topk_status sample_upload(topk_gpu *gpu, void *stream, const topk_sample_problem *p, const sample_uploads *up,
                          char *at, sample_device_params *d)
{
    *d = (sample_device_params){NULL, p->seeds, p->offsets};
    topk_status s = TOPK_OK;
    if (up->rows && s == TOPK_OK) {
        s = topk_gpu_upload(gpu, stream, at, p->rows, up->rows);
        d->rows = (const sample_row *)at;
        at += up->rows;
    }
    if (up->seeds && s == TOPK_OK) {
        s = topk_gpu_upload(gpu, stream, at, p->seeds, up->seeds);
        d->seeds = (const uint64_t *)at;
        at += up->seeds;
    }
    if (up->offsets && s == TOPK_OK) {
        s = topk_gpu_upload(gpu, stream, at, p->offsets, up->offsets);
        d->offsets = (const uint64_t *)at;
    }
    return s;
}
