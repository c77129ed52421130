/*
 * How many times a call runs, and what its samples say.
 *
 * Each call is timed on its own, so the median and the minimum are not blurred by an average: the median
 * is the figure we report, the minimum what the call can do when nothing gets in its way. The sample count
 * adapts: fast calls repeat until min_time has passed (a 10 us call gets thousands of samples), slow ones
 * stop at max_time (a 3 s call of the reference backend gets 3).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c17 */
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

/* Seconds on the monotonic clock. Not omp_get_wtime: it counts from the epoch in a double, which
 * rounds to 2^-22 s (0.24 us), too coarse for calls of a few microseconds. */
double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { FEWEST_SAMPLES = 3 };

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median_of(double *samples, int64_t n)
{
    qsort(samples, (size_t)n, sizeof *samples, by_value);
    return n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

static bool out_of_time(double spent, timing_policy policy)
{
    return policy.max_time > 0 && spent >= policy.max_time;
}

timing_summary time_calls(void (*call)(void *arg), void *arg, timing_policy policy)
{
    double started = bench_now();
    for (int i = 0; i < policy.warmup && !out_of_time(bench_now() - started, policy); i++) call(arg);

    int64_t capacity = 64, n = 0;
    double *samples = bench_realloc(NULL, (size_t)capacity * sizeof *samples), spent = 0;
    while (n < FEWEST_SAMPLES || ((n < policy.iters || spent < policy.min_time) && !out_of_time(spent, policy))) {
        if (n == capacity) {
            capacity *= 2;
            samples = bench_realloc(samples, (size_t)capacity * sizeof *samples);
        }
        double t0 = bench_now();
        call(arg);
        samples[n] = bench_now() - t0;
        spent += samples[n++];
    }

    timing_summary s = {
        .samples = n,
        .median_s = median_of(samples, n),
        .min_s = samples[0],
        .max_s = samples[n - 1],
    };
    free(samples);
    return s;
}
