/*
 * A reader for NumPy's .npy files (format versions 1, 2 and 3), for `topk-bench --input`: real logits
 * saved with numpy.save. Only what a logits matrix is: 2-D, C order, little-endian fp32 ('<f4') or fp16
 * ('<f2'), or bfloat16. NumPy has no bfloat16, so bf16 logits travel as their 16-bit patterns: save
 * `x.view(torch.int16).numpy()` (descr '<i2'; '<u2' and the raw '|V2' / '<V2' of ml_dtypes work too)
 * and read them with want_bf16, which topk-bench sets for --dtype bf16. Used by tests/test_npy.c too.
 */
#ifndef TOPK_BENCH_NPY_H
#define TOPK_BENCH_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topk.h"

typedef struct npy_matrix {
    void *data; /* rows x cols elements of dtype, dense, 64-byte aligned: free() it */
    int64_t rows, cols;
    topk_dtype dtype;
} npy_matrix;

/* Reads path into *out. want_bf16: read 16-bit integer or raw 2-byte data as bfloat16 (else such files
 * are refused, and so are float files). Returns true, or false with *out zeroed and a one-line message
 * in message ("logits.npy: expected a 2-D matrix (batch, vocab), got shape (50304,)"). */
bool npy_read(const char *path, bool want_bf16, npy_matrix *out, char *message, size_t message_size);

#endif
