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

/* The call's parameters as the locals its regions capture by name (d: a sample_device_params). */
#define SAMPLE_PARAM_LOCALS(d)                                                                           \
    int64_t top_k = (d).every.top_k;                                                                     \
    float temperature = (d).every.temperature, top_p = (d).every.top_p, min_p = (d).every.min_p;          \
    const float *temperatures = (d).arrays.temperatures, *top_ps = (d).arrays.top_ps;                    \
    const float *min_ps = (d).arrays.min_ps;                                                             \
    const int64_t *top_ks = (d).arrays.top_ks;                                                           \
    const uint64_t *seeds = (d).seeds, *offsets = (d).offsets;

/* A launch site's logprobs outputs (topk_sample_logprobs) as the scalars its regions capture, from the
 * problem `sp` with `batch` rows: the pointers, and for mapped regions the element counts of each. A stream
 * launch site names each in its TOPK_KERNEL_ARG list (ci/launcher-check reads those names there). */
#define SAMPLE_LOGPROBS_LOCALS(sp)                                                                       \
    float *lp_raw = (sp)->lp.raw, *lp_processed = (sp)->lp.processed, *top_logprobs = (sp)->lp.top_logprobs; \
    int64_t top_n = (sp)->lp.top_n, *top_tokens = (sp)->lp.top_tokens;                                  \
    int64_t raw_count = lp_raw ? batch : 0, processed_count = lp_processed ? batch : 0;                  \
    int64_t top_token_count = top_tokens ? batch * top_n : 0, top_logprob_count = top_logprobs ? batch * top_n : 0; \
    (void)raw_count, (void)processed_count, (void)top_token_count, (void)top_logprob_count;
#define SAMPLE_LOGPROBS_POINTERS lp_raw, lp_processed, top_tokens, top_logprobs
#define SAMPLE_LOGPROBS_MAP                                                                              \
    map(from : lp_raw[0 : raw_count], lp_processed[0 : processed_count], top_tokens[0 : top_token_count], \
                top_logprobs[0 : top_logprob_count])
#define SAMPLE_LOGPROBS_VALUE ((sample_logprobs){lp_raw, lp_processed, top_n, top_tokens, top_logprobs})

sample_uploads sample_uploads_of(const topk_sample_problem *p, bool device_pointers);

/* Copies what up says to the workspace at `at` (8-byte aligned) and fills *d. Only a call on host memory
 * has anything to copy (with TOPK_DEVICE_POINTERS every per-row array is device memory), so the copy is
 * synchronous and never part of a stream or a CUDA graph. */
topk_status sample_upload(topk_gpu *gpu, const topk_sample_problem *p, const sample_uploads *up, char *at,
                          sample_device_params *d);

#endif
