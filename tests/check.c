/*
 * Selection runs and bit-for-bit comparison for the tests (see check.h).
 */
#include "check.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "oracle.h"

/* Elements after batch x k in each output that must stay untouched, and the byte they hold. */
enum { GUARD_ELEMENTS = 16, SENTINEL = 0xA5 };

const char *backend_label(topk_backend backend)
{
    switch (backend) {
    case TOPK_BACKEND_AUTO: return "auto";
    case TOPK_BACKEND_CPU: return "cpu";
    case TOPK_BACKEND_OFFLOAD: return "offload";
    case TOPK_BACKEND_REFERENCE: return "reference";
    }
    return "unknown-backend";
}

int append_unique(int64_t *list, int count, int64_t x)
{
    for (int i = 0; i < count; i++)
        if (list[i] == x) return count;
    list[count] = x;
    return count + 1;
}

void describe_case(const select_case *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s %s B=%lld V=%lld k=%lld stride=%lld %s%s%s", backend_label(c->backend),
             dtype_name(c->dtype), (long long)c->batch, (long long)c->vocab, (long long)c->k,
             (long long)c->row_stride, c->smallest ? "smallest" : "largest", c->data ? ", " : "",
             c->data ? c->data : "");
}

topk_ctx *open_backend_or_skip(topk_backend backend)
{
    topk_ctx *ctx = NULL;
    topk_status s = topk_ctx_create(&ctx, backend);
    if (backend == TOPK_BACKEND_OFFLOAD && s == TOPK_ERR_NO_DEVICE) {
        const char *host = getenv("TOPK_OFFLOAD_HOST");
        cr_skip_test("offload backend not tested: topk_ctx_create(TOPK_BACKEND_OFFLOAD) returned "
                     "TOPK_ERR_NO_DEVICE (no usable GPU%s)",
                     host && *host ? ", and TOPK_OFFLOAD_HOST did not enable the host fallback" : "");
    }
    cr_assert(s == TOPK_OK, "topk_ctx_create(%s) failed: %s", backend_label(backend), topk_strerror(s));
    cr_assert(topk_ctx_backend(ctx) == backend,
              "asked for the %s backend and got %s: is TOPK_BACKEND set in the test's environment?",
              backend_label(backend), backend_label(topk_ctx_backend(ctx)));
    return ctx;
}

static bool bytes_are(const void *p, size_t n, unsigned char byte)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != byte) return false;
    return true;
}

selection run_select(topk_ctx *ctx, const select_case *c, const void *input)
{
    size_t elem = (size_t)dtype_bytes(c->dtype), n = (size_t)(c->batch * c->k);
    size_t input_bytes = (size_t)matrix_elements(c->batch, c->vocab, c->row_stride) * elem;
    selection got = {malloc((n + GUARD_ELEMENTS) * elem), malloc((n + GUARD_ELEMENTS) * sizeof(int64_t)), c->k};
    memset(got.values, SENTINEL, (n + GUARD_ELEMENTS) * elem);
    memset(got.indices, SENTINEL, (n + GUARD_ELEMENTS) * sizeof(int64_t));
    void *before = malloc(input_bytes);
    memcpy(before, input, input_bytes);

    char name[256];
    describe_case(c, name, sizeof name);
    topk_status s = topk_select(ctx, input, c->dtype, c->batch, c->vocab, c->row_stride, c->k,
                                c->smallest ? TOPK_SMALLEST : 0, got.values, got.indices);
    cr_assert(s == TOPK_OK, "%s: topk_select returned \"%s\"", name, topk_strerror(s));
    cr_assert(bytes_are((char *)got.values + n * elem, GUARD_ELEMENTS * elem, SENTINEL),
              "%s: wrote values past batch x k", name);
    cr_assert(bytes_are(got.indices + n, GUARD_ELEMENTS * sizeof(int64_t), SENTINEL),
              "%s: wrote indices past batch x k", name);
    cr_assert(memcmp(before, input, input_bytes) == 0, "%s: changed its input", name);
    free(before);
    return got;
}

selection oracle_selection(const select_case *c, const void *input, bool full_ranking)
{
    int64_t k = full_ranking ? c->vocab : c->k;
    size_t n = (size_t)(c->batch * k);
    /* +1 so that k == 0 still gets real pointers */
    selection want = {malloc((n + 1) * (size_t)dtype_bytes(c->dtype)), malloc((n + 1) * sizeof(int64_t)), k};
    oracle_select(input, c->dtype, c->batch, c->vocab, c->row_stride, k, c->smallest, want.values, want.indices);
    return want;
}

void selection_free(selection *s)
{
    free(s->values);
    free(s->indices);
    *s = (selection){0};
}

bool find_difference(const select_case *c, const selection *got, const selection *want, char *buf, size_t size)
{
    size_t elem = (size_t)dtype_bytes(c->dtype);
    for (int64_t r = 0; r < c->batch; r++) {
        for (int64_t j = 0; j < c->k; j++) {
            int64_t g = r * got->row_len + j, w = r * want->row_len + j;
            uint32_t got_bits = load_bits(c->dtype, got->values, g), want_bits = load_bits(c->dtype, want->values, w);
            if (got->indices[g] == want->indices[w] && got_bits == want_bits) continue;
            snprintf(buf, size, "row %lld, rank %lld: index %lld value bits 0x%0*x, expected index %lld value bits 0x%0*x",
                     (long long)r, (long long)j, (long long)got->indices[g], (int)elem * 2, (unsigned)got_bits,
                     (long long)want->indices[w], (int)elem * 2, (unsigned)want_bits);
            return true;
        }
    }
    return false;
}

void assert_same(const select_case *c, const selection *got, const selection *want, const char *want_name)
{
    char name[256], difference[256];
    if (!find_difference(c, got, want, difference, sizeof difference)) return;
    describe_case(c, name, sizeof name);
    cr_assert_fail("%s differs from %s at %s", name, want_name, difference);
}

void check_case(topk_ctx *ctx, topk_ctx *reference_ctx, const select_case *c, const void *input,
                const selection *oracle)
{
    selection got = run_select(ctx, c, input);
    assert_same(c, &got, oracle, "the oracle");
    if (c->backend != TOPK_BACKEND_REFERENCE) {
        select_case as_reference = *c;
        as_reference.backend = TOPK_BACKEND_REFERENCE;
        selection reference = run_select(reference_ctx, &as_reference, input);
        assert_same(c, &got, &reference, "the reference backend");
        selection_free(&reference);
    }
    selection_free(&got);
}

void check_each_k(topk_ctx *ctx, topk_ctx *reference_ctx, select_case *c, const void *input,
                  const selection *oracle, const int64_t *ks, int count)
{
    for (int i = 0; i < count; i++) {
        c->k = ks[i];
        check_case(ctx, reference_ctx, c, input, oracle);
    }
}
