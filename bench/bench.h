/*
 * What the files of topk-bench share. Each .c file has one job:
 *   topk_bench.c   the flags and the loop over cases and backends
 *   flags.c        the command line, read from a table of flags that also prints --help
 *   cases.c        the named matrices of cases (--matrix)
 *   matrix_data.c  the input data, which bench/peers/common.py reproduces bit for bit
 *   npy.c          real logits from a .npy file (--input; npy.h)
 *   measure.c      one case's data, the reference answer, and one backend's checked measurement
 *   timing.c       how many times a call runs and what its samples say
 *   read_floor.c   the machine's read bandwidth over the same bytes, the bar a selection is held to
 *   report.c       the readable table, --csv and --json
 *   plot.c         --plot: gnuplot charts of time against batch and vocab, from this run or CSV files
 *   autotune.c     --autotune: sweeps the knobs and writes a tuning table (tuning/README.md)
 *   device_memory.c          GPU buffers for --device-pointers (TOPK_GPU=ON builds)
 *   device_memory_absent.c   the same, saying why not (TOPK_GPU=OFF builds)
 */
#ifndef TOPK_BENCH_H
#define TOPK_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "topk.h"

/* realloc (malloc when old is NULL) that reports a failure and exits: the bench cannot go on without
 * its buffers. bench_alloc_aligned: the same, 64-byte aligned, for free(). */
void *bench_realloc(void *old, size_t bytes);
void *bench_alloc_aligned(size_t bytes);

/* flags.c: each program lists its flags once, in a table; flags_parse reads argv against it and --help
 * prints it, so the help cannot drift from what is parsed. Every flag takes its value as the next
 * argument. */
typedef enum flag_kind {
    FLAG_INT64,  /* int64_t field, within [min, max] */
    FLAG_INT,    /* int field, within [min, max] */
    FLAG_DOUBLE, /* double field, within [least, most] */
    FLAG_FLOAT,  /* float field, within [least, most] */
    FLAG_STRING, /* const char * field: the argument itself */
    FLAG_CHOICE, /* int field: the value's index in choices */
    FLAG_ON,     /* bool field set true; the flag takes no value */
    FLAG_OFF,    /* bool field set false; the flag takes no value */
    FLAG_CUSTOM, /* parse(field, value, why, size) reads it, or says why not and returns false */
} flag_kind;

typedef struct flag {
    const char *name;  /* "--batch"; NULL makes the entry a heading of the usage, its help the text */
    flag_kind kind;
    void *field;
    const char *arg;   /* the value's name in the usage ("N", "FILE"); NULL for FLAG_ON / FLAG_OFF */
    const char *help;  /* may span lines ('\n'); the usage indents the later ones */
    bool show_default; /* the usage appends "(default X)", X the field's value before parsing */
    int64_t min, max;  /* FLAG_INT64, FLAG_INT */
    double least, most; /* FLAG_DOUBLE, FLAG_FLOAT; most may be INFINITY */
    const char *const *choices; /* FLAG_CHOICE: the names, NULL-terminated */
    bool (*parse)(void *field, const char *value, char *why, size_t size); /* FLAG_CUSTOM */
    int given;         /* set by flags_parse: how many times the command line gave the flag */
} flag;

typedef struct flag_table {
    const char *program; /* names the messages: "topk-bench: --batch x: expected ..." */
    const char *summary; /* the usage's lines after "usage: PROGRAM [flags]" */
    const char *footer;  /* the usage's lines after the flags, or NULL */
    flag *flags;
    size_t count;
} flag_table;

/* Reads argv into the table's fields. --help prints the usage and exits 0; an unknown flag, a missing or
 * malformed value or one out of range prints why and exits 2. A later flag overrides an earlier one,
 * except that FLAG_CUSTOM's parse decides (it may collect every value). */
void flags_parse(flag_table *t, int argc, char **argv);
void flags_usage(const flag_table *t, FILE *out);
bool flag_given(const flag_table *t, const char *name);
/* A bad command line that the table cannot see (flags that exclude each other): prints the message as
 * flags_parse does and exits 2. */
