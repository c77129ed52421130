/*
 * --autotune FILE: for each case, times the backend under each value of its knobs and writes every
 * measurement to a tuning table (format: tuning/README.md), which the library reads back to choose a
 * knob left at 0. Each setting's result is checked against the reference like any timed call, so a
 * table is only ever made of settings that gave the right bits.
 *
 *   cpu:     TOPK_PARAM_THREADS over 1, 2, 4, ... and all processors; then, where the best thread
 *            count cuts rows into segments (batch < threads), TOPK_PARAM_CHUNK over 4K-256K elements.
 *   offload: TOPK_PARAM_TEAMS_PER_ROW over 1, 2, 4, ... 256, as long as a team gets >= 1024 elements.
 * main() sets TOPK_TUNING_FILE=off first, so that a knob left at 0 here means the built-in heuristic.
 */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

typedef struct sweep {
    topk_param param;
    const char *name;
    int64_t values[16];
    int count;
} sweep;

static void add_value(sweep *s, int64_t v)
{
    for (int i = 0; i < s->count; i++)
        if (s->values[i] == v) return;
    if (s->count < 16) s->values[s->count++] = v;
}

static sweep threads_sweep(void)
{
    sweep s = {TOPK_PARAM_THREADS, "threads", {0}, 0};
    int procs = omp_get_num_procs();
    for (int64_t t = 1; t < procs && s.count < 15; t *= 2) add_value(&s, t);
    add_value(&s, procs);
    return s;
}

static sweep chunk_sweep(const bench_case *c)
{
    sweep s = {TOPK_PARAM_CHUNK, "chunk", {0}, 0};
    for (int64_t chunk = 4096; chunk <= 262144 && chunk < c->vocab; chunk *= 2) add_value(&s, chunk);
    return s;
}

static sweep teams_sweep(const bench_case *c)
{
    sweep s = {TOPK_PARAM_TEAMS_PER_ROW, "teams_per_row", {0}, 0};
    for (int64_t t = 1; t <= 256 && (t == 1 || c->vocab / t >= 1024); t *= 2) add_value(&s, t);
    return s;
}

/* Times every value of the sweep; writes a row for each and returns the fastest value (0 if none).
 * *failures counts settings whose result differed from the reference. */
static int64_t run_sweep(const autotune_job *job, FILE *table, const char *device, case_data *d, const sweep *s,
                         int *failures, double started)
{
    const bench_case *c = &d->shape;
    const char *backend = topk_backend_name(topk_ctx_backend(job->ctx));
    int64_t best = 0;
    double best_us = 0;
    for (int i = 0; i < s->count; i++) {
        if (topk_ctx_set_param(job->ctx, s->param, s->values[i]) != TOPK_OK) continue;
        case_result r = case_measure(job->ctx, d, job->timing, false, 0);
        double us = r.time.median_s * 1e6;
        if (!r.indices_equal || !r.values_equal) {
            fprintf(stderr, "topk-bench: autotune: %lld x %lld, k %lld, %s, %s %lld: result differs from the "
                            "reference backend's\n", (long long)c->batch, (long long)c->vocab, (long long)c->k,
                    dtype_name(c->dtype), s->name, (long long)s->values[i]);
            (*failures)++;
            continue;
        }
        fprintf(table, "%s %s %s %lld %lld %lld %s %lld %.3f\n", backend, device, dtype_name(c->dtype),
                (long long)c->batch, (long long)c->vocab, (long long)c->k, s->name, (long long)s->values[i], us);
        if (bench_now() - started > 1)
            fprintf(stderr, "topk-bench: autotune: %lld x %lld, k %lld, %s: %s %lld: %.2f us\n", (long long)c->batch,
                    (long long)c->vocab, (long long)c->k, dtype_name(c->dtype), s->name, (long long)s->values[i], us);
        if (!best || us < best_us) {
            best = s->values[i];
            best_us = us;
        }
    }
    topk_ctx_set_param(job->ctx, s->param, 0);
    if (best) printf(" %s %lld (%.2f us)", s->name, (long long)best, best_us);
    return best;
}

int autotune(const autotune_job *job)
{
    topk_backend backend = topk_ctx_backend(job->ctx);
    if (backend != TOPK_BACKEND_CPU && backend != TOPK_BACKEND_OFFLOAD) {
        fprintf(stderr, "topk-bench: --autotune tunes the cpu or offload backend, not %s\n", topk_backend_name(backend));
        return 2;
    }
    FILE *table = fopen(job->path, "w");
    if (!table) {
        fprintf(stderr, "topk-bench: --autotune %s: cannot write it (%s)\n", job->path, strerror(errno));
        return 1;
    }
    const char *device = topk_ctx_tuning_device(job->ctx);
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(table, "# libtopk tuning v1\n");
    fprintf(table, "# Measured %s by libtopk %s: %s\n", date, topk_version_string(), job->command);
    fprintf(table, "# Each row: the median us of topk_select on seeded normal data with param set to value (the\n"
                   "# other knobs at the backend's choice). The library picks the fastest value of the nearest\n"
                   "# shape; see tuning/README.md.\n");
    fprintf(table, "# backend device dtype batch vocab k param value us\n");

    double started = bench_now();
    int failures = 0;
    for (size_t i = 0; i < job->count; i++) {
        const bench_case *c = &job->cases[i];
        case_data d;
        case_data_init(&d, c, 0, NULL, job->seed, job->flags, job->reference);
        printf("%s %lld x %lld, k %lld, %s: best", topk_backend_name(backend), (long long)c->batch,
               (long long)c->vocab, (long long)c->k, dtype_name(c->dtype));
        if (backend == TOPK_BACKEND_CPU) {
            sweep threads = threads_sweep();
            int64_t best_threads = run_sweep(job, table, device, &d, &threads, &failures, started);
            if (best_threads > 1 && c->batch < best_threads) {
                topk_ctx_set_param(job->ctx, TOPK_PARAM_THREADS, best_threads);
                sweep chunks = chunk_sweep(c);
                run_sweep(job, table, device, &d, &chunks, &failures, started);
                topk_ctx_set_param(job->ctx, TOPK_PARAM_THREADS, 0);
            }
        } else {
            sweep teams = teams_sweep(c);
            run_sweep(job, table, device, &d, &teams, &failures, started);
        }
        printf("\n");
        fflush(stdout);
        case_data_free(&d);
    }
    if (fclose(table) != 0) {
        fprintf(stderr, "topk-bench: --autotune %s: cannot write it\n", job->path);
        return 1;
    }
    char message[512];
    if (topk_tuning_check(job->path, message, sizeof message) != TOPK_OK) {
        fprintf(stderr, "topk-bench: the table just written does not parse: %s\n", message);
        return 1;
    }
    fprintf(stderr,
            "topk-bench: wrote %s for device %s; use it with TOPK_TUNING_FILE=%s, or copy it into tuning/ and "
            "rebuild to compile it in\n",
            job->path, device, job->path);
    return failures ? 1 : 0;
}
