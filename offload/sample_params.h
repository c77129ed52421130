/*
 * A sampling call's parameters on the device (sample_params.c), for both GPU samplers: the scalars go
 * with the launch; what is an array and in host memory is copied to the workspace first.
 */
#ifndef TOPK_SAMPLE_PARAMS_H
#define TOPK_SAMPLE_PARAMS_H

#include "gpu.h"
#include "sample.h"

/* Bytes to copy: the rows' parameters when they differ (always host memory), and per-row seeds and
 * offsets given in host memory (a call without device pointers). 0 for none. */
typedef struct sample_uploads {
    size_t rows, seeds, offsets, bytes; /* bytes: all three */
} sample_uploads;

/* What the kernel reads: each a device address, or NULL for "the scalar for every row". */
typedef struct sample_device_params {
    const sample_row *rows;
    const uint64_t *seeds, *offsets;
} sample_device_params;

sample_uploads sample_uploads_of(const topk_sample_problem *p, bool uniform, bool device_pointers);

/* Copies what up says to the workspace at `at` (on `stream`, or synchronously when NULL) and fills *d. */
topk_status sample_upload(topk_gpu *gpu, void *stream, const topk_sample_problem *p, const sample_uploads *up,
                          char *at, sample_device_params *d);

#endif
