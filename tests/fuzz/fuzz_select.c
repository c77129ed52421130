/*
 * topk-fuzz: a libFuzzer harness for topk_select (and topk_sample, once it exists) on every backend
 * that can run here.
 *
 * Big idea: the input is a call, not data. Its first HEADER bytes decode the shape (batch, vocab, row
 * stride), k, dtype, direction, the input's misalignment, the tuning knobs (threads, chunk, teams per
 * row) and, one time in eight, one bad argument; the rest are raw bit patterns, read directly or through
 * a palette of special values (NaNs with payloads, infinities, signed zeros, denormals, ties). Buffers
 * are allocated to the exact byte so AddressSanitizer sees any read or write outside them.
 *
 * Every call runs on the reference backend, which is then checked on its own terms with a key function
 * written here (each value is the input's bits at its index, the order is strictly best-first, and
 * exactly k-1 elements of the row beat the last one: together, the exact top k), and then on the cpu
 * backend and the offload backend (through OpenMP's host fallback, TOPK_OFFLOAD_HOST=1, where no GPU is
 * found), which must return the same status and the same bytes. A bad call must return its status on
 * every backend and leave both outputs untouched. A finding aborts with a message naming the call.
 *
 * Build: cmake -DTOPK_FUZZ=ON (clang; ci/sanitize does it). Run: topk-fuzz tests/fuzz/corpus.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "topk.h"

/* topk_sample is declared by topk.h but may not be implemented yet: a weak reference is NULL then. */
#pragma weak topk_sample
#pragma weak topk_sampling_default

enum { HEADER = 16, BACKENDS = 3 };

static topk_ctx *contexts[BACKENDS]; /* reference, cpu, offload (NULL when it cannot start) */
static const char *const context_names[BACKENDS] = {"reference", "cpu", "offload"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* No GPU here: let the offload backend run its kernels through the host fallback. A GPU host
     * keeps its GPU (this only matters where topk_ctx_create(OFFLOAD) would find none). */
    setenv("TOPK_OFFLOAD_HOST", "1", 0);
    setenv("KMP_BLOCKTIME", "0", 0); /* idle OpenMP threads sleep at once rather than spin */
    static const topk_backend backends[BACKENDS] = {TOPK_BACKEND_REFERENCE, TOPK_BACKEND_CPU, TOPK_BACKEND_OFFLOAD};
    for (int b = 0; b < BACKENDS; b++) {
        topk_status s = topk_ctx_create(&contexts[b], backends[b]);
        if (s != TOPK_OK && b < 2) {
            fprintf(stderr, "topk-fuzz: cannot create the %s context: %s\n", context_names[b], topk_strerror(s));
            abort();
        }
    }
    fprintf(stderr, "topk-fuzz: backends reference, cpu%s\n", contexts[2] ? ", offload" : " (offload cannot start)");
    return 0;
}

/* ---- the call, decoded ---------------------------------------------------------------------------- */

typedef struct call {
    topk_dtype dtype;
    int elem;
    int64_t batch, vocab, row_stride, k;
    unsigned flags;
    int misalign;                    /* elements before the input in its allocation */
    int fill;                        /* 0 raw bits, 1 palette, 2 three values, 3 one value */
    int64_t threads, chunk, teams;   /* tuning knobs */
    bool sample;                     /* also run the sampler on this input */
    int bad;                         /* 0: a valid call; else which argument is wrong */
    topk_status expected;            /* what a bad call must return */
    uint8_t extra[4];                /* sampler parameters */
} call;

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static void describe(const call *c, char *buf, size_t size)
{
    snprintf(buf, size, "dtype %d B=%lld V=%lld stride=%lld k=%lld flags=%u misalign=%d fill=%d threads=%lld "
             "chunk=%lld teams=%lld bad=%d", (int)c->dtype, (long long)c->batch, (long long)c->vocab,
             (long long)c->row_stride, (long long)c->k, c->flags, c->misalign, c->fill, (long long)c->threads,
             (long long)c->chunk, (long long)c->teams, c->bad);
}

