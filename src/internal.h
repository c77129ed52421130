/*
 * What the API layer hands to a backend, and what each backend offers. Not installed.
 *
 * topk_select validates everything before a backend runs, so a backend may assume: pointers non-NULL,
 * 1 <= batch, 1 <= k <= vocab <= row_stride, byte offsets fit in int64, dtype known.
 */
#ifndef TOPK_INTERNAL_H
#define TOPK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "keys.h"
#include "topk.h"

/* One validated call. */
typedef struct topk_problem {
    const void *input;
    topk_dtype dtype;
    int64_t batch, vocab, row_stride, k;
    uint32_t key_flip; /* 0 for the largest; the key's all-ones mask (0xFFFFFFFF or 0xFFFF) for the smallest */
    void *values;      /* batch x k of dtype */
    int64_t *indices;  /* batch x k */
    topk_stage_times *profile; /* NULL unless the context profiles: backends add their stages' times */
} topk_problem;

/* Whether the whole input, from the first element of row 0 to the last element of row batch-1, and both
 * outputs (batch x k values of elem bytes, batch x k int64 indices) are addressable with int64 byte
 * offsets (api.c). */
bool topk_fits_in_offsets(int64_t batch, int64_t vocab, int64_t row_stride, int64_t k, int elem);

/* Seconds on a monotonic clock, for the profile's timers (profile.c). */
double topk_now(void);

/* The first element of row `row` of the input. */
static inline const char *topk_row(const topk_problem *p, int64_t row)
{
    return (const char *)p->input + (size_t)row * (size_t)p->row_stride * (size_t)topk_dtype_size(p->dtype);
}

/* The ordered key (keys.h) of element `column` of a row, flipped for smallest-first. */
static inline uint32_t topk_key_at(const topk_problem *p, const char *row, int64_t column)
{
    if (p->dtype == TOPK_F32) {
        uint32_t bits;
        memcpy(&bits, row + column * 4, 4);
        return topk_key_f32(bits) ^ p->key_flip;
    }
    uint16_t bits;
    memcpy(&bits, row + column * 2, 2);
    return (p->dtype == TOPK_F16 ? topk_key_f16(bits) : topk_key_bf16(bits)) ^ p->key_flip;
}

/* The obviously correct backend: sort every row's (key, index) pairs. */
topk_status topk_reference_select(const topk_problem *p);

/* The host-parallel backend. threads <= 0: OpenMP's default; chunk <= 0: chosen per shape. */
topk_status topk_cpu_select(const topk_problem *p, int threads, int64_t chunk);

/* The GPU backend (offload/). A topk_gpu is one context's hold on one device: its workspace and the
 * lock that makes threads sharing the context take turns. Without an offload build, or without a
 * usable device, topk_gpu_open returns TOPK_ERR_NO_DEVICE. */
typedef struct topk_gpu topk_gpu;
topk_status topk_gpu_open(topk_gpu **gpu, int device);
void topk_gpu_close(topk_gpu *gpu);
/* teams_per_row, team_threads, shrink_at: the call's knobs (TOPK_PARAM_*), 0 for the planner's choice. */
topk_status topk_gpu_select(topk_gpu *gpu, const topk_problem *p, bool device_pointers, int64_t teams_per_row,
                            int team_threads, int shrink_at);
/* Calls on device pointers enqueue on this CUDA stream from now on (NULL: synchronous calls again).
 * TOPK_ERR_NO_DEVICE without a GPU; TOPK_ERR_DEVICE_FAILURE when the device image cannot be loaded. */
topk_status topk_gpu_set_stream(topk_gpu *gpu, void *stream);
/* The driver's message for the last TOPK_ERR_DEVICE_FAILURE of a call on a stream, or "". */
const char *topk_gpu_last_error(const topk_gpu *gpu);
/* The GPU's name for tuning tables ("NVIDIA H200"; tuning.c turns anything but letters, digits, '.'
 * and '_' into '-'), or "unknown". Never NULL. */
const char *topk_gpu_device_name(topk_gpu *gpu);

/* Tuning tables (tuning.c): the rows of one table that apply to one backend on one device. */
typedef struct topk_tuning topk_tuning;
/* Loads the table for a backend and its device (TOPK_TUNING_FILE, else the built-in ones) into
 * *tuning, NULL when nothing applies, and writes the device's name to device (size bytes).
 * TOPK_ERR_BAD_ENV for a malformed or unreadable file. */
topk_status topk_tuning_load(topk_tuning **tuning, topk_backend backend, topk_gpu *gpu, char *device, size_t size);
void topk_tuning_free(topk_tuning *tuning);
/* The measured best value of a knob (TOPK_PARAM_THREADS, _CHUNK, _TEAMS_PER_ROW) for the nearest shape,
 * or 0 when the table has no shape near enough (or tuning is NULL). */
int64_t topk_tuning_choose(const topk_tuning *tuning, topk_param param, const topk_problem *p);

struct topk_ctx {
    topk_backend backend; /* resolved: never AUTO */
    int64_t threads, device, teams_per_row, chunk, profile, team_threads, shrink_at, sample_list; /* the knobs (knobs.h) */
    topk_gpu *gpu;       /* NULL unless backend is OFFLOAD */
    topk_tuning *tuning; /* NULL when no tuning table applies */
    char tuning_device[128]; /* the device column tables are matched on */
    bool profiled;       /* last_profile holds a call */
    topk_stage_times last_profile;
};

#endif
