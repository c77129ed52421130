/*
 * One context's hold on one device (the topk_gpu of internal.h), shared by the files of offload/.
 */
#ifndef TOPK_GPU_H
#define TOPK_GPU_H

#include <omp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "internal.h"
#include "sizes.h"

/* Places the local `shared` in GPU shared memory; on the host it stays on the team's stack. */
#if defined(__NVPTX__)
#define IN_TEAM_MEMORY _Pragma("omp allocate(shared) allocator(omp_pteam_mem_alloc)")
#else
#define IN_TEAM_MEMORY
#endif

/* The buffers of the calls on one stream. Calls on one stream are ordered by the stream, so they can
 * share buffers; calls on different streams must not. */
typedef struct topk_workspace {
    void *stream;         /* the CUDA stream of its calls; NULL for the synchronous calls' workspace */
    bool used;
    void *scratch;        /* candidate lists, wide-k buffers and per-row parameters; no contents carry over */
    size_t scratch_bytes;
    void *tickets;        /* merge tickets: zeroed once, left zero by every call */
    size_t ticket_bytes;
} topk_workspace;

/* Streams a context keeps workspaces for at once; one more takes the place of the oldest. */
#define TOPK_STREAM_WORKSPACES 8

/* A buffer that a call on a stream may still use (in flight, or captured in a CUDA graph): freed when
 * the context is. */
typedef struct topk_retired {
    void *buffer;
    struct topk_retired *next;
} topk_retired;

struct topk_gpu {
    int device;           /* OpenMP device number: a GPU, or the initial device under TOPK_OFFLOAD_HOST=1 */
    bool on_host;         /* TOPK_OFFLOAD_HOST=1: the kernels run through OpenMP's host fallback */
    int sm_count;         /* multiprocessors of the GPU (132 when unknown, and on the host) */
    char name[96];        /* the GPU's name ("NVIDIA H200"), "host" under TOPK_OFFLOAD_HOST=1, or "unknown" */
    pthread_mutex_t lock; /* threads sharing the context take turns */
    void *stream;         /* topk_ctx_set_stream's CUDA stream, or NULL: calls are synchronous */
    topk_workspace sync;  /* the synchronous calls' (libomptarget's allocations) */
    topk_workspace streams[TOPK_STREAM_WORKSPACES]; /* the streams' (the driver's allocations) */
    int next_evicted;
    topk_retired *retired;
    char error[256];      /* the driver's message of the last TOPK_ERR_DEVICE_FAILURE on a stream */
};

/* The launch of a kernel that runs a team per row (the whole-row sampler, the speculative verifier):
 * `most_threads` a team on the GPU. Host teams (TOPK_OFFLOAD_HOST=1) get two threads each for small
 * batches, so the barriers and atomics are exercised (CI tests through this fallback), and one for large
 * batches, where host barriers cost more than the rows. */
static inline void topk_gpu_row_teams(const topk_gpu *gpu, int64_t batch, int most_threads, int *teams, int *threads)
{
    *teams = (int)(batch < TOPK_LAUNCH_TEAMS_MOST ? batch : TOPK_LAUNCH_TEAMS_MOST);
    *threads = most_threads;
    if (gpu->on_host) {
        int cores = omp_get_num_procs();
        *threads = cores >= 2 && batch <= 64 ? 2 : 1;
        *teams = cores / *threads < batch ? cores / *threads : (int)batch;
    }
}

/* The workspace of the calls on `stream` (gpu->stream for a call that enqueues there, NULL for a
 * synchronous call), at least this large (tickets zero). With the lock held. TOPK_ERR_DEVICE_FAILURE
 * leaves the driver's message in gpu->error. */
topk_status topk_gpu_workspace(topk_gpu *gpu, void *stream, size_t scratch_bytes, size_t ticket_bytes,
                               topk_workspace **out);

/* Copies bytes of host memory to device memory at `to`, synchronously (only calls on host memory, which
 * never go on a stream, have parameters to copy). With the lock held. */
topk_status topk_gpu_upload(topk_gpu *gpu, void *to, const void *from, size_t bytes);

/* Rounds a workspace reservation up (to 1 MiB) so that slowly growing calls do not reallocate every time. */
size_t topk_grown(size_t needed);

/* streams.c: the streams' side of topk_gpu_workspace, and freeing what they hold. */
topk_status topk_gpu_stream_workspace(topk_gpu *gpu, void *stream, size_t scratch_bytes, size_t ticket_bytes,
                                      topk_workspace **out);
void topk_gpu_close_streams(topk_gpu *gpu);

/* Through the CUDA driver, loaded at run time (never linked): if the device's primary context is in
 * the blocking-sync mode libomptarget imposes (or not yet active), switches it to CU_CTX_SCHED_AUTO,
 * which saves ~35 us per synchronous call. A context in another mode (PyTorch's) keeps its flags.
 * Silent and harmless where anything fails. */
void topk_cuda_prefer_spin(int ordinal);

/* The name of CUDA device `ordinal` into name (size bytes), or "" when the driver cannot say. */
void topk_cuda_device_name(int ordinal, char *name, int size);

/* Multiprocessors of CUDA device `ordinal`, or 0 when the driver cannot say. */
int topk_cuda_sm_count(int ordinal);

/* A CU_DEVICE_ATTRIBUTE_* of CUDA device `ordinal`, or 0 when the driver cannot say. */
int topk_cuda_attribute(int ordinal, int attribute);

#endif
