/*
 * The two things we ask of the CUDA driver directly (gpu.h), through dlopen so that the library never
 * links libcuda and loads on machines without it.
 */
#define _GNU_SOURCE /* RTLD_NODELETE */

#include <dlfcn.h>

#include "gpu.h"

#define CU_CTX_SCHED_AUTO 0u
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16

typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_device_get_fn)(int *, int);
typedef int (*cu_ctx_state_fn)(int, unsigned *, int *);
typedef int (*cu_ctx_set_flags_fn)(int, unsigned);
typedef int (*cu_attribute_fn)(int *, int, int);
typedef int (*cu_name_fn)(char *, int, int);

/* Opens the driver and returns the CUdevice of `ordinal`, or NULL. */
static void *open_driver(int ordinal, int *device)
{
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!cuda) return NULL;
    cu_init_fn init = (cu_init_fn)dlsym(cuda, "cuInit");
    cu_device_get_fn device_get = (cu_device_get_fn)dlsym(cuda, "cuDeviceGet");
    if (!init || !device_get || init(0) != 0 || device_get(device, ordinal) != 0) {
        dlclose(cuda);
        return NULL;
    }
    return cuda;
}

/*
 * libomptarget 19 initialises the device when the first image registers (before main, or when libtopk
 * is loaded), and puts the primary context into blocking sync unless someone made it active first: a
 * synchronous call then sleeps and costs ~35 us more. The driver lets the flags change on an active
 * context, so replace exactly that mode with AUTO (spin while the GPU is busy). A context created by
 * someone else in another mode (PyTorch's) keeps its flags.
 */
void topk_cuda_prefer_spin(int ordinal)
{
    enum { SCHED_MASK = 7u, SCHED_BLOCKING_SYNC = 4u };
    int device;
    void *cuda = open_driver(ordinal, &device);
    if (!cuda) return;
    cu_ctx_state_fn state = (cu_ctx_state_fn)dlsym(cuda, "cuDevicePrimaryCtxGetState");
    cu_ctx_set_flags_fn set_flags = (cu_ctx_set_flags_fn)dlsym(cuda, "cuDevicePrimaryCtxSetFlags_v2");
    unsigned flags;
    int active;
    if (state && set_flags && state(device, &flags, &active) == 0 &&
        (!active || (flags & SCHED_MASK) == SCHED_BLOCKING_SYNC))
        set_flags(device, (flags & ~SCHED_MASK) | CU_CTX_SCHED_AUTO);
    dlclose(cuda);
}

int topk_cuda_sm_count(int ordinal)
{
    int device, count = 0;
    void *cuda = open_driver(ordinal, &device);
    if (!cuda) return 0;
    cu_attribute_fn attribute = (cu_attribute_fn)dlsym(cuda, "cuDeviceGetAttribute");
    if (!attribute || attribute(&count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device) != 0) count = 0;
    dlclose(cuda);
    return count;
}

void topk_cuda_device_name(int ordinal, char *name, int size)
{
    int device;
    name[0] = 0;
    void *cuda = open_driver(ordinal, &device);
    if (!cuda) return;
    cu_name_fn get_name = (cu_name_fn)dlsym(cuda, "cuDeviceGetName");
    if (!get_name || get_name(name, size, device) != 0) name[0] = 0;
    name[size - 1] = 0;
    dlclose(cuda);
}
