/*
 * The CUDA driver calls of the offload backend, loaded with dlopen on first use so that the library never
 * links libcuda and loads on machines without it (cuda_driver.c). Only the types and constants used are
 * declared here, with the driver's own values.
 */
#ifndef TOPK_CUDA_DRIVER_H
#define TOPK_CUDA_DRIVER_H

#include <stddef.h>
#include <stdint.h>

typedef int CUresult; /* 0: CUDA_SUCCESS */
typedef int CUdevice;
typedef uint64_t CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

enum {
    CU_STREAM_CAPTURE_MODE_RELAXED = 2,
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};

/* The driver entry points, as their _v2 (or current) ABI. */
#define TOPK_CUDA_CALLS(X)                                                                               \
    X(cuInit, (unsigned))                                                                                \
    X(cuGetErrorName, (CUresult, const char **))                                                         \
    X(cuGetErrorString, (CUresult, const char **))                                                       \
    X(cuDeviceGet, (CUdevice *, int))                                                                    \
    X(cuDeviceGetAttribute, (int *, int, CUdevice))                                                      \
    X(cuDeviceGetName, (char *, int, CUdevice))                                                          \
    X(cuDevicePrimaryCtxRetain, (CUcontext *, CUdevice))                                                 \
    X(cuDevicePrimaryCtxGetState, (CUdevice, unsigned *, int *))                                         \
    X(cuDevicePrimaryCtxSetFlags_v2, (CUdevice, unsigned))                                               \
    X(cuCtxGetCurrent, (CUcontext *))                                                                    \
    X(cuCtxPushCurrent_v2, (CUcontext))                                                                  \
    X(cuCtxPopCurrent_v2, (CUcontext *))                                                                 \
    X(cuModuleLoadData, (CUmodule *, const void *))                                                      \
    X(cuModuleGetFunction, (CUfunction *, CUmodule, const char *))                                       \
    X(cuModuleGetGlobal_v2, (CUdeviceptr *, size_t *, CUmodule, const char *))                           \
    X(cuMemAlloc_v2, (CUdeviceptr *, size_t))                                                            \
    X(cuMemFree_v2, (CUdeviceptr))                                                                       \
    X(cuMemcpyHtoD_v2, (CUdeviceptr, const void *, size_t))                                              \
    X(cuMemcpyDtoH_v2, (void *, CUdeviceptr, size_t))                                                    \
    X(cuMemsetD8Async, (CUdeviceptr, unsigned char, size_t, CUstream))                                   \
    X(cuLaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, \
                       CUstream, void **, void **))                                                      \
    X(cuStreamSynchronize, (CUstream))                                                                   \
    X(cuCtxSynchronize, (void))                                                                          \
    X(cuThreadExchangeStreamCaptureMode, (int *))

typedef struct topk_cuda_api {
#define TOPK_CUDA_FIELD_(name, args) CUresult(*name) args;
    TOPK_CUDA_CALLS(TOPK_CUDA_FIELD_)
#undef TOPK_CUDA_FIELD_
} topk_cuda_api;

/* The driver, initialised (cuInit), or NULL when there is none or it lacks a call above. Loaded once. */
const topk_cuda_api *topk_cuda(void);

/* "CUDA_ERROR_X: text" for a driver result, into message (size bytes). */
void topk_cuda_message(CUresult result, const char *what, char *message, size_t size);

#endif
