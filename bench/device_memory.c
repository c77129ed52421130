/*
 * GPU buffers for --device-pointers: OpenMP's device memory routines on the default device.
 *
 * Built only with TOPK_GPU=ON, where topk-bench is linked as an offload program like the library:
 * these routines live in libomptarget, and LLVM 19's crash in a process that registered no device image.
 */
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
