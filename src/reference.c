/*
 * The reference backend: the contract written as plainly as possible, to be the tests' oracle.
 *
 * For each row, pair every element's ordered key with its column index, sort all pairs with
 * "larger key first, then smaller index first", and emit the first k. O(V log V) and single-threaded
 * on purpose: nothing here is clever, so its answers can be trusted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct ranked {
    uint32_t key;
    int64_t index;
} ranked;

static int better_first(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

topk_status topk_reference_select(const topk_problem *p)
{
    /* vocab may pass validation and still overflow this size (2^60 fp16 elements): then no memory */
    if ((uint64_t)p->vocab > SIZE_MAX / sizeof(ranked)) return TOPK_ERR_OUT_OF_MEMORY;
    ranked *pairs = malloc((size_t)p->vocab * sizeof *pairs);
    if (!pairs) return TOPK_ERR_OUT_OF_MEMORY;
    size_t elem = (size_t)topk_dtype_size(p->dtype);
    for (int64_t r = 0; r < p->batch; r++) {
        const char *row = topk_row(p, r);
        for (int64_t c = 0; c < p->vocab; c++) pairs[c] = (ranked){topk_key_at(p, row, c), c};
        qsort(pairs, (size_t)p->vocab, sizeof *pairs, better_first);
        for (int64_t j = 0; j < p->k; j++) {
            int64_t out = r * p->k + j;
            p->indices[out] = pairs[j].index;
            memcpy((char *)p->values + (size_t)out * elem, row + (size_t)pairs[j].index * elem, elem);
        }
    }
    free(pairs);
    return TOPK_OK;
}
