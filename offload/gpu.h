/*
 * One context's hold on one device (the topk_gpu of internal.h), shared by the files of offload/.
 */
#ifndef TOPK_GPU_H
#define TOPK_GPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

/* Places the local `shared` in GPU shared memory; on the host it stays on the team's stack. */
#if defined(__NVPTX__)
#define IN_TEAM_MEMORY _Pragma("omp allocate(shared) allocator(omp_pteam_mem_alloc)")
#else
#define IN_TEAM_MEMORY
#endif

struct topk_gpu {
    int device;           /* OpenMP device number: a GPU, or the initial device under TOPK_OFFLOAD_HOST=1 */
    bool on_host;         /* TOPK_OFFLOAD_HOST=1: the kernels run through OpenMP's host fallback */
    int sm_count;         /* multiprocessors of the GPU (132 when unknown, and on the host) */
    char name[96];        /* the GPU's name ("NVIDIA H200"), "host" under TOPK_OFFLOAD_HOST=1, or "unknown" */
    pthread_mutex_t lock; /* threads sharing the context take turns */
    void *scratch;        /* candidate lists and wide-k buffers; no contents carry over between calls */
    size_t scratch_bytes;
    void *tickets;        /* merge tickets: zeroed once, left zero by every call */
    size_t ticket_bytes;
};

/* Makes the workspace at least this large (keeping the tickets zero). Called with the lock held. */
topk_status topk_gpu_reserve(topk_gpu *gpu, size_t scratch_bytes, size_t ticket_bytes);

/* Through the CUDA driver, loaded at run time (never linked): if the device's primary context is in
 * the blocking-sync mode libomptarget imposes (or not yet active), switches it to CU_CTX_SCHED_AUTO,
 * which saves ~35 us per synchronous call. A context in another mode (PyTorch's) keeps its flags.
 * Silent and harmless where anything fails. */
void topk_cuda_prefer_spin(int ordinal);

/* The name of CUDA device `ordinal` into name (size bytes), or "" when the driver cannot say. */
void topk_cuda_device_name(int ordinal, char *name, int size);

/* Multiprocessors of CUDA device `ordinal`, or 0 when the driver cannot say. */
int topk_cuda_sm_count(int ordinal);

#endif