static call decode(const uint8_t *h)
{
    call c = {0};
    c.dtype = (topk_dtype)(h[0] % 3);
    c.elem = c.dtype == TOPK_F32 ? 4 : 2;
    c.flags = (h[0] >> 2) & 1 ? TOPK_SMALLEST : 0;
    c.batch = 1 + h[1] % 6;
    /* Mostly short rows (fast), sometimes rows long enough for the cpu's sampled threshold and the
     * offload planner's own chunks, rarely (they cost ~10 ms) rows long enough that the cpu backend
     * splits them over two threads. */
    uint16_t v = u16(h + 2);
    if (h[4] < 224)
        c.vocab = 1 + v % 96;
    else if (h[4] < 252)
        c.vocab = 1 + v % 1100; /* the cpu backend samples a threshold in rows of 1024 and more */
    else
        c.vocab = 32769 + v % 1024, c.batch = 1 + c.batch % 2;
    c.row_stride = c.vocab + (h[5] < 160 ? 0 : h[5] - 160);
    uint16_t kk = u16(h + 6);
    switch (kk % 4) {
    case 0: c.k = 1 + (kk >> 2) % min64(c.vocab, 8); break;
    case 1: c.k = c.vocab - (kk >> 2) % min64(c.vocab, 8); break;
    case 2: c.k = (kk >> 2) % (c.vocab + 1); break;
    default: c.k = 1 + (kk >> 2) % min64(c.vocab, 300);
    }
    c.fill = h[8] % 4;
    c.sample = (h[8] >> 2) & 1;
    c.misalign = h[9] % (16 / c.elem);
    c.threads = h[10] % 4;
    c.chunk = h[11] < 128 ? 0 : (int64_t)(h[11] - 127) * 64;
    c.teams = h[12] % 40;
    memcpy(c.extra, h + 13, 3);
    c.extra[3] = h[3];
    if (h[0] >= 224) { /* one time in eight: one argument wrong */
        int64_t small = h[15] % 5;
        c.bad = 1 + (h[15] / 5) % 8;
        switch (c.bad) {
        case 1: c.k = c.vocab + 1 + small, c.expected = TOPK_ERR_BAD_K; break;
        case 2: c.k = -1 - small, c.expected = TOPK_ERR_BAD_K; break;
        case 3: c.row_stride = c.vocab - 1 - small, c.expected = TOPK_ERR_BAD_STRIDE; break;
        case 4: c.flags |= 4u << small, c.expected = TOPK_ERR_BAD_PARAM; break;
        case 5: c.expected = TOPK_ERR_BAD_DTYPE; break;
        case 6: c.batch = -small, c.expected = TOPK_ERR_BAD_SHAPE; break;
        case 7: c.flags |= TOPK_DEVICE_POINTERS, c.expected = TOPK_ERR_BAD_MEMORY; break;
        default: c.k = c.k ? c.k : 1, c.expected = TOPK_ERR_NULL_POINTER; break; /* NULL values */
        }
    }
    return c;
}

/* ---- the data ------------------------------------------------------------------------------------- */

/* The harness's own per-element loops carry no coverage instrumentation: they are not under test, and
 * comparison tracing in them cost more than the library's work. */
#define UNTRACED __attribute__((no_sanitize("coverage")))

UNTRACED static uint32_t palette(topk_dtype dtype, unsigned i)
{
    static const uint32_t f32[16] = {0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x00000001, 0x80000001,
                                     0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001,
                                     0x7F800001, 0x3F000000, 0x3F800000, 0x7FFFFFFF};
    static const uint16_t f16[16] = {0x0000, 0x8000, 0x3C00, 0xBC00, 0x0001, 0x8001, 0x7BFF, 0xFBFF,
                                     0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x3800, 0x3C00, 0x7FFF};
    static const uint16_t bf16[16] = {0x0000, 0x8000, 0x3F80, 0xBF80, 0x0001, 0x8001, 0x7F7F, 0xFF7F,
                                      0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x3F00, 0x3F80, 0x7FFF};
    i &= 15;
    return dtype == TOPK_F32 ? f32[i] : dtype == TOPK_F16 ? f16[i] : bf16[i];
}

