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

#include <stddef.h>
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
#define TOPK_VERSION_MINOR 3
#define TOPK_VERSION_PATCH 0
#define TOPK_VERSION_NUMBER (TOPK_VERSION_MAJOR * 10000 + TOPK_VERSION_MINOR * 100 + TOPK_VERSION_PATCH)

/* The version of the library actually linked: TOPK_VERSION_NUMBER at the time it was built. */
TOPK_API unsigned topk_version_number(void);

/* The same as a string, "MAJOR.MINOR.PATCH". */
TOPK_API const char *topk_version_string(void);

/* Every function that can fail returns one of these. TOPK_OK is 0; all others are errors. The numbers
 * are stable: a status keeps its value in every later version, and new ones are added at the end. */
typedef enum topk_status {
    TOPK_OK = 0,
    TOPK_ERR_NULL_POINTER = 1,       /* a required pointer (context, input, output) is NULL */
    TOPK_ERR_BAD_SHAPE = 2,          /* batch or vocab < 1, or the matrix does not fit in 64-bit byte offsets */
    TOPK_ERR_BAD_K = 3,              /* k < 0 or k > vocab */
    TOPK_ERR_BAD_STRIDE = 4,         /* row stride < vocab */
    TOPK_ERR_BAD_DTYPE = 5,          /* dtype is not one of topk_dtype */
    TOPK_ERR_BAD_BACKEND = 6,        /* backend is not one of topk_backend */
    TOPK_ERR_BAD_ENV = 7,            /* TOPK_BACKEND or a TOPK_* tuning variable holds a value we do not know */
    TOPK_ERR_BAD_PARAM = 8,          /* unknown tuning parameter or flag bit, or a value out of its range */
    TOPK_ERR_NO_DEVICE = 9,          /* the offload backend or device pointers were asked for and no usable GPU exists */
    TOPK_ERR_BAD_MEMORY = 10,        /* device pointers given to a backend that reads host memory */
    TOPK_ERR_OUT_OF_MEMORY = 11,     /* a workspace could not be allocated */
    TOPK_ERR_DEVICE_FAILURE = 12,    /* the GPU runtime reported a failure */
    TOPK_ERR_BAD_SAMPLING = 13,      /* a sampling parameter is out of range (temperature, top_k, top_p, min_p,
                                        a logprobs request's top_n, a draft token id) */
    TOPK_ERR_STREAM_CAPTURING = 14,  /* the stream is capturing a graph that cannot hold this call (the Python
                                        binding's, for per-row values in host memory: the C calls never need it) */
    TOPK_ERR_COMM = 15,              /* a communicator operation (topk_comm) failed */
    TOPK_ERR_BAD_SHARDS = 16,        /* the ranks' shards do not tile the row, or the ranks' calls differ */
    TOPK_ERR_UNSUPPORTED = 17,       /* this build or backend cannot do what was asked (yet) */
    TOPK_STATUS_COUNT                /* not a status: the number of them in this version */
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
 * environment: TOPK_THREADS, TOPK_TEAMS_PER_ROW, TOPK_CHUNK, TOPK_PROFILE (the parameters below),
 * TOPK_TEAM_THREADS (offload: threads of a GPU team, a multiple of 32 in 32..1024), TOPK_TUNING_FILE
 * (topk_tuning_check) and TOPK_OFFLOAD_HOST=1 (offload: run the GPU kernels through OpenMP's host
 * fallback, for testing without a GPU); a value it cannot read fails with TOPK_ERR_BAD_ENV. Asking for TOPK_BACKEND_OFFLOAD
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
    TOPK_PARAM_CHUNK = 3,         /* cpu: least elements of a row one thread takes, 0..2^40 (env TOPK_CHUNK) */
    TOPK_PARAM_PROFILE = 4,       /* 1: time the stages of each call (topk_ctx_last_profile), 0..1 (env TOPK_PROFILE) */
    TOPK_PARAM_TEAM_THREADS = 5,  /* offload: threads of a GPU team, 0 or a multiple of 32 in 32..1024 (env TOPK_TEAM_THREADS) */
    TOPK_PARAM_SHRINK_AT = 6,     /* offload: candidates a team keeps before it raises its floor, 1..4096 (env TOPK_SHRINK_AT) */
    /* topk_sample, rows with top-p or min-p and no top-k filter: how many of the row's best to select and draw
     * from when the row's kept set lies inside them (the same draw as over the whole row, which is the
     * fallback); 1: never, every such row is sampled over the whole row (the old path, for A/B timing);
     * 0: the default, 1024; else 2..1024 (env TOPK_SAMPLE_LIST) */
    TOPK_PARAM_SAMPLE_LIST = 7
} topk_param;

