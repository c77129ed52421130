/*
 * One case's data and one backend's measurement of it: the input (seeded, or a .npy matrix), the
 * reference backend's answer, the timed calls into poisoned outputs, the check of the last call's bits,
 * the read floor, and the stage profile. topk_bench.c and autotune.c both measure through here, so
 * every number either prints was checked.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void select_or_exit(topk_ctx *ctx, const case_data *d, const void *input, unsigned flags, void *values,
                           int64_t *indices)
{
    const bench_case *c = &d->shape;
    topk_status s = topk_select(ctx, input, c->dtype, c->batch, c->vocab, d->stride, c->k, flags, values, indices);
    if (s != TOPK_OK) {
        fprintf(stderr, "topk-bench: %s backend, %lld x %lld, k %lld, %s: %s\n",
                topk_backend_name(topk_ctx_backend(ctx)), (long long)c->batch, (long long)c->vocab, (long long)c->k,
                dtype_name(c->dtype), topk_strerror(s));
        exit(1);
    }
}

/* The reference backend sorts every row on one thread; slices of rows go to OpenMP threads here, so
 * that B = 256 rows of 262144 take seconds, not minutes. */
static void reference_answer(topk_ctx *reference, case_data *d)
{
    const bench_case *c = &d->shape;
    size_t elem = (size_t)topk_dtype_size(c->dtype);
    int64_t slices = c->batch < 64 ? c->batch : 64;
    unsigned flags = d->flags & ~TOPK_DEVICE_POINTERS;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t s = 0; s < slices; s++) {
        int64_t first = c->batch * s / slices, rows = c->batch * (s + 1) / slices - first;
        case_data slice = *d;
        slice.shape.batch = rows;
        select_or_exit(reference, &slice, (const char *)d->input + (size_t)(first * d->stride) * elem, flags,
                       (char *)d->expected_values + (size_t)(first * c->k) * elem,
                       d->expected_indices + first * c->k);
    }
}

void case_data_init(case_data *d, const bench_case *shape, int64_t stride, const void *input, uint64_t seed,
                    unsigned flags, topk_ctx *reference)
{
    *d = (case_data){.shape = *shape, .stride = stride ? stride : shape->vocab, .flags = flags};
    size_t elem = (size_t)topk_dtype_size(shape->dtype);
    int64_t outputs = shape->batch * shape->k;
    d->input_bytes = (size_t)(shape->batch * d->stride) * elem;
    d->value_bytes = (size_t)outputs * elem;
    d->index_bytes = (size_t)outputs * sizeof(int64_t);
    if (input) {
        d->input = (void *)input;
    } else {
        d->input = d->owned_input = bench_alloc_aligned(d->input_bytes);
        matrix_fill(d->owned_input, shape->dtype, shape->batch, shape->vocab, d->stride, seed);
    }
    d->expected_values = bench_alloc_aligned(d->value_bytes);
    d->expected_indices = bench_alloc_aligned(d->index_bytes);
    d->values = bench_alloc_aligned(d->value_bytes);
    d->indices = bench_alloc_aligned(d->index_bytes);
    reference_answer(reference, d);
    if (flags & TOPK_DEVICE_POINTERS) d->device_input = device_copy_in(d->input, d->input_bytes);
}

void case_data_free(case_data *d)
{
    if (d->device_input) device_free(d->device_input);
    free(d->owned_input);
    free(d->expected_values);
    free(d->expected_indices);
    free(d->values);
    free(d->indices);
}

/* One topk_select call as time_calls runs it. */
typedef struct timed_call {
    topk_ctx *ctx;
    const case_data *data;
    const void *input;
    void *values;
    int64_t *indices;
} timed_call;

static void run_timed(void *arg)
{
    const timed_call *t = arg;
    select_or_exit(t->ctx, t->data, t->input, t->data->flags, t->values, t->indices);
}

/* Median of each stage over calls made with profiling on; the knobs of the last call. */
static topk_stage_times profile_stages(topk_ctx *ctx, const timed_call *call, timing_policy policy)
{
    enum { MOST = 1000 };
    int calls = policy.iters < 3 ? 3 : policy.iters > MOST ? MOST : policy.iters;
    double *samples = bench_realloc(NULL, (size_t)calls * STAGE_COUNT * sizeof *samples);
    topk_ctx_set_param(ctx, TOPK_PARAM_PROFILE, 1);
    topk_stage_times last = {0};
    for (int i = 0; i < calls; i++) {
        run_timed((void *)call);
        topk_ctx_last_profile(ctx, &last);
        for (int f = 0; f < STAGE_COUNT; f++) samples[f * calls + i] = stage_value(&last, f);
    }
    topk_ctx_set_param(ctx, TOPK_PARAM_PROFILE, 0);
    topk_stage_times median = last; /* the knobs */
    for (int f = 0; f < STAGE_COUNT; f++)
        *(double *)((char *)&median + stage_fields[f].offset) = median_of(samples + f * calls, calls);
    free(samples);
    return median;
}

case_result case_measure(topk_ctx *ctx, case_data *d, timing_policy policy, bool profile, int floor_threads)
{
    const bench_case *c = &d->shape;
    /* All ones: NaN values and index -1, so a slot the backend forgot to write cannot pass the check. */
    memset(d->values, 0xFF, d->value_bytes);
    memset(d->indices, 0xFF, d->index_bytes);
    timed_call call = {ctx, d, d->input, d->values, d->indices};
    if (d->flags & TOPK_DEVICE_POINTERS) /* the outputs go over poisoned too */
        call = (timed_call){ctx, d, d->device_input, device_copy_in(d->values, d->value_bytes),
                            device_copy_in(d->indices, d->index_bytes)};

    case_result r = {.time = time_calls(run_timed, &call, policy), .read_floor_s = NAN};

    if (d->flags & TOPK_DEVICE_POINTERS) {
        device_copy_out(d->values, call.values, d->value_bytes);
        device_copy_out(d->indices, call.indices, d->index_bytes);
    }
    r.indices_equal = memcmp(d->indices, d->expected_indices, d->index_bytes) == 0;
    r.values_equal = memcmp(d->values, d->expected_values, d->value_bytes) == 0;
    for (int64_t i = 0; i < c->batch * c->k; i++) {
        double diff = fabs(value_as_double(d->values, c->dtype, i) - value_as_double(d->expected_values, c->dtype, i));
        /* fmax would drop a NaN difference (a poisoned slot); count it as infinitely wrong instead. */
        r.max_abs_diff = isnan(diff) ? INFINITY : fmax(r.max_abs_diff, diff);
    }
    if (profile) {
        r.profile = profile_stages(ctx, &call, policy);
        r.profiled = true;
    }
    if (d->flags & TOPK_DEVICE_POINTERS) {
        device_free(call.values);
        device_free(call.indices);
    }
    if (d->flags & TOPK_DEVICE_POINTERS) /* the rows as they lie, stride included: one contiguous copy */
        r.read_floor_s = device_copy_seconds(d->device_input, (size_t)c->batch * (size_t)d->stride *
                                                                  (size_t)topk_dtype_size(c->dtype), policy);
    else if (floor_threads > 0) {
        size_t elem = (size_t)topk_dtype_size(c->dtype);
        r.read_floor_s = read_floor_seconds(d->input, c->batch, c->vocab * (int64_t)elem, d->stride * (int64_t)elem,
                                            floor_threads, policy);
    }
    return r;
}
