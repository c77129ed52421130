/*
 * The public entry points: version, messages, contexts, and topk_select's validation and dispatch.
 *
 * Everything a caller can get wrong is checked here, before any backend runs, so that a bad call
 * writes nothing and every backend can trust its arguments.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "knobs.h"

#define TOPK_STR_(x) #x
#define TOPK_STR(x) TOPK_STR_(x)

unsigned topk_version_number(void) { return TOPK_VERSION_NUMBER; }

const char *topk_version_string(void)
{
    return TOPK_STR(TOPK_VERSION_MAJOR) "." TOPK_STR(TOPK_VERSION_MINOR) "." TOPK_STR(TOPK_VERSION_PATCH);
}

const char *topk_strerror(topk_status status)
{
    static const char *const messages[TOPK_STATUS_COUNT] = {
        [TOPK_OK] = "no error",
        [TOPK_ERR_NULL_POINTER] = "a required pointer (context, input or output) is NULL",
        [TOPK_ERR_BAD_SHAPE] = "batch or vocab is below 1, or the matrix is too large for 64-bit byte offsets",
        [TOPK_ERR_BAD_K] = "k is negative or larger than vocab",
        [TOPK_ERR_BAD_STRIDE] = "row stride is smaller than vocab",
        [TOPK_ERR_BAD_DTYPE] = "unknown dtype (expected TOPK_F32, TOPK_F16 or TOPK_BF16)",
        [TOPK_ERR_BAD_BACKEND] = "unknown backend (expected auto, cpu, offload or reference)",
        [TOPK_ERR_BAD_ENV] = "TOPK_BACKEND or a TOPK_* tuning variable has a value that is not understood",
        [TOPK_ERR_BAD_PARAM] = "unknown tuning parameter or flag, or a value out of its range",
        [TOPK_ERR_NO_DEVICE] = "the offload backend was asked for, but no usable GPU was found",
        [TOPK_ERR_BAD_MEMORY] = "device pointers were given to a backend that reads host memory",
        [TOPK_ERR_OUT_OF_MEMORY] = "out of memory allocating a workspace",
        [TOPK_ERR_DEVICE_FAILURE] = "the GPU runtime reported a failure",
        [TOPK_ERR_BAD_SAMPLING] = "a sampling parameter is out of range (temperature, top_k, top_p or min_p)",
        [TOPK_ERR_STREAM_CAPTURING] = "the CUDA stream is capturing a CUDA graph and this call cannot be captured: "
                                      "set the stream on the context (topk_ctx_set_stream) and give per-row "
                                      "sampling parameters in device memory",
        [TOPK_ERR_COMM] = "a communicator operation (an op of the topk_comm) reported a failure",
        [TOPK_ERR_BAD_SHARDS] = ("the ranks' shards do not tile [0, global vocab) exactly, or the ranks passed "
                                 "different batch, dtype, k, flags, root or sampling parameters"),
        [TOPK_ERR_UNSUPPORTED] = "not supported (yet): vocab-sharded calls read host memory only",
    };
    if ((unsigned)status >= TOPK_STATUS_COUNT) return "unknown status";
    return messages[status];
}

int topk_dtype_size(topk_dtype dtype)
{
    switch (dtype) {
    case TOPK_F32: return 4;
    case TOPK_F16:
    case TOPK_BF16: return 2;
    }
    return 0;
}

static const char *const backend_names[] = {"auto", "cpu", "offload", "reference"};

const char *topk_backend_name(topk_backend backend)
{
    if ((unsigned)backend >= sizeof backend_names / sizeof backend_names[0]) return NULL;
    return backend_names[backend];
}

/* Reads a knob's environment variable (knobs.h): decimal digits only, in the knob's range. Unset or empty
 * leaves *value. */
static topk_status read_env_param(topk_param param, int64_t *value)
{
    const topk_knob *knob = topk_knob_of(param);
    const char *text = knob->env ? getenv(knob->env) : NULL;
    if (!text || !*text) return TOPK_OK;
    int64_t parsed = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9' || parsed > ((int64_t)1 << 40)) return TOPK_ERR_BAD_ENV;
        parsed = parsed * 10 + (*c - '0');
    }
    if (!topk_knob_allows(knob, parsed)) return TOPK_ERR_BAD_ENV;
    *value = parsed;
    return TOPK_OK;
}

static topk_status read_env_backend(topk_backend *backend)
{
    const char *text = getenv("TOPK_BACKEND");
    if (!text || !*text) return TOPK_OK;
    for (unsigned b = 0; b < sizeof backend_names / sizeof backend_names[0]; b++) {
        if (strcmp(text, backend_names[b]) == 0) {
            *backend = (topk_backend)b;
            return TOPK_OK;
        }
    }
    return TOPK_ERR_BAD_ENV;
}

static int64_t *param_slot(topk_ctx *ctx, topk_param param);

static topk_status read_env(topk_ctx *ctx, topk_backend *backend)
{
    topk_status s = read_env_backend(backend);
    for (int param = 0; param < TOPK_PARAM_COUNT && s == TOPK_OK; param++)
        s = read_env_param((topk_param)param, param_slot(ctx, (topk_param)param));
    return s;
}

