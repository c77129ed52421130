/*
 * Device memory for the tests (device_mem.h).
 */
#include "device_mem.h"

#include <criterion/criterion.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int pointer_device(void)
{
    const char *host = getenv("TOPK_OFFLOAD_HOST");
    return host && !strcmp(host, "1") ? omp_get_initial_device() : omp_get_default_device();
}

void *device_copy_in(const void *host, size_t bytes, int device)
{
    void *d = omp_target_alloc(bytes, device);
    cr_assert(d && omp_target_memcpy(d, host, bytes, 0, 0, device, omp_get_initial_device()) == 0,
              "cannot place %zu bytes on device %d", bytes, device);
    return d;
}

void device_copy_out(void *host, void *device_ptr, size_t bytes, int device)
{
    cr_assert(omp_target_memcpy(host, device_ptr, bytes, 0, 0, omp_get_initial_device(), device) == 0,
              "cannot copy %zu bytes back from device %d", bytes, device);
    omp_target_free(device_ptr, device);
}

void device_free(void *device_ptr, int device) { omp_target_free(device_ptr, device); }
