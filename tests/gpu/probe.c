/*
 * topk-gpu-probe: the offload backend's own check and timer, for ci/gpu-check on the GPU host (and for
 * TOPK_OFFLOAD_HOST=1 runs anywhere).
 *
 *   topk-gpu-probe check [--quick]   offload vs the reference backend, bit for bit, over shapes, dtypes,
 *                                    k (1, small, 2048, 2049, V), strides, misaligned rows, teams per row,
 *                                    data with ties, all-equal rows, NaN, infinities and signed zeros,
 *                                    host and device pointers, largest and smallest. Exit 1 on a mismatch.
 *   topk-gpu-probe time [--csv F]    us per synchronous call with device pointers, over the shapes the
 *                                    library is judged by; also the input's GB/s.
 *   topk-gpu-probe tune              the same for teams per row 0 (auto), 1 .. 528 on a few shapes.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t next_random(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(void) { return (double)(next_random() >> 11) * 0x1p-53; }

static uint32_t f32_bits(float f)
{
    union { float f; uint32_t u; } x = {f};
    return x.u;
}

/* binary16 of a float, truncating; tiny values flush to a signed zero, huge ones to infinity */
static uint16_t f16_bits(float f)
{
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000u;
    int exponent = (int)((u >> 23) & 0xFF) - 127 + 15;
    if (((u >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00u | ((u & 0x7FFFFFu) ? 0x200u : 0));
    if (exponent <= 0) return (uint16_t)sign;
    if (exponent >= 31) return (uint16_t)(sign | 0x7C00u);
    return (uint16_t)(sign | (uint32_t)exponent << 10 | ((u >> 13) & 0x3FFu));
}

enum pattern { NORMAL, RAW_BITS, FEW_VALUES, ALL_EQUAL, ASCENDING, DESCENDING, SPECIALS, PATTERNS };
static const char *const pattern_names[] = {"normal", "raw-bits", "few-values", "all-equal", "ascending", "descending", "specials"};

static float pattern_value(enum pattern p, int64_t column, int64_t vocab)
{
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, 1.0f, -1.0f};
    switch (p) {
    case NORMAL: return (float)((uniform() + uniform() + uniform() + uniform() - 2.0) * 1.7);
    case FEW_VALUES: return (float)((int)(next_random() % 4) - 1);
    case ALL_EQUAL: return 0.5f;
    case ASCENDING: return (float)column / (float)vocab;
    case DESCENDING: return -(float)column / (float)vocab;
    case SPECIALS:
        if (next_random() % 5 == 0) return -NAN;
        return specials[next_random() % 6];
    default: return 0;
    }
}

/* Fills batch rows of `stride` elements (the padding too) in the dtype's bits. */
static void fill_input(void *data, topk_dtype dtype, int64_t batch, int64_t vocab, int64_t stride, enum pattern p)
{
    for (int64_t r = 0; r < batch; r++)
        for (int64_t c = 0; c < stride; c++) {
            int64_t at = r * stride + c;
            if (p == RAW_BITS) {
                uint64_t bits = next_random();
                if (dtype == TOPK_F32) ((uint32_t *)data)[at] = (uint32_t)bits;
                else ((uint16_t *)data)[at] = (uint16_t)bits;
                continue;
            }
            float f = pattern_value(p, c, vocab);
            if (p == SPECIALS && isnan(f)) { /* NaNs with payloads, both signs */
                uint32_t payload = (uint32_t)next_random();
                if (dtype == TOPK_F32) ((uint32_t *)data)[at] = 0x7F800001u | (payload & 0x807FFFFFu);
                else if (dtype == TOPK_BF16) ((uint16_t *)data)[at] = (uint16_t)(0x7F81u | (payload & 0x807Fu));
                else ((uint16_t *)data)[at] = (uint16_t)(0x7C01u | (payload & 0x83FFu));
                continue;
            }
            if (dtype == TOPK_F32) ((uint32_t *)data)[at] = f32_bits(f);
            else if (dtype == TOPK_BF16) ((uint16_t *)data)[at] = (uint16_t)(f32_bits(f) >> 16);
            else ((uint16_t *)data)[at] = f16_bits(f);
        }
}

static const char *dtype_name(topk_dtype d) { return d == TOPK_F32 ? "fp32" : d == TOPK_F16 ? "fp16" : "bf16"; }

typedef struct check_case {
    int64_t batch, vocab, k, pad; /* stride = vocab + pad */
    topk_dtype dtype;
    enum pattern pattern;
    unsigned flags;
    int64_t teams_per_row;
    int offset; /* elements the input starts past an aligned address */
} check_case;

static int failures, checks;

static void *device_copy(const void *host, size_t bytes, int device)
{
    void *d = omp_target_alloc(bytes ? bytes : 1, device);
    if (!d) {
        fprintf(stderr, "omp_target_alloc(%zu) failed\n", bytes);
        exit(2);
    }
    if (host && bytes) omp_target_memcpy(d, (void *)host, bytes, 0, 0, device, omp_get_initial_device());
    return d;
}

static void run_case(topk_ctx *gpu, topk_ctx *ref, const check_case *c)
{
    int elem = topk_dtype_size(c->dtype);
    int64_t stride = c->vocab + c->pad;
    size_t in_elems = (size_t)(c->batch * stride) + (size_t)c->offset, out = (size_t)(c->batch * c->k);
    char *buffer = malloc(in_elems * (size_t)elem + 16);
    char *input = buffer + c->offset * elem;
    fill_input(input, c->dtype, c->batch, c->vocab, stride, c->pattern);
    char *want_v = malloc(out * (size_t)elem), *got_v = malloc(out * (size_t)elem);
    int64_t *want_i = malloc(out * 8), *got_i = malloc(out * 8);
    memset(got_v, 0xA5, out * (size_t)elem);
    memset(got_i, 0xA5, out * 8);
    topk_status s = topk_select(ref, input, c->dtype, c->batch, c->vocab, stride, c->k, c->flags & TOPK_SMALLEST,
                                want_v, want_i);
    if (s != TOPK_OK) {
        fprintf(stderr, "reference failed: %s\n", topk_strerror(s));
        exit(2);
    }
    topk_ctx_set_param(gpu, TOPK_PARAM_TEAMS_PER_ROW, c->teams_per_row);
    if (c->flags & TOPK_DEVICE_POINTERS) {
        int device = omp_get_default_device();
        if (getenv("TOPK_OFFLOAD_HOST")) device = omp_get_initial_device();
        size_t in_bytes = in_elems * (size_t)elem;
        char *d_buffer = device_copy(buffer, in_bytes, device);
        char *d_values = device_copy(got_v, out * (size_t)elem, device);
        int64_t *d_indices = device_copy(got_i, out * 8, device);
        s = topk_select(gpu, d_buffer + c->offset * elem, c->dtype, c->batch, c->vocab, stride, c->k, c->flags,
                        d_values, d_indices);
        omp_target_memcpy(got_v, d_values, out * (size_t)elem, 0, 0, omp_get_initial_device(), device);
        omp_target_memcpy(got_i, d_indices, out * 8, 0, 0, omp_get_initial_device(), device);
        omp_target_free(d_buffer, device);
        omp_target_free(d_values, device);
        omp_target_free(d_indices, device);
    } else {
        s = topk_select(gpu, input, c->dtype, c->batch, c->vocab, stride, c->k, c->flags, got_v, got_i);
    }
    checks++;
    int64_t bad = -1;
    if (s == TOPK_OK)
        for (size_t j = 0; j < out && bad < 0; j++)
            if (want_i[j] != got_i[j] || memcmp(want_v + j * (size_t)elem, got_v + j * (size_t)elem, (size_t)elem))
                bad = (int64_t)j;
    if (s != TOPK_OK || bad >= 0) {
        failures++;
        fprintf(stderr, "MISMATCH batch=%lld vocab=%lld k=%lld pad=%lld %s %s flags=%u teams_per_row=%lld offset=%d: ",
                (long long)c->batch, (long long)c->vocab, (long long)c->k, (long long)c->pad, dtype_name(c->dtype),
                pattern_names[c->pattern], c->flags, (long long)c->teams_per_row, c->offset);
        if (s != TOPK_OK) fprintf(stderr, "status %s\n", topk_strerror(s));
        else
            fprintf(stderr, "row %lld rank %lld: index %lld, want %lld\n", (long long)(bad / c->k),
                    (long long)(bad % c->k), (long long)got_i[bad], (long long)want_i[bad]);
    }
    free(buffer);
    free(want_v);
    free(got_v);
    free(want_i);
    free(got_i);
}

static int check(int quick)
{
    topk_ctx *gpu, *ref;
    topk_status s = topk_ctx_create(&gpu, TOPK_BACKEND_OFFLOAD);
    if (s != TOPK_OK) {
        fprintf(stderr, "offload backend: %s\n", topk_strerror(s));
        return 2;
    }
    if (topk_ctx_create(&ref, TOPK_BACKEND_REFERENCE) != TOPK_OK) return 2;
    static const int64_t vocabs[] = {1, 2, 7, 64, 100, 1000, 4097, 30011};
    static const topk_dtype dtypes[] = {TOPK_F32, TOPK_F16, TOPK_BF16};
    for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++) {
        int64_t v = vocabs[vi];
        int64_t ks[] = {1, 2, 50, v / 2, v - 1, v, 2048, 2049, 2300};
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            int64_t k = ks[ki];
            if (k < 1 || k > v) continue;
            if (ki > 0 && k == ks[ki - 1]) continue;
            for (int p = 0; p < PATTERNS; p++)
                for (size_t di = 0; di < 3; di++) {
                    if (quick && (p + (int)di + (int)ki) % 3) continue;
                    unsigned variant = (unsigned)(p * 7 + (int)di * 3 + (int)ki + (int)vi);
                    check_case c = {
                        .batch = 1 + (int64_t)(variant % 3) * 2,
                        .vocab = v,
                        .k = k,
                        .pad = variant % 4 == 1 ? 3 : 0,
                        .dtype = dtypes[di],
                        .pattern = (enum pattern)p,
                        .flags = (variant % 5 == 2 ? TOPK_SMALLEST : 0) | (variant % 2 ? TOPK_DEVICE_POINTERS : 0),
                        .teams_per_row = (int64_t[]){0, 1, 3, 40}[variant % 4],
                        .offset = (int)(variant % 3),
                    };
                    run_case(gpu, ref, &c);
                }
        }
    }
    /* long rows: the merge tree two levels deep, wide k, many rows */
    const check_case big[] = {
        {1, 500000, 50, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
        {1, 500000, 2048, 0, TOPK_BF16, NORMAL, TOPK_DEVICE_POINTERS, 300, 1},
        {1, 500000, 2048, 0, TOPK_F32, ALL_EQUAL, TOPK_DEVICE_POINTERS, 0, 0},
        {1, 500000, 2000, 0, TOPK_F32, ASCENDING, TOPK_DEVICE_POINTERS, 0, 0},
        {2, 300000, 5000, 0, TOPK_F16, FEW_VALUES, TOPK_DEVICE_POINTERS, 0, 0},
        {3, 151936, 1024, 0, TOPK_F32, NORMAL, 0, 0, 0},
        {3, 151936, 200, 5, TOPK_BF16, SPECIALS, TOPK_SMALLEST | TOPK_DEVICE_POINTERS, 0, 1},
        {300, 4096, 64, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
        {33, 32000, 40, 0, TOPK_F16, RAW_BITS, TOPK_DEVICE_POINTERS, 0, 0},
        {2, 70000, 70000, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
        {1, 16777216, 2048, 0, TOPK_F32, NORMAL, TOPK_DEVICE_POINTERS, 0, 0},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        if (!quick || i % 2 == 0) run_case(gpu, ref, &big[i]);
    printf("check: %d cases, %d mismatches\n", checks, failures);
    topk_ctx_free(gpu);
    topk_ctx_free(ref);
    return failures ? 1 : 0;
}

typedef struct time_case {
    int64_t batch, vocab, k;
    topk_dtype dtype;
} time_case;

static const time_case timed[] = {
    {1, 32000, 50, TOPK_BF16},     {1, 50304, 50, TOPK_BF16},     {1, 50304, 200, TOPK_BF16},
    {1, 128256, 50, TOPK_F32},     {1, 151936, 50, TOPK_BF16},    {1, 151936, 200, TOPK_F32},
    {4, 50304, 5, TOPK_F16},       {4, 50304, 128, TOPK_F16},     {4, 128256, 50, TOPK_BF16},
    {4, 151936, 200, TOPK_F32},    {32, 32000, 40, TOPK_F32},     {32, 50304, 50, TOPK_BF16},
    {32, 151936, 50, TOPK_BF16},   {32, 151936, 200, TOPK_F32},   {64, 128256, 50, TOPK_F32},
    {64, 151936, 1024, TOPK_F32},  {256, 151936, 50, TOPK_BF16},  {256, 151936, 1024, TOPK_BF16},
    {256, 151936, 50, TOPK_F32},   {256, 151936, 1024, TOPK_F32}, {4096, 4096, 64, TOPK_F32},
    {1, 16777216, 2048, TOPK_F32},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Device-pointer input of a timed case, filled with normal random values. */
typedef struct device_case {
    void *in, *values;
    int64_t *indices;
    int device;
} device_case;

static device_case device_case_make(const time_case *c)
{
    device_case d;
    d.device = getenv("TOPK_OFFLOAD_HOST") ? omp_get_initial_device() : omp_get_default_device();
    int elem = topk_dtype_size(c->dtype);
    size_t in_bytes = (size_t)(c->batch * c->vocab) * (size_t)elem, out = (size_t)(c->batch * c->k);
    void *host = malloc(in_bytes);
    fill_input(host, c->dtype, c->batch, c->vocab, c->vocab, NORMAL);
    d.in = device_copy(host, in_bytes, d.device);
    d.values = device_copy(NULL, out * (size_t)elem, d.device);
    d.indices = device_copy(NULL, out * 8, d.device);
    free(host);
    return d;
}

static void device_case_free(device_case *d)
{
    omp_target_free(d->in, d->device);
    omp_target_free(d->values, d->device);
    omp_target_free(d->indices, d->device);
}

/* Median and minimum us per synchronous call over `rounds` rounds of `calls` calls. */
static double time_case_us(topk_ctx *gpu, const time_case *c, const device_case *d, int rounds, int calls,
                           double *min_us, topk_status *status)
{
    double per_call[32];
    for (int w = 0; w < 3; w++)
        *status = topk_select(gpu, d->in, c->dtype, c->batch, c->vocab, c->vocab, c->k, TOPK_DEVICE_POINTERS,
                              d->values, d->indices);
    for (int r = 0; r < rounds; r++) {
        double t0 = omp_get_wtime();
        for (int n = 0; n < calls; n++)
            *status = topk_select(gpu, d->in, c->dtype, c->batch, c->vocab, c->vocab, c->k, TOPK_DEVICE_POINTERS,
                                  d->values, d->indices);
        per_call[r] = (omp_get_wtime() - t0) / calls * 1e6;
    }
    qsort(per_call, (size_t)rounds, sizeof per_call[0], cmp_double);
    *min_us = per_call[0];
    return per_call[rounds / 2];
}

static int time_calls(const char *csv_path)
{
    topk_ctx *gpu;
    topk_status s = topk_ctx_create(&gpu, TOPK_BACKEND_OFFLOAD);
    if (s != TOPK_OK) {
        fprintf(stderr, "offload backend: %s\n", topk_strerror(s));
        return 2;
    }
    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv) fprintf(csv, "batch,vocab,k,dtype,teams_per_row,median_us,min_us,input_GBps\n");
    int64_t teams_per_row = 0;
    topk_ctx_get_param(gpu, TOPK_PARAM_TEAMS_PER_ROW, &teams_per_row);
    printf("%6s %9s %5s %5s %10s %10s %8s\n", "batch", "vocab", "k", "dtype", "median_us", "min_us", "GB/s");
    for (size_t i = 0; i < sizeof timed / sizeof timed[0]; i++) {
        const time_case *c = &timed[i];
        device_case d = device_case_make(c);
        double min_us, median = time_case_us(gpu, c, &d, 15, c->batch * c->vocab > 50000000 ? 10 : 40, &min_us, &s);
        double gbps = (double)(c->batch * c->vocab * topk_dtype_size(c->dtype)) / (median * 1e3);
        printf("%6lld %9lld %5lld %5s %10.1f %10.1f %8.0f%s\n", (long long)c->batch, (long long)c->vocab,
               (long long)c->k, dtype_name(c->dtype), median, min_us, gbps, s == TOPK_OK ? "" : " FAILED");
        if (csv)
            fprintf(csv, "%lld,%lld,%lld,%s,%lld,%.2f,%.2f,%.1f\n", (long long)c->batch, (long long)c->vocab,
                    (long long)c->k, dtype_name(c->dtype), (long long)teams_per_row, median, min_us, gbps);
        device_case_free(&d);
    }
    if (csv) fclose(csv);
    topk_ctx_free(gpu);
    return 0;
}

/* us per call for teams per row 1 .. 528 on the shapes whose best split is least obvious. */
static int tune(void)
{
    static const time_case shapes[] = {
        {1, 50304, 50, TOPK_BF16},      {1, 151936, 50, TOPK_BF16},  {1, 151936, 200, TOPK_F32},
        {4, 128256, 50, TOPK_BF16},     {32, 32000, 40, TOPK_F32},   {32, 151936, 50, TOPK_BF16},
        {64, 151936, 1024, TOPK_F32},   {256, 151936, 50, TOPK_BF16}, {256, 151936, 1024, TOPK_F32},
        {1, 16777216, 2048, TOPK_F32},
    };
    static const int64_t splits[] = {0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 132, 196, 264, 528};
    topk_ctx *gpu;
    topk_status s = topk_ctx_create(&gpu, TOPK_BACKEND_OFFLOAD);
    if (s != TOPK_OK) return 2;
    printf("%-22s", "shape \\ teams/row");
    for (size_t j = 0; j < sizeof splits / sizeof splits[0]; j++) printf(" %6lld", (long long)splits[j]);
    printf("\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const time_case *c = &shapes[i];
        device_case d = device_case_make(c);
        printf("%4lldx%-8lld k%-4lld %-4s", (long long)c->batch, (long long)c->vocab, (long long)c->k, dtype_name(c->dtype));
        for (size_t j = 0; j < sizeof splits / sizeof splits[0]; j++) {
            topk_ctx_set_param(gpu, TOPK_PARAM_TEAMS_PER_ROW, splits[j]);
            double min_us, us = time_case_us(gpu, c, &d, 5, c->batch * c->vocab > 50000000 ? 4 : 15, &min_us, &s);
            printf(" %6.1f", us);
            fflush(stdout);
        }
        printf("\n");
        device_case_free(&d);
    }
    topk_ctx_free(gpu);
    return 0;
}

int main(int argc, char **argv)
{
    unsetenv("TOPK_BACKEND"); /* the reference context must be the reference */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "check")) return check(argc >= 3 && !strcmp(argv[2], "--quick"));
    if (argc >= 2 && !strcmp(argv[1], "tune")) return tune();
    if (argc >= 2 && !strcmp(argv[1], "time")) return time_calls(argc >= 4 && !strcmp(argv[2], "--csv") ? argv[3] : NULL);
    fprintf(stderr, "usage: topk-gpu-probe check [--quick] | time [--csv FILE] | tune\n");
    return 2;
}
