/*
 * topk-gpu-large: the offload backend on fp32 matrices of more than 2^31 elements (8 GiB), for the GPU
 * host (ci/gpu-check's sibling; run with OMP_TARGET_OFFLOAD=MANDATORY).
 *
 *   topk-gpu-large            three matrices past 2^31 elements, each checked row by row:
 *                             16385 x 131072 with device pointers, the same from host memory (mapped by
 *                             the library), and one row of 2^31 + 100 elements with device pointers
 *   topk-gpu-large --quick    the same shapes / 64 (not past 2^31: a dry run of this program, e.g. with
 *                             TOPK_OFFLOAD_HOST=1 where there is no GPU)
 *
 * The matrices are zero but for a few values planted in every row (written on the device by a target
 * region), so each row's answer is known without a sort: the planted values best first, then the zeros
 * (all tied) by column. Exit 0 when every row is right, 1 on a wrong row, 2 when the backend cannot run.
 */
#define _POSIX_C_SOURCE 200809L

#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topk.h"

enum { K = 6, PLANTED = 4 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct shape {
    const char *name;
    int64_t batch, vocab;
    bool host_pointers;
} shape;

/* Row r's planted columns (distinct, best first) and their values; a negative value at `below`. */
static void plan_row(int64_t r, int64_t vocab, int64_t columns[PLANTED], float values[PLANTED], int64_t *below)
{
    columns[0] = (r * 7919 + 11) % vocab, values[0] = 3.0f;
    columns[1] = vocab - 1, values[1] = 2.0f;
    columns[2] = (r * 31 + 5) % (vocab / 2), values[2] = 1.5f;
    columns[3] = vocab > ((int64_t)1 << 31) ? ((int64_t)1 << 31) + 50 : vocab / 2 + 3, values[3] = 1.25f;
    if (columns[0] == columns[2] || columns[0] == columns[3] || columns[0] == columns[1]) columns[0] = vocab / 2 + 1;
    *below = (r * 13 + 1) % (vocab / 2);
    while (*below == columns[0] || *below == columns[2]) ++*below;
}

/* The expected top K: the planted values, then zeros from column 0 up. */
static void expected_row(int64_t r, int64_t vocab, int64_t *columns, float *values)
{
    int64_t planted[PLANTED], below;
    float planted_values[PLANTED];
    plan_row(r, vocab, planted, planted_values, &below);
    int j = 0;
    for (; j < PLANTED; j++) columns[j] = planted[j], values[j] = planted_values[j];
    for (int64_t c = 0; j < K; c++) {
        bool taken = c == below;
        for (int i = 0; i < PLANTED; i++) taken |= planted[i] == c;
        if (!taken) columns[j] = c, values[j++] = 0.0f;
    }
}

/* Zeroes the matrix and plants every row's values, on the device (or in host memory). */
static void fill(float *m, int64_t elements, const shape *s, int device, bool on_device)
{
    int64_t n = s->batch * (PLANTED + 1);
    int64_t *at = malloc((size_t)n * sizeof *at);
    float *value = malloc((size_t)n * sizeof *value);
    for (int64_t r = 0; r < s->batch; r++) {
        int64_t columns[PLANTED], below;
        float values[PLANTED];
        plan_row(r, s->vocab, columns, values, &below);
        for (int i = 0; i < PLANTED; i++) at[r * (PLANTED + 1) + i] = r * s->vocab + columns[i], value[r * (PLANTED + 1) + i] = values[i];
        at[r * (PLANTED + 1) + PLANTED] = r * s->vocab + below, value[r * (PLANTED + 1) + PLANTED] = -1.0f;
    }
    if (on_device) {
#pragma omp target teams distribute parallel for device(device) is_device_ptr(m)
        for (int64_t i = 0; i < elements; i++) m[i] = 0.0f;
#pragma omp target teams distribute parallel for device(device) is_device_ptr(m) map(to : at[0 : n], value[0 : n])
        for (int64_t i = 0; i < n; i++) m[at[i]] = value[i];
    } else {
        memset(m, 0, (size_t)elements * sizeof *m);
        for (int64_t i = 0; i < n; i++) m[at[i]] = value[i];
    }
    free(at);
    free(value);
}

/* One shape: 0 when every row is right. */
static int run_shape(topk_ctx *ctx, const shape *s, int device)
{
    int64_t elements = s->batch * s->vocab, out = s->batch * K;
    size_t bytes = (size_t)elements * sizeof(float);
    int host = omp_get_initial_device();
    float *m = s->host_pointers ? malloc(bytes) : omp_target_alloc(bytes, device);
    float *values = s->host_pointers ? malloc((size_t)out * sizeof(float)) : omp_target_alloc((size_t)out * sizeof(float), device);
    int64_t *indices = s->host_pointers ? malloc((size_t)out * sizeof(int64_t)) : omp_target_alloc((size_t)out * sizeof(int64_t), device);
    if (!m || !values || !indices) {
        printf("%s: cannot allocate %.1f GiB\n", s->name, (double)bytes / (1 << 30));
        return 1;
    }
    fill(m, elements, s, device, !s->host_pointers);
    double t = now();
    topk_status st = topk_select(ctx, m, TOPK_F32, s->batch, s->vocab, s->vocab, K,
                                 s->host_pointers ? 0 : TOPK_DEVICE_POINTERS, values, indices);
    t = now() - t;
    float *got_values = values;
    int64_t *got_indices = indices;
    if (!s->host_pointers) {
        got_values = malloc((size_t)out * sizeof(float));
        got_indices = malloc((size_t)out * sizeof(int64_t));
        omp_target_memcpy(got_values, values, (size_t)out * sizeof(float), 0, 0, host, device);
        omp_target_memcpy(got_indices, indices, (size_t)out * sizeof(int64_t), 0, 0, host, device);
    }
    int64_t wrong = 0;
    if (st == TOPK_OK) {
        for (int64_t r = 0; r < s->batch; r++) {
            int64_t columns[K];
            float want[K];
            expected_row(r, s->vocab, columns, want);
            for (int j = 0; j < K; j++) {
                if (got_indices[r * K + j] == columns[j] && memcmp(&got_values[r * K + j], &want[j], 4) == 0) continue;
                if (wrong++ < 5)
                    printf("%s: row %lld rank %d: column %lld value %g, expected column %lld value %g\n", s->name,
                           (long long)r, j, (long long)got_indices[r * K + j], (double)got_values[r * K + j],
                           (long long)columns[j], (double)want[j]);
            }
        }
    }
    printf("%s: B=%lld V=%lld (%lld elements, %.1f GiB) k=%d %s pointers: %s, %lld wrong entries, %.1f ms\n", s->name,
           (long long)s->batch, (long long)s->vocab, (long long)elements, (double)bytes / (1 << 30), K,
           s->host_pointers ? "host" : "device", topk_strerror(st), (long long)wrong, t * 1e3);
    if (!s->host_pointers) {
        free(got_values);
        free(got_indices);
        omp_target_free(m, device);
        omp_target_free(values, device);
        omp_target_free(indices, device);
    } else {
        free(m);
        free(values);
        free(indices);
    }
    return st != TOPK_OK || wrong;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: topk-gpu-large [--quick]\n");
        return 2;
    }
    topk_ctx *ctx;
    topk_status st = topk_ctx_create(&ctx, TOPK_BACKEND_OFFLOAD);
    if (st != TOPK_OK) {
        printf("topk-gpu-large: the offload backend cannot start: %s\n", topk_strerror(st));
        return 2;
    }
    int64_t scale = quick ? 64 : 1;
    const shape shapes[] = {
        {"rows past 2^31", 16385, 131072 / scale, false},
        {"rows past 2^31 from host memory", 16385, 131072 / scale, true},
        {"one row past 2^31", 1, (((int64_t)1 << 31) + 100) / scale, false},
    };
    int failed = 0;
    /* the GPU, or under TOPK_OFFLOAD_HOST=1 without one, the host as the library then uses it */
    int device = omp_get_num_devices() > 0 ? omp_get_default_device() : omp_get_initial_device();
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) failed |= run_shape(ctx, &shapes[i], device);
    topk_ctx_free(ctx);
    printf("topk-gpu-large: %s\n", failed ? "FAILED" : "all rows right");
    return failed;
}
