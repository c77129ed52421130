/*
 * A sampling call's parameters on the device (sample_params.c), for both GPU samplers: the scalars go
 * with the launch; per-row arrays in device memory are passed on as they are; per-row parameters and
 * seeds/offsets in host memory are copied to the workspace first, in one copy.
 */
#ifndef TOPK_SAMPLE_PARAMS_H
#define TOPK_SAMPLE_PARAMS_H

#include "gpu.h"
#include "sample.h"

/* Bytes to copy: the rows' parameters when the host holds them and they differ between rows, and per-row
 * seeds and offsets given in host memory (a call without device pointers). 0 for none. */
typedef struct sample_uploads {
    size_t rows, seeds, offsets, bytes; /* bytes: all three */
} sample_uploads;

/* What the kernel reads: per-row arrays in device memory (NULL: `every` serves every row), the scalars. */
typedef struct sample_device_params {
    sample_arrays arrays;
    sample_row every;
    const uint64_t *seeds, *offsets;
} sample_device_params;

sample_uploads sample_uploads_of(const topk_sample_problem *p, bool device_pointers);

/* Copies what up says to the workspace at `at` (8-byte aligned) and fills *d. Only a call on host memory
 * has anything to copy (with TOPK_DEVICE_POINTERS every per-row array is device memory), so the copy is
 * synchronous and never part of a stream or a CUDA graph. */
topk_status sample_upload(topk_gpu *gpu, const topk_sample_problem *p, const sample_uploads *up, char *at,
                          sample_device_params *d);

#endif
