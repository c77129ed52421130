/*
 * What the files of topk-bench share. Each .c file has one job:
 *   topk_bench.c   the flags, the case loop and the report
 *   cases.c        the named matrices of cases (--matrix)
 *   matrix_data.c  the input data, which bench/peers/torch_topk.py reproduces bit for bit
 *   timing.c       how many times a call runs and what its samples say
 *   read_floor.c   the machine's read bandwidth over the same bytes, the bar a selection is held to
 *   device_memory.c          GPU buffers for --device-pointers (TOPK_GPU=ON builds)
 *   device_memory_absent.c   the same, saying why not (TOPK_GPU=OFF builds)
 */
#ifndef TOPK_BENCH_H
#define TOPK_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "topk.h"

/* realloc (malloc when old is NULL) that reports a failure and exits: the bench cannot go on without
 * its buffers. */
void *bench_realloc(void *old, size_t bytes);

/* One shape to measure. */
typedef struct bench_case {
    int64_t batch, vocab, k;
    topk_dtype dtype;
} bench_case;

/* cases.c: fills *cases (malloc'd) with the cases of a named matrix. Returns the count, or 0 for an
 * unknown name. matrix_name(i) is the i-th name, NULL past the last: for --help. */
size_t matrix_cases(const char *name, bench_case **cases);
const char *matrix_name(size_t i);

/* The dtype names of the flags and the CSV ("fp32", "fp16", "bf16"); parse returns -1 for others. */
const char *dtype_name(topk_dtype dtype);
int dtype_parse(const char *name);

/* matrix_data.c: fills batch rows of row_stride elements of dtype (see the file for the exact recipe). */
void matrix_fill(void *data, topk_dtype dtype, int64_t batch, int64_t vocab, int64_t row_stride, uint64_t seed);

/* A stored value as a double: how max_abs_diff compares values of any dtype. */
double value_as_double(const void *values, topk_dtype dtype, int64_t i);

/* timing.c: how long to time one call. */
typedef struct timing_policy {
    int warmup;      /* untimed calls first */
    int iters;       /* at least this many samples ... */
    double min_time; /* ... and at least this many seconds of calls, so fast calls get many samples ... */
    double max_time; /* ... unless this many seconds pass first (0: no limit); never fewer than 3 samples */
} timing_policy;

typedef struct timing_summary {
    int64_t samples;
    double median_s, min_s, max_s;
} timing_summary;

/* Runs call(arg) under the policy and summarises the time of each call. */
timing_summary time_calls(void (*call)(void *arg), void *arg, timing_policy policy);

/* read_floor.c: the median time of reading the same bytes as the selection (the first vocab elements
 * of each row) with `threads` OpenMP threads, under the same policy. */
double read_floor_seconds(const void *data, int64_t batch, int64_t row_bytes, int64_t stride_bytes, int threads,
                          timing_policy policy);

/* device_memory.c: why GPU buffers cannot be had here, or NULL when they can; then copies of host
 * buffers on the default device, copies back, and frees. Failures report and exit. */
const char *device_memory_unavailable(void);
void *device_copy_in(const void *host, size_t bytes);
void device_copy_out(void *host, const void *device_ptr, size_t bytes);
void device_free(void *device_ptr);

#endif