/* Element i of the data: the fuzzer's bytes, cycled, read as raw bits or as palette indices. */
UNTRACED static uint32_t element(const call *c, const uint8_t *data, size_t size, int64_t i)
{
    if (size == 0) return palette(c->dtype, (unsigned)i);
    if (c->fill == 3) return palette(c->dtype, data[0]);
    if (c->fill == 2) return palette(c->dtype, 2 + data[(size_t)i % size] % 3 * 11 % 12); /* 1, -1 or 0.5 */
    if (c->fill == 1) return palette(c->dtype, data[(size_t)i % size] ^ (uint8_t)(i >> 8));
    uint32_t bits = 0;
    for (int b = 0; b < c->elem; b++) bits |= (uint32_t)data[((size_t)i * (size_t)c->elem + (size_t)b) % size] << (8 * b);
    return bits ^ (uint32_t)(i / (int64_t)size) * 0x9E3779B9u; /* long rows do not simply repeat */
}

/* The input: batch rows (the last one vocab long), the padding and the bytes before the input holding
 * NaN and -inf, which would win a largest or a smallest selection if a backend read them. */
UNTRACED static char *make_input(const call *c, const uint8_t *data, size_t size, int64_t elements)
{
    char *block = malloc((size_t)(c->misalign + elements) * (size_t)c->elem);
    if (!block) abort();
    uint32_t decoys[2] = {palette(c->dtype, 10), palette(c->dtype, 9)};
    for (int i = 0; i < c->misalign; i++) store_bits(c->dtype, block, i, decoys[i & 1]);
    char *input = block + c->misalign * c->elem;
    for (int64_t i = 0; i < elements; i++) {
        int64_t column = c->row_stride > 0 ? i % c->row_stride : i;
        store_bits(c->dtype, input, i, column < c->vocab ? element(c, data, size, i) : decoys[i & 1]);
    }
    return block;
}

/* ---- the checks ----------------------------------------------------------------------------------- */

static char name[256];

#define FAIL(...)                                                                                        \
    do {                                                                                                 \
        fprintf(stderr, "topk-fuzz: %s: ", name);                                                        \
        fprintf(stderr, __VA_ARGS__);                                                                    \
        fputc('\n', stderr);                                                                             \
        abort();                                                                                         \
    } while (0)

/* The contract's order as an unsigned key, written from the IEEE layouts (independent of src/common/keys.h):
 * every NaN above +inf and equal to every other, -0.0 below +0.0; flipped for the smallest. */
UNTRACED static uint32_t order_key(const call *c, uint32_t bits)
{
    uint32_t sign = c->elem == 4 ? 0x80000000u : 0x8000u, all = sign | (sign - 1);
    uint32_t inf = c->dtype == TOPK_F32 ? 0x7F800000u : c->dtype == TOPK_F16 ? 0x7C00u : 0x7F80u;
    uint32_t key = (bits & (sign - 1)) > inf ? all : bits & sign ? ~bits & all : bits | sign;
    return c->flags & TOPK_SMALLEST ? key ^ all : key;
}

/* a ranks before b: larger key, then smaller column */
UNTRACED static bool before(uint32_t key_a, int64_t a, uint32_t key_b, int64_t b)
{
    return key_a > key_b || (key_a == key_b && a < b);
}

/* The reference's answer is the exact top k: values are the input's bits at their indices, the order is
 * strictly best-first, and exactly k - 1 elements of the row rank before the last one chosen. */
