/*
 * Running one selection and comparing it bit for bit, with failure messages that name the case.
 *
 * Shared by every test that compares a backend with the oracle, so that all of them check the same
 * things the same way: the status, exact indices, exact value bytes, nothing written past batch x k,
 * and the input left alone.
 */
#ifndef TOPK_TEST_CHECK_H
#define TOPK_TEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topk.h"

/* One call to topk_select, with everything a failure message needs to name it. */
typedef struct select_case {
    topk_backend backend;
    topk_dtype dtype;
    int64_t batch, vocab, row_stride, k;
    bool smallest;
    const char *data; /* what the input holds ("random seed 42", "pattern all_nans"), or NULL */
} select_case;

/* Outputs of a selection, or the expected ones: row r's first entry is at r * row_len, and only the
 * first k of each row are compared. The oracle's full ranking (row_len = vocab) serves every k. */
typedef struct selection {
    void *values;
    int64_t *indices;
    int64_t row_len;
} selection;

/* Appends x to list[0..count) unless it is already there; returns the new count. Builds the lists of
 * k, batch and stride that the sweeps run, without running a case twice. */
int append_unique(int64_t *list, int count, int64_t x);

/* Writes e.g. "cpu bf16 B=3 V=50304 k=50 stride=50307 largest, pattern run_of_ties". */
void describe_case(const select_case *c, char *buf, size_t size);

const char *backend_label(topk_backend backend);

/* A context on exactly this backend. When the offload backend reports TOPK_ERR_NO_DEVICE the test is
 * skipped (with a message saying so), not failed: CI machines have no GPU. */
topk_ctx *open_backend_or_skip(topk_backend backend);

/* Calls topk_select for the case; asserts TOPK_OK, that no byte past batch x k of either output was
 * written and that the input is unchanged. The outputs are malloc'd: selection_free them. */
selection run_select(topk_ctx *ctx, const select_case *c, const void *input);

/* The oracle's answer for the case with its own k (row_len = k), or for every k (row_len = vocab). */
selection oracle_selection(const select_case *c, const void *input, bool full_ranking);

void selection_free(selection *s);

/* Describes the first difference between got and want over the case's batch x k into buf, or returns
 * false when they agree: same indices, same value bytes. */
bool find_difference(const select_case *c, const selection *got, const selection *want, char *buf, size_t size);

/* Asserts got == want; want_name ("the oracle", "the reference backend") goes into the message. */
void assert_same(const select_case *c, const selection *got, const selection *want, const char *want_name);

/* Runs the case on ctx and asserts it equals the oracle's ranking; for a backend other than the
 * reference, also runs the reference backend (reference_ctx) and asserts equality with it too. */
void check_case(topk_ctx *ctx, topk_ctx *reference_ctx, const select_case *c, const void *input,
                const selection *oracle);

/* check_case for each k of ks[0, count) in turn: c->k takes each value. */
void check_each_k(topk_ctx *ctx, topk_ctx *reference_ctx, select_case *c, const void *input,
                  const selection *oracle, const int64_t *ks, int count);

#endif