/* Sets a tuning parameter. Returns TOPK_ERR_BAD_PARAM for an unknown parameter or a value out of its range. */
TOPK_API topk_status topk_ctx_set_param(topk_ctx *ctx, topk_param param, int64_t value);

/* Reads a tuning parameter into *value. */
TOPK_API topk_status topk_ctx_get_param(const topk_ctx *ctx, topk_param param, int64_t *value);

/* ---- CUDA streams and graphs --------------------------------------------------------------------------
 * By default a GPU call is synchronous: it runs on a stream of libomptarget's and returns when its
 * results are written, so the caller must have finished writing the input first (e.g. synchronised its
 * stream). With a stream set on the context, every call on device pointers (TOPK_DEVICE_POINTERS) of
 * topk_select, topk_sample and the sampling helpers instead ENQUEUES its kernel on that stream and
 * returns at once: it runs after the work before it on the stream, its results are there for the work
 * after it, and the host never waits. Such calls may be captured in a CUDA graph (stream capture), whose
 * replays run them again on the same buffers with the parameters of the capture. Errors found before the
 * launch (every bad argument) are still returned; a launch the driver refuses returns
 * TOPK_ERR_DEVICE_FAILURE, with the driver's message in topk_ctx_last_error. A fault while the kernel runs
 * is the stream's, as for any kernel (the next synchronisation reports it).
 * Calls on host memory stay synchronous and do not use the stream.
 * Workspace: the context owns it, one per stream it has seen (calls on one stream are ordered, calls on
 * different streams never share buffers). Buffers a stream call used stay allocated until topk_ctx_free,
 * which first waits for the device (cuCtxSynchronize; the streams may be destroyed before it): a graph that captured a call must not be replayed after
 * topk_ctx_free. The first call of a shape may allocate; inside a capture that allocation is not part of
 * the graph. Per-row sampling parameters are device memory in such calls (TOPK_DEVICE_POINTERS), read at
 * each replay.
 * Threads: the stream is the context's; threads that use different streams use different contexts (or
 * set the stream and call under a lock of their own). A context knows a stream by its handle: before
 * destroying a stream it used, let the stream finish (cuStreamSynchronize), since a new stream may get the
 * same handle and with it the old stream's workspace. */

/* Sets the CUstream (cudaStream_t; CU_STREAM_LEGACY and CU_STREAM_PER_THREAD work too) of the context's
 * calls on device pointers, on the context's device, or NULL for synchronous calls (the default). The
 * first stream of a process loads the library's kernels into the device's primary CUDA context.
 * Returns TOPK_ERR_NO_DEVICE for a context without a GPU (cpu or reference backend, TOPK_OFFLOAD_HOST=1),
 * TOPK_ERR_DEVICE_FAILURE when the kernels cannot be loaded (see topk_ctx_last_error). */
TOPK_API topk_status topk_ctx_set_stream(topk_ctx *ctx, void *stream);

/* The CUDA driver's message for the last TOPK_ERR_DEVICE_FAILURE of a call on a stream ("cuLaunchKernel:
 * CUDA_ERROR_INVALID_HANDLE (invalid resource handle)"), or "". Valid until the next call on the context. */
TOPK_API const char *topk_ctx_last_error(const topk_ctx *ctx);

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