UNTRACED static void check_exact(const call *c, const char *input, const char *values, const int64_t *indices)
{
    for (int64_t r = 0; r < c->batch; r++) {
        const char *row = input + r * c->row_stride * c->elem;
        const int64_t *idx = indices + r * c->k;
        uint32_t last_key = 0;
        for (int64_t j = 0; j < c->k; j++) {
            int64_t i = idx[j];
            if (i < 0 || i >= c->vocab) FAIL("row %lld rank %lld: index %lld out of range", (long long)r, (long long)j, (long long)i);
            uint32_t bits = load_bits(c->dtype, row, i);
            if (bits != load_bits(c->dtype, values, r * c->k + j))
                FAIL("row %lld rank %lld: value is not the input's element %lld", (long long)r, (long long)j, (long long)i);
            uint32_t key = order_key(c, bits);
            if (j > 0 && !before(last_key, idx[j - 1], key, i))
                FAIL("row %lld: rank %lld does not come after rank %lld", (long long)r, (long long)j, (long long)j - 1);
            last_key = key;
        }
        if (c->k == 0) continue;
        int64_t last = idx[c->k - 1], ahead = 0;
        for (int64_t i = 0; i < c->vocab; i++)
            ahead += before(order_key(c, load_bits(c->dtype, row, i)), i, last_key, last);
        if (ahead != c->k - 1)
            FAIL("row %lld: %lld elements rank before the last chosen, expected %lld", (long long)r, (long long)ahead,
                 (long long)c->k - 1);
    }
}

static void set_knobs(topk_ctx *ctx, const call *c)
{
    if (topk_ctx_set_param(ctx, TOPK_PARAM_THREADS, c->threads) != TOPK_OK ||
        topk_ctx_set_param(ctx, TOPK_PARAM_CHUNK, c->chunk) != TOPK_OK ||
        topk_ctx_set_param(ctx, TOPK_PARAM_TEAMS_PER_ROW, c->teams) != TOPK_OK)
        FAIL("topk_ctx_set_param refused a value in range");
}

UNTRACED static void fill_sentinel(void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = (unsigned char)(0xC3 ^ (i * 37));
}

/* One call on every backend. */
static void check_select(const call *c, const char *input)
{
    size_t n = c->bad ? 16 : (size_t)(c->batch * c->k); /* a bad call gets small buffers */
    size_t value_bytes = n * (size_t)c->elem, index_bytes = n * sizeof(int64_t);
    char *want_values = malloc(value_bytes + 1), *got_values = malloc(value_bytes + 1);
    int64_t *want_indices = malloc(index_bytes + 1), *got_indices = malloc(index_bytes + 1);
    char *sentinel = malloc(index_bytes + 1);
    fill_sentinel(sentinel, index_bytes);
    topk_dtype dtype = c->bad == 5 ? (topk_dtype)(3 + c->extra[0] % 5) : c->dtype;
    topk_status want = TOPK_OK;
    for (int b = 0; b < BACKENDS; b++) {
        if (!contexts[b] || (c->bad == 7 && b == 2)) continue; /* device pointers are valid on offload */
        set_knobs(contexts[b], c);
        char *values = b ? got_values : want_values;
        int64_t *indices = b ? got_indices : want_indices;
        fill_sentinel(values, value_bytes);
        fill_sentinel(indices, index_bytes);
        topk_status s = topk_select(contexts[b], input, dtype, c->batch, c->vocab, c->row_stride, c->k, c->flags,
                                    c->bad == 8 ? NULL : values, indices);
        if (c->bad) {
            if (s != c->expected)
                FAIL("%s returned \"%s\", expected \"%s\"", context_names[b], topk_strerror(s), topk_strerror(c->expected));
            if (memcmp(values, sentinel, value_bytes) || memcmp(indices, sentinel, index_bytes))
                FAIL("%s wrote its outputs on an error", context_names[b]);
            continue;
        }
        if (b == 0) {
            want = s;
            if (s != TOPK_OK) FAIL("reference returned \"%s\"", topk_strerror(s));
            if (c->k == 0 && (memcmp(values, sentinel, value_bytes) || memcmp(indices, sentinel, index_bytes)))
                FAIL("reference wrote something with k = 0");
            check_exact(c, input, values, indices);
            continue;
        }
        if (s != want) FAIL("%s returned \"%s\", the reference \"%s\"", context_names[b], topk_strerror(s), topk_strerror(want));
        if (memcmp(got_indices, want_indices, index_bytes))
            FAIL("%s: indices differ from the reference", context_names[b]);
        if (memcmp(got_values, want_values, value_bytes)) FAIL("%s: values differ from the reference", context_names[b]);
    }
    free(want_values), free(got_values), free(want_indices), free(got_indices), free(sentinel);
}

