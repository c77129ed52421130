/*
 * topk.h: the whole public API of libtopk.
 *
 * libtopk selects the k largest (or smallest) entries of each row of a matrix, on NVIDIA GPUs through
 * OpenMP offload and on CPUs through OpenMP threads, from one source and with bit-for-bit identical
 * results on every backend.
 *
 * The contract, for every backend:
 *   - Rows are ranked under a TOTAL order: NaN above +inf (all NaNs equal), -0.0 below +0.0, and ties
 *     broken by the smaller column index. So the top-k set of a row and its order are unique.
 *     Asking for the smallest mirrors it: ascending, NaN last, ties still by the smaller index.
 *   - Output is sorted best first: values in the input dtype (the input's bits, NaN payloads kept) and
 *     column indices as int64, both as dense batch x k matrices.
 *   - k may be anything from 0 to vocab; rows may have a stride >= vocab (in elements).
 *   - fp32, fp16 and bf16 inputs are read directly. Sizes and offsets are 64-bit.
 *   - A bad input returns a status (see topk_strerror) and writes nothing.
 *
 * Typical use:
 *     topk_ctx *ctx;
 *     if (topk_ctx_create(&ctx, TOPK_BACKEND_AUTO) != TOPK_OK) ...;
 *     topk_status s = topk_select(ctx, logits, TOPK_BF16, batch, vocab, vocab, 50, 0, values, indices);
 *     if (s != TOPK_OK) fprintf(stderr, "topk: %s\n", topk_strerror(s));
 *     topk_ctx_free(ctx);
 */
#ifndef TOPK_H
#define TOPK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; only what is marked TOPK_API is exported. */
#if defined(__GNUC__) || defined(__clang__)
#define TOPK_API __attribute__((visibility("default")))
#else
#define TOPK_API
#endif

#define TOPK_VERSION_MAJOR 0
#define TOPK_VERSION_MINOR 1
#define TOPK_VERSION_PATCH 0
#define TOPK_VERSION_NUMBER (TOPK_VERSION_MAJOR * 10000 + TOPK_VERSION_MINOR * 100 + TOPK_VERSION_PATCH)

/* The version of the library actually linked: TOPK_VERSION_NUMBER at the time it was built. */
TOPK_API unsigned topk_version_number(void);

/* The same as a string, "MAJOR.MINOR.PATCH". */
TOPK_API const char *topk_version_string(void);

/* Every function that can fail returns one of these. TOPK_OK is 0; all others are errors. */
typedef enum topk_status {
    TOPK_OK = 0,
    TOPK_ERR_NULL_POINTER,   /* a required pointer (context, input, output) is NULL */
    TOPK_ERR_BAD_SHAPE,      /* batch or vocab < 1, or the matrix does not fit in 64-bit byte offsets */
    TOPK_ERR_BAD_K,          /* k < 0 or k > vocab */
    TOPK_ERR_BAD_STRIDE,     /* row stride < vocab */
    TOPK_ERR_BAD_DTYPE,      /* dtype is not one of topk_dtype */
    TOPK_ERR_BAD_BACKEND,    /* backend is not one of topk_backend */
    TOPK_ERR_BAD_ENV,        /* TOPK_BACKEND or a TOPK_* tuning variable holds a value we do not know */
    TOPK_ERR_BAD_PARAM,      /* unknown tuning parameter or flag bit, or a value out of its range */
    TOPK_ERR_NO_DEVICE,      /* the offload backend or device pointers were asked for and no usable GPU exists */
    TOPK_ERR_BAD_MEMORY,     /* device pointers given to a backend that reads host memory */
    TOPK_ERR_OUT_OF_MEMORY,  /* a workspace could not be allocated */
    TOPK_ERR_DEVICE_FAILURE, /* the GPU runtime reported a failure */
    TOPK_STATUS_COUNT        /* not a status: the number of them */
} topk_status;

/* A short readable message for a status ("k is negative or larger than vocab", ...). Never NULL; an
 * unknown code gives "unknown status". The string is static: do not free it. */
TOPK_API const char *topk_strerror(topk_status status);

/* The element type of the input matrix; values_out has the same type. */
typedef enum topk_dtype {
    TOPK_F32 = 0, /* IEEE binary32 */
    TOPK_F16 = 1, /* IEEE binary16 */
    TOPK_BF16 = 2 /* bfloat16: the top 16 bits of a binary32 */
} topk_dtype;

/* Size in bytes of one element of a dtype, or 0 for an unknown dtype. */
TOPK_API int topk_dtype_size(topk_dtype dtype);