/* ---- Profiling and tuning tables ---------------------------------------------------------------------
 * Profiling: with TOPK_PARAM_PROFILE set to 1 (or TOPK_PROFILE=1 in the environment) every topk_select
 * on the context times its stages with a monotonic clock; off (the default) the timers cost one branch.
 * A stage a backend does not have, or does not measure, reads 0.
 *
 * Tuning tables: a knob left at 0 ("choose for me") takes the value measured best on the nearest shape
 * of a tuning table for this backend and device, when the table has one; else the built-in heuristics.
 * The table is the file named by TOPK_TUNING_FILE (read by topk_ctx_create; a malformed file makes it
 * fail with TOPK_ERR_BAD_ENV, and TOPK_TUNING_FILE=off disables tables), else the tables compiled into
 * the library from tuning/ in the source tree. tuning/README.md gives the format and "nearest".
 * A table only changes how work is split, never a result. */

/* Microseconds spent in each stage of the last topk_select on a context. EXPERIMENTAL: its fields may
 * change in any minor version (before 1.0 the SONAME carries the minor version, so a library of another
 * layout is never loaded in its place). */
typedef struct topk_stage_times {
    double total_us;    /* topk_select from entry to return */
    double validate_us; /* argument checks */
    double tuning_us;   /* choosing the knobs left at 0 (tuning table lookup) */
    double backend_us;  /* the backend's call, everything below included */
    /* cpu backend (wall time of the parallel region's phases, seen by its first thread) */
    double cpu_select_us; /* every row or segment filtered and, for whole rows, sorted and written */
    double cpu_merge_us;  /* rows cut into segments: the segments' winners merged, sorted and written */
    /* offload backend */
    double gpu_plan_us;          /* planning the launch and reserving the workspace */
    double gpu_launch_wait_us;   /* the target region from launch to completion, seen by the host */
    double gpu_copies_us;        /* host<->device copies of mapped inputs and outputs */
    double gpu_kernel_select_us; /* on the device: the teams' chunk selection */
    double gpu_kernel_merge_us;  /* on the device: merging the chunks' candidates */
    /* the knobs the call ran with, after "choose for me" (0: the backend's own heuristic) */
    int64_t threads, chunk, teams_per_row;
} topk_stage_times;

/* Copies the stage times of the last successful topk_select on this context into *out. Returns
 * TOPK_ERR_NULL_POINTER, or TOPK_ERR_BAD_PARAM while profiling is off or before any profiled call.
 * With several threads on one context, "last" is whichever call finished last: profile one thread. */
TOPK_API topk_status topk_ctx_last_profile(const topk_ctx *ctx, topk_stage_times *out);

/* Checks a tuning table file without using it. Returns TOPK_OK, TOPK_ERR_NULL_POINTER, or
 * TOPK_ERR_BAD_ENV with a message naming the first bad line ("tuning.txt:3: expected 9 columns, got 8")
 * written to message (NUL-terminated, cut to message_size; message may be NULL when size is 0). */
TOPK_API topk_status topk_tuning_check(const char *path, char *message, size_t message_size);

/* The device name this context looks for in tuning tables' device column: for cpu the CPU's model name
 * and processor count ("AMD-EPYC-7B13-x2"), for offload the GPU's name ("NVIDIA-H200"); "" for the
 * reference backend. Never NULL; valid while the context lives. */
TOPK_API const char *topk_ctx_tuning_device(const topk_ctx *ctx);