topk_status topk_ctx_create(topk_ctx **out, topk_backend backend)
{
    if (!out) return TOPK_ERR_NULL_POINTER;
    *out = NULL;
    if (!topk_backend_name(backend)) return TOPK_ERR_BAD_BACKEND;
    topk_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return TOPK_ERR_OUT_OF_MEMORY;
    topk_status s = read_env(ctx, &backend);
    if (s == TOPK_OK && (backend == TOPK_BACKEND_OFFLOAD || backend == TOPK_BACKEND_AUTO)) {
        s = topk_gpu_open(&ctx->gpu, (int)ctx->device);
        if (backend == TOPK_BACKEND_AUTO) {
            backend = s == TOPK_OK ? TOPK_BACKEND_OFFLOAD : TOPK_BACKEND_CPU;
            s = TOPK_OK;
        }
    }
    if (s == TOPK_OK) s = topk_tuning_load(&ctx->tuning, backend, ctx->gpu, ctx->tuning_device, sizeof ctx->tuning_device);
    if (s != TOPK_OK) {
        topk_ctx_free(ctx);
        return s;
    }
    ctx->backend = backend;
    *out = ctx;
    return TOPK_OK;
}

void topk_ctx_free(topk_ctx *ctx)
{
    if (!ctx) return;
    topk_gpu_close(ctx->gpu);
    topk_tuning_free(ctx->tuning);
    free(ctx);
}

topk_backend topk_ctx_backend(const topk_ctx *ctx) { return ctx ? ctx->backend : TOPK_BACKEND_AUTO; }

static int64_t *param_slot(topk_ctx *ctx, topk_param param)
{
    switch (param) {
    case TOPK_PARAM_THREADS: return &ctx->threads;
    case TOPK_PARAM_DEVICE: return &ctx->device;
    case TOPK_PARAM_TEAMS_PER_ROW: return &ctx->teams_per_row;
    case TOPK_PARAM_CHUNK: return &ctx->chunk;
    case TOPK_PARAM_PROFILE: return &ctx->profile;
    case TOPK_PARAM_TEAM_THREADS: return &ctx->team_threads;
    case TOPK_PARAM_SHRINK_AT: return &ctx->shrink_at;
    case TOPK_PARAM_SAMPLE_LIST: return &ctx->sample_list;
    }
    return NULL;
}

topk_status topk_ctx_set_param(topk_ctx *ctx, topk_param param, int64_t value)
{
    if (!ctx) return TOPK_ERR_NULL_POINTER;
    int64_t *slot = param_slot(ctx, param);
    if (!slot || !topk_knob_allows(topk_knob_of(param), value)) return TOPK_ERR_BAD_PARAM;
    if (param == TOPK_PARAM_DEVICE && value != *slot && ctx->gpu) {
        topk_gpu *moved;
        topk_status s = topk_gpu_open(&moved, (int)value);
        if (s != TOPK_OK) return s;
        topk_tuning *tuning; /* another device may be another model, with other tuning */
        char device[sizeof ctx->tuning_device];
        s = topk_tuning_load(&tuning, ctx->backend, moved, device, sizeof device);
        if (s != TOPK_OK) {
            topk_gpu_close(moved);
            return s;
        }
        topk_gpu_close(ctx->gpu);
        topk_tuning_free(ctx->tuning);
        ctx->gpu = moved;
        ctx->tuning = tuning;
        memcpy(ctx->tuning_device, device, sizeof device);
    }
    *slot = value;
    return TOPK_OK;
}

topk_status topk_ctx_get_param(const topk_ctx *ctx, topk_param param, int64_t *value)
{
    if (!ctx || !value) return TOPK_ERR_NULL_POINTER;
    int64_t *slot = param_slot((topk_ctx *)ctx, param);
    if (!slot) return TOPK_ERR_BAD_PARAM;
    *value = *slot;
    return TOPK_OK;
}

bool topk_fits_in_offsets(int64_t batch, int64_t vocab, int64_t row_stride, int64_t k, int elem)
{
    int64_t last_row, span, out;
    if (__builtin_mul_overflow(batch - 1, row_stride, &last_row)) return false;
    if (__builtin_add_overflow(last_row, vocab, &span)) return false;
    if (__builtin_mul_overflow(span, (int64_t)elem, &span)) return false;
    if (__builtin_mul_overflow(batch, k, &out)) return false;
    return !__builtin_mul_overflow(out, (int64_t)sizeof(int64_t), &out);
}

