/*
 * GPU buffers for --device-pointers: OpenMP's device memory routines on the default device.
 *
 * Built only with TOPK_GPU=ON, where topk-bench is linked as an offload program like the library:
 * these routines live in libomptarget, and LLVM 19's crash in a process that registered no device image.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

const char *device_memory_unavailable(void)
{
    /* With no device, omp_target_alloc would quietly hand out host memory. */
    return omp_get_num_devices() < 1 ? "no OpenMP offload device is visible (omp_get_num_devices() is 0)" : NULL;
}

void *device_copy_in(const void *host, size_t bytes)
{
    int device = omp_get_default_device();
    void *p = omp_target_alloc(bytes, device);
    if (!p || omp_target_memcpy(p, host, bytes, 0, 0, device, omp_get_initial_device()) != 0) {
        fprintf(stderr, "topk-bench: cannot place %zu bytes on device %d\n", bytes, device);
        exit(1);
    }
    return p;
}

void device_copy_out(void *host, const void *device_ptr, size_t bytes)
{
    if (omp_target_memcpy(host, device_ptr, bytes, 0, 0, omp_get_initial_device(), omp_get_default_device()) != 0) {
        fprintf(stderr, "topk-bench: cannot copy %zu bytes back from the device\n", bytes);
        exit(1);
    }
}

void device_free(void *device_ptr) { omp_target_free(device_ptr, omp_get_default_device()); }

typedef struct device_copy {
    void *dst;
    const void *src;
    size_t bytes;
    int device;
} device_copy;

static int copy_once_status(device_copy *c) { return omp_target_memcpy(c->dst, c->src, c->bytes, 0, 0, c->device, c->device); }

static void copy_once(void *arg) { (void)copy_once_status(arg); }

/* NAN, with a word on stderr, where the runtime cannot copy device to device: the floor is a column of the
 * report, not a reason to lose the run. */
double device_copy_seconds(const void *device_src, size_t bytes, timing_policy policy)
{
    device_copy c = {.src = device_src, .bytes = bytes, .device = omp_get_default_device()};
    c.dst = omp_target_alloc(bytes, c.device);
    if (!c.dst || copy_once_status(&c) != 0) {
        fprintf(stderr, "topk-bench: no copy floor (%zu bytes device to device on device %d failed)\n", bytes, c.device);
        if (c.dst) omp_target_free(c.dst, c.device);
        return NAN;
    }
    double seconds = time_calls(copy_once, &c, policy).median_s;
    omp_target_free(c.dst, c.device);
    return seconds;
}
