/*
 * The CUDA driver, loaded at run time (cuda_driver.h), and the few questions we ask it about a device
 * (gpu.h). Never linked: the library loads on machines without libcuda.
 */
#define _GNU_SOURCE /* RTLD_NODELETE */

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "cuda_driver.h"
#include "gpu.h"

#define CU_CTX_SCHED_AUTO 0u

static topk_cuda_api api;
static const topk_cuda_api *loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!cuda) return;
    bool complete = true;
#define TOPK_CUDA_LOAD_(name, args)                                                                      \
    *(void **)&api.name = dlsym(cuda, #name);                                                            \
    complete = complete && api.name;
    TOPK_CUDA_CALLS(TOPK_CUDA_LOAD_)
#undef TOPK_CUDA_LOAD_
    if (complete && api.cuInit(0) == 0) loaded = &api;
}

const topk_cuda_api *topk_cuda(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

void topk_cuda_message(CUresult result, const char *what, char *message, size_t size)
{
    const char *name = "CUDA_ERROR_UNKNOWN", *text = "no description";
    const topk_cuda_api *cu = topk_cuda();
    if (cu) {
        cu->cuGetErrorName(result, &name);
        cu->cuGetErrorString(result, &text);
    }
    snprintf(message, size, "%s: %s (%s)", what, name, text);
}

/* The CUdevice of `ordinal`, or -1 without a driver. */
static CUdevice device_of(const topk_cuda_api *cu, int ordinal)
{
    CUdevice device;
    return cu && cu->cuDeviceGet(&device, ordinal) == 0 ? device : -1;
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
    const topk_cuda_api *cu = topk_cuda();
    CUdevice device = device_of(cu, ordinal);
    unsigned flags;
    int active;
    if (device >= 0 && cu->cuDevicePrimaryCtxGetState(device, &flags, &active) == 0 &&
        (!active || (flags & SCHED_MASK) == SCHED_BLOCKING_SYNC))
        cu->cuDevicePrimaryCtxSetFlags_v2(device, (flags & ~SCHED_MASK) | CU_CTX_SCHED_AUTO);
}

int topk_cuda_attribute(int ordinal, int attribute)
{
    const topk_cuda_api *cu = topk_cuda();
    CUdevice device = device_of(cu, ordinal);
    int value = 0;
    if (device < 0 || cu->cuDeviceGetAttribute(&value, attribute, device) != 0) value = 0;
    return value;
}

int topk_cuda_sm_count(int ordinal) { return topk_cuda_attribute(ordinal, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT); }

void topk_cuda_device_name(int ordinal, char *name, int size)
{
    const topk_cuda_api *cu = topk_cuda();
    CUdevice device = device_of(cu, ordinal);
    name[0] = 0;
    if (device < 0 || cu->cuDeviceGetName(name, size, device) != 0) name[0] = 0;
    name[size - 1] = 0;
}