static topk_status validate(const topk_ctx *ctx, const void *input, topk_dtype dtype, int64_t batch,
                            int64_t vocab, int64_t row_stride, int64_t k, unsigned flags, const void *values,
                            const int64_t *indices)
{
    if (!ctx || !input) return TOPK_ERR_NULL_POINTER;
    int elem = topk_dtype_size(dtype);
    if (!elem) return TOPK_ERR_BAD_DTYPE;
    if (batch < 1 || vocab < 1) return TOPK_ERR_BAD_SHAPE;
    if (k < 0 || k > vocab) return TOPK_ERR_BAD_K;
    if (row_stride < vocab) return TOPK_ERR_BAD_STRIDE;
    if (!topk_fits_in_offsets(batch, vocab, row_stride, k, elem)) return TOPK_ERR_BAD_SHAPE;
    if (k > 0 && (!values || !indices)) return TOPK_ERR_NULL_POINTER;
    if (flags & ~(TOPK_SMALLEST | TOPK_DEVICE_POINTERS)) return TOPK_ERR_BAD_PARAM;
    if ((flags & TOPK_DEVICE_POINTERS) && ctx->backend != TOPK_BACKEND_OFFLOAD) return TOPK_ERR_BAD_MEMORY;
    return TOPK_OK;
}

/* A knob's value for this call: the context's, or when that is 0, the tuning table's (0 if none). */
static int64_t knob(const topk_ctx *ctx, topk_param param, int64_t set, const topk_problem *p)
{
    return set ? set : topk_tuning_choose(ctx->tuning, param, p);
}

static topk_status dispatch(const topk_ctx *ctx, const topk_problem *p, unsigned flags)
{
    topk_stage_times *profile = p->profile;
    double chosen = 0, started = profile ? topk_now() : 0;
    topk_status s = TOPK_ERR_BAD_BACKEND;
    switch (ctx->backend) {
    case TOPK_BACKEND_REFERENCE:
        if (profile) chosen = topk_now();
        s = topk_reference_select(p);
        break;
    case TOPK_BACKEND_CPU: {
        int64_t threads = knob(ctx, TOPK_PARAM_THREADS, ctx->threads, p);
        int64_t chunk = knob(ctx, TOPK_PARAM_CHUNK, ctx->chunk, p);
        if (profile) {
            chosen = topk_now();
            profile->threads = threads;
            profile->chunk = chunk;
        }
        s = topk_cpu_select(p, (int)threads, chunk);
        break;
    }
    case TOPK_BACKEND_OFFLOAD: {
        int64_t teams_per_row = knob(ctx, TOPK_PARAM_TEAMS_PER_ROW, ctx->teams_per_row, p);
        int64_t shrink_at = knob(ctx, TOPK_PARAM_SHRINK_AT, ctx->shrink_at, p);
        if (profile) {
            chosen = topk_now();
            profile->teams_per_row = teams_per_row;
        }
        s = topk_gpu_select(ctx->gpu, p, flags & TOPK_DEVICE_POINTERS, teams_per_row, (int)ctx->team_threads,
                            (int)shrink_at);
        break;
    }
    case TOPK_BACKEND_AUTO: break;
    }
    if (profile) {
        profile->tuning_us = (chosen - started) * 1e6;
        profile->backend_us = (topk_now() - chosen) * 1e6;
    }
    return s;
}

topk_status topk_select(topk_ctx *ctx, const void *input, topk_dtype dtype, int64_t batch, int64_t vocab,
                        int64_t row_stride, int64_t k, unsigned flags, void *values_out, int64_t *indices_out)
{
    bool profiling = ctx && ctx->profile;
    double started = profiling ? topk_now() : 0;
    topk_status s = validate(ctx, input, dtype, batch, vocab, row_stride, k, flags, values_out, indices_out);
    if (s != TOPK_OK || k == 0) return s;
    topk_stage_times times = {0};
    if (profiling) times.validate_us = (topk_now() - started) * 1e6;
    topk_problem p = {
        .input = input,
        .dtype = dtype,
        .batch = batch,
        .vocab = vocab,
        .row_stride = row_stride,
        .k = k,
        .key_flip = (flags & TOPK_SMALLEST) ? (dtype == TOPK_F32 ? 0xFFFFFFFFu : 0xFFFFu) : 0,
        .values = values_out,
        .indices = indices_out,
        .profile = profiling ? &times : NULL,
    };
    s = dispatch(ctx, &p, flags);
    if (profiling && s == TOPK_OK) {
        times.total_us = (topk_now() - started) * 1e6;
        ctx->last_profile = times;
        ctx->profiled = true;
    }
    return s;
}

topk_status topk_ctx_set_stream(topk_ctx *ctx, void *stream)
{
    if (!ctx) return TOPK_ERR_NULL_POINTER;
    if (ctx->backend != TOPK_BACKEND_OFFLOAD) return stream ? TOPK_ERR_NO_DEVICE : TOPK_OK;
    return topk_gpu_set_stream(ctx->gpu, stream);
}

const char *topk_ctx_last_error(const topk_ctx *ctx)
{
    return ctx && ctx->backend == TOPK_BACKEND_OFFLOAD ? topk_gpu_last_error(ctx->gpu) : "";
}

const char *topk_ctx_tuning_device(const topk_ctx *ctx) { return ctx ? ctx->tuning_device : ""; }

topk_status topk_ctx_last_profile(const topk_ctx *ctx, topk_stage_times *out)
{
    if (!ctx || !out) return TOPK_ERR_NULL_POINTER;
    if (!ctx->profile || !ctx->profiled) return TOPK_ERR_BAD_PARAM;
    *out = ctx->last_profile;
    return TOPK_OK;
}
