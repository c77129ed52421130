/*
 * Device memory for the tests that pass TOPK_DEVICE_POINTERS: the GPU's, or the host's when the offload
 * backend runs its regions there (TOPK_OFFLOAD_HOST=1), through OpenMP's device memory routines. A test
 * using these is an offload program (topk_offload_target in CMakeLists.txt).
 */
#ifndef TOPK_TEST_DEVICE_MEM_H
#define TOPK_TEST_DEVICE_MEM_H

#include <stddef.h>

/* The OpenMP device that device pointers live on. */
int pointer_device(void);

/* A copy of bytes of host memory in device memory (asserts on failure); free it with device_free. */
void *device_copy_in(const void *host, size_t bytes, int device);

/* Copies bytes of device memory back to host, then frees the device memory. */
void device_copy_out(void *host, void *device_ptr, size_t bytes, int device);

void device_free(void *device_ptr, int device);

#endif