/* The sampler, where it exists (half the inputs, rows of 4096 at most): on every backend the same status, and for a good
 * call the same token and probability bits, also when called again (it is a pure function of seed,
 * offset and input), with a token inside the row and a probability in [0, 1]. */
static void check_sample(const call *c, const char *input)
{
    if (!topk_sample || !topk_sampling_default || c->bad || !c->sample || c->vocab > 4096) return;
    static const float temperatures[] = {1.0f, 0.0f, 0.5f, 2.0f};
    static const float top_ps[] = {1.0f, 0.9f, 0.5f, 0.01f};
    static const float min_ps[] = {0.0f, 0.0f, 0.1f, 0.5f};
    topk_sampling params = topk_sampling_default();
    params.temperature = temperatures[c->extra[0] & 3];
    params.top_k = (c->extra[0] >> 2) & 1 ? min64(c->k ? c->k : 1, c->vocab) : 0;
    params.top_p = top_ps[(c->extra[0] >> 3) & 3];
    params.min_p = min_ps[(c->extra[0] >> 5) & 3];
    params.seed = (uint64_t)c->extra[1] << 8 | c->extra[2];
    params.offset = c->extra[3];
    size_t n = (size_t)c->batch;
    int64_t *tokens = malloc(n * sizeof *tokens), *want_tokens = malloc(n * sizeof *tokens);
    float *probs = malloc(n * sizeof *probs), *want_probs = malloc(n * sizeof *probs);
    topk_status want = TOPK_OK;
    for (int b = 0; b < BACKENDS; b++) {
        if (!contexts[b]) continue;
        for (int round = 0; round < (b == 1 ? 2 : 1); round++) { /* the cpu twice: determinism */
            topk_status s = topk_sample(contexts[b], input, c->dtype, c->batch, c->vocab, c->row_stride, &params, 0,
                                        tokens, probs);
            if (b == 0 && round == 0) {
                want = s;
                if (s == TOPK_OK)
                    for (size_t r = 0; r < n; r++)
                        if (tokens[r] < 0 || tokens[r] >= c->vocab || !(probs[r] >= 0.0f && probs[r] <= 1.0f))
                            FAIL("sample: row %zu drew token %lld with probability %g", r, (long long)tokens[r],
                                 (double)probs[r]);
                memcpy(want_tokens, tokens, n * sizeof *tokens);
                memcpy(want_probs, probs, n * sizeof *probs);
                continue;
            }
            if (s != want)
                FAIL("sample on %s (round %d) returned \"%s\", the reference \"%s\"", context_names[b], round,
                     topk_strerror(s), topk_strerror(want));
            if (s == TOPK_OK && (memcmp(tokens, want_tokens, n * sizeof *tokens) || memcmp(probs, want_probs, n * sizeof *probs)))
                FAIL("sample on %s (round %d) differs from the reference's first draw", context_names[b], round);
        }
    }
    free(tokens), free(want_tokens), free(probs), free(want_probs);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    if (size < HEADER) return -1; /* not a call: keep it out of the corpus */
    call c = decode(bytes);
    describe(&c, name, sizeof name);
    /* A bad call still gets a real (small) input, so a backend that reads it is caught by ASan. */
    int64_t elements = c.bad ? 16 : (c.batch - 1) * c.row_stride + c.vocab;
    char *block = make_input(&c, bytes + HEADER, size - HEADER, elements);
    const char *input = block + c.misalign * c.elem;
    check_select(&c, input);
    check_sample(&c, input);
    free(block);
    return 0;
}