/* ---- Sampling ---------------------------------------------------------------------------------------
 * One token per row, drawn from softmax(logits / temperature) restricted by top-k, top-p and min-p,
 * with a counter-based generator (Philox-4x32-10): row r of a call draws from the counter (offset, r)
 * under the key `seed` (or, with per-row seeds, from (offsets[r] or offset, 0) under seeds[r]), so the same
 * seed, offset and inputs give the same tokens and probabilities on every backend and thread count, bit for bit (the library's own exp, no contraction, and integer
 * weights, whose sums do not depend on order: DESIGN.md).
 *
 * The filters apply in this order: temperature; top-k over the logits (ties: the contract's order);
 * softmax; top-p, the smallest best-first prefix whose mass reaches top_p; min-p, tokens with
 * p >= min_p * p_max; then one draw (inverse CDF over the kept tokens, best first).
 * Odd rows: NaN ranks and weighs as -inf (never drawn); if a row holds +inf, its +inf tokens share the
 * mass equally; a row with nothing but -inf and NaN gives token 0 with probability 1. A token whose
 * weight is below 2^-(62 - floor(log2 vocab)) of the best one's is never drawn (vocab 128256: a logit
 * ~32 temperatures under the best). Rows may hold up to 2^32 - 1 elements (else TOPK_ERR_BAD_SHAPE).
 *
 * Each filter is optional, and is given either as one value for the call or as one value per row
 * (an array of batch values, which then wins over the scalar). Per-row arrays (temperatures, top_ks,
 * top_ps, min_ps, seeds, offsets, and the helpers' below) are where the call's other pointers are: host
 * memory, or GPU memory with TOPK_DEVICE_POINTERS, read only by the kernel, so that the host reads nothing
 * during the call and a CUDA graph replays whatever the arrays hold then. A value out of range returns
 * TOPK_ERR_BAD_SAMPLING when the host can read it (scalars, host arrays); one in device memory makes its
 * row's result invalid instead: token -1 with probability NaN (topk_sample), a row of NaN (the helpers). */
typedef struct topk_sampling {
    float temperature;          /* finite, >= 0; 0 means greedy: the row's best token (NaN counting as -inf) */
    int64_t top_k;              /* 0 = off; else keep the top_k best logits (1..vocab) */
    float top_p;                /* 1 = off; else keep the smallest best-first prefix with mass >= top_p, (0, 1] */
    float min_p;                /* 0 = off; else keep tokens with p >= min_p * p_max, [0, 1] */
    const float *temperatures;  /* per row, or NULL */
    const int64_t *top_ks;      /* per row, or NULL */
    const float *top_ps;        /* per row, or NULL */
    const float *min_ps;        /* per row, or NULL */
    uint64_t seed;              /* Philox key */
    uint64_t offset;            /* Philox counter offset: advance it between calls (e.g. by 1 per step) */
    const uint64_t *seeds;      /* per row, or NULL: row r's own key, and then its draw depends on nothing
                                   else (not on r, nor on the batch): the same request draws the same token
                                   at any row of any batch */
    const uint64_t *offsets;    /* per row, or NULL: row r's counter offset; memory as for seeds */
    int64_t max_top_k;          /* with top_ks in device memory: no row's top_k is above this (0: unknown).
                                   A speed hint: the GPU selects this many candidates a row for top-k
                                   sampling; a row with a larger top_k is still exact, sampled the slower
                                   whole-row way. Ignored otherwise (the host reads top_ks). */
} topk_sampling;

/* The defaults: temperature 1, every filter off, seed 0, offset 0. */
TOPK_API topk_sampling topk_sampling_default(void);

/* Samples one token per row of a batch x vocab matrix of logits (row r at logits + r * row_stride
 * elements). flags: TOPK_DEVICE_POINTERS only. tokens_out: batch int64. probs_out: NULL, or batch
 * floats receiving the chosen token's probability under the filtered, renormalised distribution.
 * Returns TOPK_OK, or an error status with nothing written. */
TOPK_API topk_status topk_sample(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                                 int64_t row_stride, const topk_sampling *params, unsigned flags,
                                 int64_t *tokens_out, float *probs_out);

