/*
 * Host threads calling topk_select at the same time, each on its own context and all on one shared
 * context (the header allows both). Each thread works on different data (dtype, shape, k, direction)
 * so answers crossing between threads, or a shared workspace used by two calls at once, show up as a
 * mismatch with the oracle. Threads only call the library; every assertion runs on the test's thread.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "gen.h"

enum { THREADS = 8, ROUNDS = 6, BATCH = 3 };

typedef struct worker {
    topk_ctx *ctx;
    pthread_barrier_t *start;
    select_case cases[ROUNDS];
    void *inputs[ROUNDS];
    selection outputs[ROUNDS];
    topk_status statuses[ROUNDS];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start); /* all threads start selecting together */
    for (int i = 0; i < ROUNDS; i++) {
        const select_case *c = &w->cases[i];
        w->statuses[i] = topk_select(w->ctx, w->inputs[i], c->dtype, c->batch, c->vocab, c->row_stride, c->k,
                                     c->smallest ? TOPK_SMALLEST : 0, w->outputs[i].values, w->outputs[i].indices);
    }
    return NULL;
}

/* A different problem for every thread and round. */
static void prepare(worker *w, int thread, topk_backend backend)
{
    static const int64_t ks[] = {1, 7, 50, 300, 0, 2};
    for (int i = 0; i < ROUNDS; i++) {
        int64_t vocab = 2000 + 257 * thread + 31 * i;
        select_case c = {backend, all_dtypes[(thread + i) % 3], BATCH, vocab, vocab + thread, ks[(thread + i) % 6],
                         (thread + i) & 1, NULL};
        w->cases[i] = c;
        w->inputs[i] = random_matrix(c.dtype, c.batch, c.vocab, c.row_stride, (uint64_t)(thread * 100 + i));
        size_t n = (size_t)(c.batch * c.k) + 1;
        w->outputs[i] = (selection){malloc(n * 4), malloc(n * sizeof(int64_t)), c.k};
    }
}

static void run_threads(topk_backend backend, bool shared)
{
    topk_ctx *shared_ctx = open_backend_or_skip(backend);
    worker workers[THREADS];
    pthread_t threads[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) {
        workers[t].ctx = shared ? shared_ctx : open_backend_or_skip(backend);
        workers[t].start = &start;
        prepare(&workers[t], t, backend);
    }
    for (int t = 0; t < THREADS; t++) cr_assert(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start);

    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < ROUNDS; i++) {
            worker *w = &workers[t];
            char data[64];
            snprintf(data, sizeof data, "thread %d round %d of %d, %s context", t, i, THREADS, shared ? "shared" : "own");
            w->cases[i].data = data;
            cr_assert(w->statuses[i] == TOPK_OK, "%s: %s", data, topk_strerror(w->statuses[i]));
            selection oracle = oracle_selection(&w->cases[i], w->inputs[i], false);
            assert_same(&w->cases[i], &w->outputs[i], &oracle, "the oracle");
            selection_free(&oracle);
            selection_free(&w->outputs[i]);
            free(w->inputs[i]);
        }
        if (!shared) topk_ctx_free(workers[t].ctx);
    }
    topk_ctx_free(shared_ctx);
}

/* Each backend's tests carry its name, so that a filter on "offload" runs the offload ones alone. */
static struct criterion_test_params sharing_params(void)
{
    static bool shared[] = {false, true};
    return cr_make_param_array(bool, shared, 2);
}

ParameterizedTestParameters(threads, reference) { return sharing_params(); }
ParameterizedTest(bool *shared, threads, reference) { run_threads(TOPK_BACKEND_REFERENCE, *shared); }

ParameterizedTestParameters(threads, cpu) { return sharing_params(); }
ParameterizedTest(bool *shared, threads, cpu) { run_threads(TOPK_BACKEND_CPU, *shared); }

ParameterizedTestParameters(threads, offload) { return sharing_params(); }
ParameterizedTest(bool *shared, threads, offload) { run_threads(TOPK_BACKEND_OFFLOAD, *shared); }
