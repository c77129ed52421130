/*
 * What topk_chain_speculative_sample (speculative_api.c) hands to a backend, validated: pointers non-NULL
 * (accepted, emitted may be NULL), 1 <= batch, S, vocab with batch, vocab <= 2^32 - 1 and every array's
 * bytes within int64, and draft tokens in [0, vocab) where the host can read them. Not installed.
 */
#ifndef TOPK_SPECULATIVE_H
#define TOPK_SPECULATIVE_H

#include "internal.h"
#include "speculative_math.h"

typedef struct topk_spec_problem {
    const float *draft, *target;   /* B x S x V, B x (S + 1) x V */
    const int64_t *ids;            /* B x S */
    int64_t batch, S, vocab;
    uint64_t seed, offset;
    const uint64_t *seeds, *offsets; /* per row or NULL; device memory when the call has device pointers */
    int64_t *out, *accepted, *emitted;
} topk_spec_problem;

/* The cpu backend (cpu/speculative_cpu.c): threads <= 0 means OpenMP's default. */
topk_status topk_cpu_speculative(const topk_spec_problem *p, int threads);

/* The offload backend (offload/speculative_gpu.c): one target region per call. */
topk_status topk_gpu_speculative(topk_gpu *gpu, const topk_spec_problem *p, bool device_pointers);

#endif