/* ---- Logprobs -----------------------------------------------------------------------------------------
 * topk_sample_logprobs is topk_sample (the same tokens and probabilities, bit for bit, for the same
 * parameters) that also writes, for each row, any of:
 *   raw[r]        the chosen token's log-probability under the RAW distribution, log_softmax(logits / T)
 *                 over the whole row (vLLM's "raw_logprobs"), with T the row's temperature, or T = 1 for a
 *                 greedy row (temperature 0: the logits' own log_softmax, as vLLM reports raw logprobs).
 *                 No filter (top-k, top-p, min-p) applies. Computed as (x - max) / T - lse in double and
 *                 rounded once to float, where max is the row's best logit and lse = log(S / 2^s) is the
 *                 row's log-sum-exp less max / T, from the integer mass S the sampler's weights give at T
 *                 (DESIGN.md): exact in any summation order, so identical on every backend.
 *   processed[r]  the chosen token's log-probability under the PROCESSED distribution (after temperature,
 *                 top-k, top-p and min-p, renormalised; vLLM's "processed_logprobs"): exactly
 *                 (float)log((double)probs_out[r]), the log of the probability topk_sample reports, so 0
 *                 for greedy rows.
 *   top_tokens[r * top_n + j], top_logprobs[r * top_n + j]   (j < top_n <= TOPK_TOP_LOGPROBS_MAX)
 *                 the row's top_n tokens (the OpenAI API's top_logprobs) with their RAW log-probabilities,
 *                 best first under the sampling order: the library's total order with NaN ranked as -inf
 *                 (ties to the smaller index). Where top_n > vocab, entries j >= vocab are token -1 with
 *                 log-probability -inf.
 * Odd rows, as topk_sample treats them: a NaN logit counts as -inf (log-probability -inf); a row holding
 * +inf gives each of its c +inf tokens -log(c) and every other token -inf; a row of nothing but -inf and
 * NaN gives its best token (the first) 0 and every other token -inf. A row with parameters in device memory
 * that are out of range gets NaN everywhere and top tokens -1.
 * Precision: raw log-probabilities are within 2e-6 * (1 + |logprob|) of log_softmax in exact arithmetic over
 * the same logits (the error of the library's float exp on the few tokens that dominate the mass, and of
 * tokens below 2^-s of the best, which weigh 0; see DESIGN.md), and the processed ones within 2e-6 of
 * log(probs_out) exactly; the tests check both against a float64 reference.
 * Cost: raw or top logprobs cost one more pass over each row (its mass at the raw temperature); top_n
 * longer than the row's top-k list (0 for rows without top-k, else top_k; 1 when greedy) a search by
 * count and a gather as well. processed alone costs one log a row. */
#define TOPK_TOP_LOGPROBS_MAX 20

/* Which logprobs to write: each output pointer NULL when not wanted; memory as the call's other outputs
 * (host, or GPU with TOPK_DEVICE_POINTERS). top_n in [0, TOPK_TOP_LOGPROBS_MAX], else TOPK_ERR_BAD_SAMPLING;
 * with top_n 0, top_tokens and top_logprobs are ignored. */
typedef struct topk_logprobs {
    float *raw;           /* batch floats, or NULL */
    float *processed;     /* batch floats, or NULL */
    int64_t top_n;        /* tokens a row in top_tokens and top_logprobs */
    int64_t *top_tokens;  /* batch x top_n int64 (dense, row r at r * top_n), or NULL */
    float *top_logprobs;  /* batch x top_n floats, same layout, or NULL */
} topk_logprobs;

/* topk_sample with logprobs (above): tokens_out and probs_out as topk_sample writes them, and the outputs
 * `logprobs` names (NULL: none, the call is topk_sample). Returns TOPK_OK, or an error status with nothing
 * written. */
TOPK_API topk_status topk_sample_logprobs(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch,
                                          int64_t vocab, int64_t row_stride, const topk_sampling *params,
                                          unsigned flags, int64_t *tokens_out, float *probs_out,
                                          const topk_logprobs *logprobs);

/* softmax(logits / temperature) of each row into probs_out (batch x vocab fp32, dense), exactly the
 * probabilities topk_sample draws from with no filter. temperatures: NULL, or batch floats (memory as above)
 * overriding `temperature`; temperature must be finite and > 0. */
TOPK_API topk_status topk_softmax(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch, int64_t vocab,
                                  int64_t row_stride, float temperature, const float *temperatures, unsigned flags,
                                  float *probs_out);

/* Keeps the top_k largest probabilities of each row (the total order decides ties), zeroes the rest
 * and renormalises: probs_out is batch x vocab fp32, dense. top_ks: NULL or batch values (memory as above); 0 or
 * vocab keeps every entry. probs need not sum to 1; NaN, negative and +inf entries count as 0, and a row
 * whose kept mass is 0 is written as zeros. */
