/*
 * The stream launcher: runs a target region's GPU kernel through the CUDA driver on the context's
 * stream (topk_ctx_set_stream), so that the call returns without waiting and can be captured in a CUDA
 * graph. libomptarget cannot do either (it launches on a stream of its own and waits at the end of
 * every region); the kernels clang makes from our regions are ordinary CUDA kernels, so we load the
 * library's own device image and launch them ourselves (DESIGN.md, "Two launchers").
 *
 * A launch site names its region by the function that holds it and the region's place in that
 * function (launch sites keep one function per set of regions: select_on_device, ...), and gives its
 * captured variables by name; the build's kernel table (offload/kernel_table.cmake) says which kernel
 * that is and in which order it takes them. Nothing about a kernel's arguments is written by hand.
 */
#ifndef TOPK_LAUNCHER_H
#define TOPK_LAUNCHER_H

#include <stdint.h>
#include <string.h>

#include "gpu.h"

/* One captured variable of a region: its name in the source and its value as the kernel's 64-bit
 * parameter (pointers and integers as they are; a float's bits in the low half). */
typedef struct topk_kernel_arg {
    const char *name;
    uint64_t value;
} topk_kernel_arg;

static inline uint64_t topk_kernel_f32(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

#define TOPK_KERNEL_ARG(variable) {#variable, (uint64_t)(uintptr_t)(variable)}
#define TOPK_KERNEL_ARG_F32(variable) {#variable, topk_kernel_f32(variable)}
/* ", TOPK_KERNEL_ARG(batch), ..." for the plan's launch fields (plan.h), from locals of those names */
#define TOPK_KERNEL_PLAN_ARG_(type, name) , TOPK_KERNEL_ARG(name)
#define TOPK_PLAN_KERNEL_ARGS TOPK_PLAN_LAUNCH_FIELDS(TOPK_KERNEL_PLAN_ARG_)

/* Loads the device image of the library for gpu's device, once per process and device. */
topk_status topk_launcher_open(topk_gpu *gpu);

/* Enqueues the kernel of region `place` of `function` on gpu->stream with teams blocks of threads.
 * Returns at once; TOPK_ERR_DEVICE_FAILURE (the driver's message in gpu->error) when the driver refuses. */
topk_status topk_launch(topk_gpu *gpu, const char *function, int place, int64_t teams, int64_t threads,
                        const topk_kernel_arg *args, int count);

/* The device's primary context made current on this thread for a few driver calls, and put back. */
typedef struct topk_cuda_scope {
    bool pushed;
    int capture_mode; /* the thread's capture mode, relaxed inside the scope when `relaxed` */
    bool relaxed;
} topk_cuda_scope;
topk_status topk_cuda_enter(topk_gpu *gpu, topk_cuda_scope *scope, bool relaxed);
void topk_cuda_leave(topk_cuda_scope *scope);

#endif