_Noreturn void flags_fail(const flag_table *t, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* One shape to measure. */
typedef struct bench_case {
    int64_t batch, vocab, k;
    topk_dtype dtype;
} bench_case;

/* cases.c: fills *cases (malloc'd) with the cases of a named matrix, each shape once. Returns the count,
 * or 0 for an unknown name. matrix_name(i) is the i-th name ("all" last), NULL past the last. */
size_t matrix_cases(const char *name, bench_case **cases);
const char *matrix_name(size_t i);

/* The dtype names of the flags and the CSV ("fp32", "fp16", "bf16"); parse returns -1 for others.
 * dtype_choices: the names by topk_dtype, NULL-terminated, for a FLAG_CHOICE. */
const char *dtype_name(topk_dtype dtype);
int dtype_parse(const char *name);
extern const char *const dtype_choices[4];

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
/* Seconds on the monotonic clock; the median of n samples (sorted in place). */
double bench_now(void);
double median_of(double *samples, int64_t n);

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
/* The median time of a device-to-device copy of `bytes` from device_src (omp_target_memcpy, synchronous
 * like a topk_select call, under the policy): the GPU rows' floor, as read_floor_seconds is the host's. */
double device_copy_seconds(const void *device_src, size_t bytes, timing_policy policy);

/* measure.c: a case's input, the reference backend's answer, and buffers for a backend's outputs. */
typedef struct case_data {
    bench_case shape;
    int64_t stride;
    unsigned flags;                /* TOPK_SMALLEST, TOPK_DEVICE_POINTERS */
    const void *input;             /* host, batch x stride */
    void *owned_input;             /* input when seeded here; NULL when it came from a file */
    void *device_input;            /* a device copy with TOPK_DEVICE_POINTERS */
    void *expected_values, *values;
    int64_t *expected_indices, *indices;
    size_t input_bytes, value_bytes, index_bytes;
} case_data;

/* input: the caller's host matrix (a .npy file's), or NULL to fill one from seed (matrix_data.c).
 * stride 0: vocab. The reference answer is computed here. Failures report and exit. */
void case_data_init(case_data *d, const bench_case *shape, int64_t stride, const void *input, uint64_t seed,
                    unsigned flags, topk_ctx *reference);
void case_data_free(case_data *d);

typedef struct case_result {
    timing_summary time;
    double read_floor_s; /* NAN when not measured (the offload backend: a host read says nothing of a GPU) */
    double max_abs_diff;
    bool indices_equal, values_equal;
    bool profiled;
    topk_stage_times profile; /* medians of each stage over profiled calls made after the timed ones */
} case_result;

/* Times ctx on the case under the policy, checks the last timed call's outputs against the reference,
 * then (profile) repeats the calls with TOPK_PARAM_PROFILE on, and (floor_threads > 0) times the read
 * floor with that many threads. */
case_result case_measure(topk_ctx *ctx, case_data *d, timing_policy policy, bool profile, int floor_threads);

/* report.c: one measured row, as every output format sees it. */
typedef struct bench_row {
    const char *backend; /* "cpu", "offload", ... */
    const char *input;   /* "seeded" or the .npy file's path */
    bench_case shape;
    int64_t stride;
    bool smallest;
    int threads;
    case_result r;
} bench_row;

typedef enum report_format { REPORT_TABLE, REPORT_CSV, REPORT_JSON } report_format;
/* The stages of topk_stage_times (each a double of microseconds), in the CSV's order: its names and places. */
typedef struct stage_field {
    const char *name;
    size_t offset;
} stage_field;
enum { STAGE_COUNT = 11 };
extern const stage_field stage_fields[STAGE_COUNT];
static inline double stage_value(const topk_stage_times *t, int i)
{
    return *(const double *)((const char *)t + stage_fields[i].offset);
}
void report_begin(report_format format, bool profile);
void report_row(report_format format, const bench_row *row);
void report_end(report_format format);

/* plot.c: one point of a chart. source: "cpu", "offload", "torch-2.1-cuda", "torch-2.1-cuda graph", ... */
typedef struct plot_point {
    char source[64];
    int64_t batch, vocab, k;
    char dtype[8];
    double us;
} plot_point;

/* Appends the points of a topk-bench or peer CSV file (columns backend or peer, batch, vocab, k, dtype,
 * median_us, and graph_median_us as a second source). Returns false with a message when it cannot. */
bool plot_read_csv(const char *path, plot_point **points, size_t *count, char *message, size_t size);
/* Draws time against batch and against vocab, one line per source and fixed other dimensions, into a
 * PNG with gnuplot. Returns false with a message when gnuplot is missing or fails. */
bool plot_png(const char *png, const char *title, const plot_point *points, size_t count, char *message,
              size_t size);

/* autotune.c: sweeps the backend's knobs on each case, checks every result against the reference, and
 * writes every measurement to a tuning table at path. Returns the exit status. */
typedef struct autotune_job {
    const char *path;
    topk_ctx *ctx, *reference;
    const bench_case *cases;
    size_t count;
    uint64_t seed;
    unsigned flags;
    timing_policy timing;
    const char *command; /* recorded in the table's comments */
} autotune_job;
int autotune(const autotune_job *job);

#endif