TOPK_API topk_status topk_top_k_renorm_probs(topk_ctx *ctx, const float *probs, int64_t batch, int64_t vocab,
                                             int64_t row_stride, int64_t top_k, const int64_t *top_ks,
                                             unsigned flags, float *probs_out);

/* Keeps the smallest best-first prefix of each row whose mass is >= top_p times the row's mass, zeroes
 * the rest and renormalises: probs_out is batch x vocab fp32, dense. top_ps: NULL or batch values (memory as above)
 * in (0, 1]. Entries are read as by topk_top_k_renorm_probs. */
TOPK_API topk_status topk_top_p_renorm_probs(topk_ctx *ctx, const float *probs, int64_t batch, int64_t vocab,
                                             int64_t row_stride, float top_p, const float *top_ps, unsigned flags,
                                             float *probs_out);

/* Copies logits to logits_out (batch x vocab of dtype, dense) with every entry outside the row's top_k
 * set (ranked as topk_sample ranks: NaN as -inf) set to -inf. top_ks: NULL or batch values (memory as above); 0 or
 * vocab keeps every entry. */
TOPK_API topk_status topk_top_k_mask_logits(topk_ctx *ctx, const void *logits, topk_dtype dtype, int64_t batch,
                                            int64_t vocab, int64_t row_stride, int64_t top_k,
                                            const int64_t *top_ks, unsigned flags, void *logits_out);

/* ---- Speculative decoding: chain verification ---------------------------------------------------------
 * topk_chain_speculative_sample verifies a chain of S draft tokens per row against the target model, as
 * FlashInfer's chain_speculative_sampling does (Leviathan et al. / Chen et al.: the emitted tokens are
 * distributed exactly as the target model's), seeded and bit-identical on every backend.
 * Inputs, dense fp32 / int64: draft_probs B x S x V (q_j), draft_token_ids B x S (d_j), target_probs
 * B x (S + 1) x V (p_j). For each row, independently of every other row:
 *   - position j < S accepts d_j iff r_j * q_j(d_j) < p_j(d_j) * 2^64 in exact arithmetic, with r_j the row's
 *     64-bit Philox word for j: probability min(1, p/q) to within 2^-64. q_j(d_j) = 0 accepts whenever
 *     p_j(d_j) > 0; p_j(d_j) = 0 always rejects.
 *   - at the first rejected position a (a = S if none), the row emits d_0 .. d_{a-1} and one more token:
 *     for a < S the correction token, drawn from normalize(max(0, p_a - q_a)) (from p_a when that residual
 *     is 0 everywhere, which only inconsistent inputs give, e.g. p = q = 0 at d_a); for a = S the bonus
 *     token, drawn from p_S. A distribution with no mass at all gives token 0.
 *   - output_token_ids[b * (S + 1) + j] = d_j for j < a, the drawn token at j = a, -1 after.
 *   - accepted_num[b]: how many of the S positions pass their acceptance test, each tested on its own
 *     (FlashInfer's "accepted if independent" metric: its mean over rows is sum_j sum_x min(p_j, q_j)(x)
 *     for normalised inputs); emitted_num[b] = a, the draft tokens emitted. Either pointer may be NULL.
 * Probabilities are read as the renorm helpers read them: NaN, negative and +inf count as 0. The inputs are
 * not renormalised: the exactness proof assumes each p_j and q_j sums to 1.
 * Randomness: row b's word for position j (acceptance at j < S, the final draw at j = S) is Philox-4x32-10
 * under the key `seed` at counter (offset, b, 2^31 | j), or with per-row seeds under seeds[b] at
 * (offsets[b] or offset, 0, 2^31 | j): a row's result then depends only on its own inputs and (seed,
 * offset), at any position in any batch. The top bit keeps these counters apart from topk_sample's.
 * Draws are an inverse CDF (token order) over integer weights W = trunc(x * 2^(s - E)), x = max(0, p - q)
 * in double (or p), 2^E above the largest x, s = 62 - floor(log2 V): sums exact in any order. The drawn
 * distribution is within V / 2^(61 - floor(log2 V)) in total variation of the exact one (3.7e-9 for
 * V = 128256); DESIGN.md has the argument.
 * Memory: with TOPK_DEVICE_POINTERS every array (inputs, outputs, seeds, offsets) is device memory; a draft
 * token outside [0, V) then counts as p = q = 0 (rejected) since the host cannot check it; in host memory
 * it returns TOPK_ERR_BAD_SAMPLING. With a stream set (topk_ctx_set_stream) and device pointers the kernel
 * is enqueued on the stream like topk_sample's. */
