/*
 * --device-pointers in a TOPK_GPU=OFF build: there is no offload runtime to allocate GPU memory with.
 * main stops on device_memory_unavailable(), so the other routines only satisfy the linker.
 */
#include <stdlib.h>

#include "bench.h"

const char *device_memory_unavailable(void) { return "this topk-bench was built with TOPK_GPU=OFF"; }

void *device_copy_in(const void *host, size_t bytes)
{
    (void)host, (void)bytes;
    abort();
}

void device_copy_out(void *host, const void *device_ptr, size_t bytes)
{
    (void)host, (void)device_ptr, (void)bytes;
    abort();
}

void device_free(void *device_ptr)
{
    (void)device_ptr;
    abort();
}

double device_copy_seconds(const void *device_src, size_t bytes, timing_policy policy)
{
    (void)device_src, (void)bytes, (void)policy;
    abort();
}
