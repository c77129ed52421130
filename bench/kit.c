/*
 * The bench kit's allocation helpers: every program of bench/ (topk-bench, sample-bench) links the kit
 * (the static library topk_benchkit, bench/CMakeLists.txt), so none depends on another's main file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

void *bench_realloc(void *old, size_t bytes)
{
    void *p = realloc(old, bytes);
    if (!p) {
        fprintf(stderr, "bench: out of memory allocating %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

void *bench_alloc_aligned(size_t bytes)
{
    /* 64-byte aligned like any real logits buffer; aligned_alloc wants a multiple of the alignment. */
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench: out of memory allocating %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}