typedef struct topk_speculative {
    uint64_t seed, offset;     /* Philox key and counter offset, as topk_sampling's */
    const uint64_t *seeds;     /* per row, or NULL: row b's own key (batch invariance) */
    const uint64_t *offsets;   /* per row, or NULL: row b's counter offset */
} topk_speculative;

/* Chain speculative sampling (above). batch >= 1, num_speculative (S) >= 1, 1 <= vocab <= 2^32 - 1 and
 * batch <= 2^32 - 1 (else TOPK_ERR_BAD_SHAPE); flags: TOPK_DEVICE_POINTERS only. output_token_ids is
 * batch x (S + 1) int64; accepted_num and emitted_num batch int64 each, or NULL. Returns TOPK_OK, or an
 * error status with nothing written. */
TOPK_API topk_status topk_chain_speculative_sample(topk_ctx *ctx, const float *draft_probs,
                                                   const int64_t *draft_token_ids, const float *target_probs,
                                                   int64_t batch, int64_t num_speculative, int64_t vocab,
                                                   const topk_speculative *params, unsigned flags,
                                                   int64_t *output_token_ids, int64_t *accepted_num,
                                                   int64_t *emitted_num);

/* ---- Vocab-sharded rows --------------------------------------------------------------------------------
 * With tensor parallelism each rank holds a slice of the vocabulary: columns [column_offset,
 * column_offset + vocab) of every row. topk_shard_select and topk_shard_sample give exactly what
 * topk_select and topk_sample give on the concatenated rows, bit for bit, whatever the number of ranks
 * and however the columns are split (DESIGN.md, "Vocab-sharded rows"): every rank selects its own best
 * candidates with global column indices, the candidates (composites and value bits) are exchanged and
 * merged under the contract's total order. Sampling without a top_k filter exchanges no candidates:
 * integer weight sums and histograms are all-reduced instead (64-bit integers, exact in any order).
 *
 * Every rank of the communicator calls the same function with the same batch, dtype, global vocab, k or
 * sampling parameters, flags and root, in the same order as its other collective calls (SPMD). The
 * arguments are agreed on first (one small allgather): a call that is wrong on any rank returns the same
 * error on every rank (the first in rank order; TOPK_ERR_BAD_SHARDS when the ranks disagree or the
 * shards do not tile [0, global_vocab) exactly) and writes nothing anywhere. Only a bad comm or root
 * returns at once on the rank that passed it, since that rank cannot take part (as does a rank that
 * cannot allocate comm->size x 88 bytes for the headers). A failing communicator
 * op returns TOPK_ERR_COMM on the rank that saw it (the other ranks may then wait forever, as in any
 * collective; MPI's default error handler aborts the job first).
 *
 * The communicator is a table of collective operations (topk_comm) that a binding fills for the
 * communicator the caller already has: libtopk_mpi fills one for an MPI_Comm (topk_mpi.h); NCCL and
 * torch.distributed bindings fill the same table. This build reads shards in host memory only
 * (TOPK_DEVICE_POINTERS gives TOPK_ERR_UNSUPPORTED) with any backend; the backend selects each shard. */

/* The reductions topk_comm's allreduce is asked for, on unsigned 64-bit integers. */
typedef enum topk_comm_reduce {
    TOPK_COMM_SUM = 0, /* wrapping sum (the library's sums stay below 2^63) */
    TOPK_COMM_MAX = 1
} topk_comm_reduce;