/* Which implementation runs the selection.
 *   AUTO      offload when a GPU is usable (or the pointers are device pointers), else cpu.
 *   CPU       OpenMP threads on the host: a vectorised threshold filter, then an exact selection.
 *   OFFLOAD   one `omp target teams` region per call on the GPU.
 *   REFERENCE a full sort of (key, index) pairs per row: slow, obviously correct, the tests' oracle.
 * The environment variable TOPK_BACKEND (auto|cpu|offload|reference), when set, overrides the backend
 * given to topk_ctx_create; any other value makes topk_ctx_create fail with TOPK_ERR_BAD_ENV. */
typedef enum topk_backend {
    TOPK_BACKEND_AUTO = 0,
    TOPK_BACKEND_CPU = 1,
    TOPK_BACKEND_OFFLOAD = 2,
    TOPK_BACKEND_REFERENCE = 3
} topk_backend;

/* The backend's name ("auto", "cpu", "offload", "reference"), or NULL for an unknown value. */
TOPK_API const char *topk_backend_name(topk_backend backend);

/* A context holds the backend, the GPU device number, the workspace and the tuning knobs. Create one
 * and reuse it: the GPU workspace is allocated once and grows as needed. Threads may share a context
 * (calls that share its GPU workspace take turns) or each have their own. */
typedef struct topk_ctx topk_ctx;

/* Creates a context for the given backend (overridden by TOPK_BACKEND when that is set) and reads the
 * tuning variables (TOPK_THREADS, TOPK_TEAMS_PER_ROW, TOPK_CHUNK). Asking for TOPK_BACKEND_OFFLOAD
 * with no usable GPU fails with TOPK_ERR_NO_DEVICE; AUTO then quietly uses the CPU.
 * On success *ctx is set; on failure it is set to NULL. */
TOPK_API topk_status topk_ctx_create(topk_ctx **ctx, topk_backend backend);

/* Frees a context and its workspaces. NULL is allowed. */
TOPK_API void topk_ctx_free(topk_ctx *ctx);

/* The backend that this context runs: never AUTO (AUTO is resolved at creation). */
TOPK_API topk_backend topk_ctx_backend(const topk_ctx *ctx);

/* Tuning parameters. 0 always means "choose for me", which is the default. */
typedef enum topk_param {
    TOPK_PARAM_THREADS = 0,       /* cpu: OpenMP threads, 0..4096 (env TOPK_THREADS) */
    TOPK_PARAM_DEVICE = 1,        /* offload: OpenMP device number, -1..4096; -1 or 0 = the default device */
    TOPK_PARAM_TEAMS_PER_ROW = 2, /* offload: teams that share one row, 0..65536 (env TOPK_TEAMS_PER_ROW) */
    TOPK_PARAM_CHUNK = 3          /* cpu: least elements of a row one thread takes, 0..2^40 (env TOPK_CHUNK) */
} topk_param;

/* Sets a tuning parameter. Returns TOPK_ERR_BAD_PARAM for an unknown parameter or a value out of its range. */
TOPK_API topk_status topk_ctx_set_param(topk_ctx *ctx, topk_param param, int64_t value);

/* Reads a tuning parameter into *value. */
TOPK_API topk_status topk_ctx_get_param(const topk_ctx *ctx, topk_param param, int64_t *value);

/* Flags for topk_select, combined with |. */
#define TOPK_SMALLEST 1u       /* select the k smallest instead of the k largest */
#define TOPK_DEVICE_POINTERS 2u /* input and outputs are GPU memory (cudaMalloc, torch, omp_target_alloc) */

/* Selects the top k entries of each row of a batch x vocab matrix.
 *   input         row r starts at input + r * row_stride elements; elements of dtype.
 *   row_stride    in elements, >= vocab.
 *   k             0 <= k <= vocab. With k == 0 nothing is written and the outputs may be NULL.
 *   flags         TOPK_SMALLEST, TOPK_DEVICE_POINTERS; any other bit is TOPK_ERR_BAD_PARAM.
 *   values_out    batch x k elements of dtype, row r at values_out + r * k: the selected values, best first.
 *   indices_out   batch x k int64 column indices, same layout.
 * Returns TOPK_OK, or an error status with nothing written. */
TOPK_API topk_status topk_select(topk_ctx *ctx, const void *input, topk_dtype dtype, int64_t batch, int64_t vocab,
                        int64_t row_stride, int64_t k, unsigned flags, void *values_out, int64_t *indices_out);

#ifdef __cplusplus
}
#endif
#endif