/* A communicator as a table of collectives. Every op is called by every rank in the same order, returns
 * 0 on success (anything else becomes TOPK_ERR_COMM), and receives `handle` and `stream`: the CUDA stream
 * of the library's work for device buffers (an NCCL binding enqueues there and may return before the data
 * moves: the library's later work on that stream is ordered after it), NULL for host buffers, which must
 * be complete when the op returns (MPI, gloo). Sizes are in bytes or elements, all ranks' the same. */
typedef struct topk_comm {
    void *handle;       /* the binding's communicator, passed to every op */
    int rank, size;     /* this rank in [0, size); size >= 1 */
    int device_buffers; /* 0: the ops take host memory (the only kind this build uses); 1: GPU memory */
    /* recv[r * bytes .. (r + 1) * bytes) receives rank r's send[0 .. bytes), on every rank. */
    int (*allgather)(void *handle, const void *send, void *recv, size_t bytes, void *stream);
    /* The same into recv on rank `root` only (recv is NULL elsewhere). Optional: NULL uses allgather. */
    int (*gather)(void *handle, const void *send, void *recv, size_t bytes, int root, void *stream);
    /* recv[i] = the reduction over ranks of send[i], i < count, on every rank; send != recv. */
    int (*allreduce_u64)(void *handle, const uint64_t *send, uint64_t *recv, size_t count, topk_comm_reduce op,
                         void *stream);
} topk_comm;

/* One rank's part of a batch x global_vocab matrix: row r of the shard starts at data + r * row_stride
 * elements and holds the row's columns column_offset .. column_offset + vocab - 1. */
typedef struct topk_shard {
    const void *data;     /* may be NULL when vocab is 0 */
    topk_dtype dtype;
    int64_t batch;        /* >= 1, the same on every rank */
    int64_t vocab;        /* this rank's columns, >= 0: an empty shard takes part and contributes nothing */
    int64_t row_stride;   /* in elements, >= vocab */
    int64_t column_offset;/* the global column of this shard's first column, >= 0 */
    int64_t global_vocab; /* the whole row: 1 .. 2^32 - 1; the ranks' shards tile [0, global_vocab) */
} topk_shard;

/* root for the sharded calls: every rank receives the result (an allgather of the candidates). */
#define TOPK_ALL_RANKS (-1)

/* topk_select over vocab-sharded rows: the top k (0 <= k <= global_vocab) of each whole row, best first,
 * as values in the shard's dtype and GLOBAL column indices (int64), batch x k dense, exactly as
 * topk_select on the concatenated rows. flags: TOPK_SMALLEST. root: TOPK_ALL_RANKS, or the rank that
 * alone receives the result (the candidates are gathered there; the other ranks' outputs are not
 * written and may be NULL). Returns TOPK_OK or an error with nothing written on any rank. */
TOPK_API topk_status topk_shard_select(topk_ctx *ctx, const topk_comm *comm, const topk_shard *shard, int64_t k,
                                       unsigned flags, int root, void *values_out, int64_t *indices_out);

/* topk_sample over vocab-sharded rows: the same tokens (GLOBAL column indices) and probabilities as
 * topk_sample on the concatenated rows with the same params (top_k against global_vocab; per-row arrays,
 * seeds and offsets in host memory and the same on every rank), bit for bit. Rows with a top_k list
 * (1 < top_k < global_vocab) or greedy exchange each rank's best top_k candidates; the others (top-p,
 * min-p, plain temperature) all-reduce the row's best, its integer weight sums and up to ~20 histograms
 * of 256 bins, and move no logits. flags: 0. root as for topk_shard_select (tokens_out and probs_out,
 * which may be NULL, are written on the receiving ranks only). */
TOPK_API topk_status topk_shard_sample(topk_ctx *ctx, const topk_comm *comm, const topk_shard *shard,
                                       const topk_sampling *params, unsigned flags, int root, int64_t *tokens_out,
                                       float *probs_out);

#ifdef __cplusplus
}
#endif
#endif
