/*
 * topk-bench's .npy reader (bench/npy.c, compiled into this test): the files numpy.save writes for
 * fp32, fp16 and bf16-as-int16 logits read back bit for bit, in format versions 1 and 2; every
 * malformed file is refused with a message that says what is wrong. Files are written by the test.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

/* A .npy file: preamble of `version`, the header text padded as numpy pads it, then `data_bytes` of
 * data (0, 1, 2, ... mod 256). Returns its path (static storage, one at a time). */
static const char *write_npy(int version, const char *header, size_t data_bytes)
{
    static char path[64];
    strcpy(path, "/tmp/topk-npy-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    size_t prefix = version == 1 ? 10 : 12, len = strlen(header);
    size_t total = (prefix + len + 1 + 63) / 64 * 64, padded = total - prefix;
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)version, 0};
    pre[8] = (unsigned char)padded;
    pre[9] = (unsigned char)(padded >> 8);
    fwrite(pre, 1, prefix, f);
    fputs(header, f);
    for (size_t i = len; i + 1 < padded; i++) fputc(' ', f);
    fputc('\n', f);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)(i & 0xFF), f);
    cr_assert(fclose(f) == 0);
    return path;
}

static const char *write_raw(const void *bytes, size_t n)
{
    static char path[64];
    strcpy(path, "/tmp/topk-npy-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    fwrite(bytes, 1, n, f);
    cr_assert(fclose(f) == 0);
    return path;
}

static void expect_matrix(const char *path, bool want_bf16, topk_dtype dtype, int64_t rows, int64_t cols)
{
    npy_matrix m;
    char msg[512] = "";
    cr_assert(npy_read(path, want_bf16, &m, msg, sizeof msg), "%s", msg);
    cr_assert_eq(m.dtype, dtype);
    cr_assert_eq(m.rows, rows);
    cr_assert_eq(m.cols, cols);
    size_t bytes = (size_t)(rows * cols) * (dtype == TOPK_F32 ? 4 : 2);
    for (size_t i = 0; i < bytes; i++) cr_assert_eq(((unsigned char *)m.data)[i], i & 0xFF, "byte %zu", i);
    cr_assert_eq((uintptr_t)m.data % 64, 0, "64-byte aligned");
    free(m.data);
    remove(path);
}

Test(npy, reads_fp32_fp16_and_bf16_bits)
{
    expect_matrix(write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }", 60), false, TOPK_F32, 3, 5);
    expect_matrix(write_npy(2, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 50304), }", 2 * 50304 * 2),
                  false, TOPK_F16, 2, 50304);
    expect_matrix(write_npy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 7)}", 28), false, TOPK_F32, 1, 7);
    expect_matrix(write_npy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (4, 9), }", 72), true, TOPK_BF16, 4, 9);
    expect_matrix(write_npy(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 3), }", 6), true, TOPK_BF16, 1, 3);
    expect_matrix(write_npy(1, "{'descr': '|V2', 'fortran_order': False, 'shape': (2,3), }", 12), true, TOPK_BF16, 2, 3);
    expect_matrix(write_npy(1, "{\"shape\": (2, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", 16), false,
                  TOPK_F32, 2, 2);
}

typedef struct bad_npy {
    int version;          /* 0: raw bytes below instead of a header */
    const char *header;
    size_t data_bytes;
    bool want_bf16;
    const char *says;
} bad_npy;

static bad_npy bad_files[] = {
    {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48, false, "dtype '<f8' is not supported"},
    {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24, false, "big-endian"},
    {1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", 12, false, "with --dtype bf16"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, true, "--dtype bf16, but the file holds fp32"},
    {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, false, "Fortran order"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24, false, "2-D matrix (batch, vocab), got 1 dimension (6,)"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", 24, false, "got 3 dimensions (1, 2, 3)"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, false, "got 0 dimensions"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, false, "is empty"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24, false, "not a tuple of whole numbers"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23, false, "holds 23 bytes of data, but shape (2, 3) needs 24"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 25, false, "data past the 24 bytes"},
    {1, "{'descr': '<f4', 'shape': (2, 3), }", 24, false, "'descr', 'fortran_order' and 'shape'"},
    {1, "['descr', '<f4']", 24, false, "not a dict"},
    {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", 24, false, "structured arrays"},
    {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, false, "version 4.0 is not supported"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, false, "too large"},
};

/* Criterion may run a test in a fresh process, where the parent's pointers mean nothing: the
 * parameter is an index into bad_files. */
static int bad_file_index[sizeof bad_files / sizeof bad_files[0]];

ParameterizedTestParameters(npy, refuses_malformed_files)
{
    for (int i = 0; i < (int)(sizeof bad_file_index / sizeof bad_file_index[0]); i++) bad_file_index[i] = i;
    return cr_make_param_array(int, bad_file_index, sizeof bad_file_index / sizeof bad_file_index[0]);
}

ParameterizedTest(int *index, npy, refuses_malformed_files)
{
    const bad_npy *b = &bad_files[*index];
    const char *path = write_npy(b->version, b->header, b->data_bytes);
    npy_matrix m = {(void *)1, 7, 7, TOPK_F16};
    char msg[512] = "";
    cr_assert_not(npy_read(path, b->want_bf16, &m, msg, sizeof msg), "accepted %s", b->header);
    cr_assert_null(m.data, "*out is zeroed on failure");
    cr_assert(strncmp(msg, path, strlen(path)) == 0, "the message names the file: %s", msg);
    cr_assert(strstr(msg, b->says), "message \"%s\" should say \"%s\"", msg, b->says);
    remove(path);
}

Test(npy, refuses_what_is_not_npy)
{
    char msg[512];
    npy_matrix m;
    const char *path = write_raw("PK\3\4 a zip file", 16);
    cr_assert_not(npy_read(path, false, &m, msg, sizeof msg));
    cr_assert(strstr(msg, "not a .npy file"), "%s", msg);
    remove(path);
    path = write_raw("\x93NUMPY\1\0\xff\x7f{'descr'", 17);
    cr_assert_not(npy_read(path, false, &m, msg, sizeof msg));
    cr_assert(strstr(msg, "ends inside its"), "%s", msg);
    remove(path);
    path = write_raw("\x93NUMPY\1\0\0\0", 10);
    cr_assert_not(npy_read(path, false, &m, msg, sizeof msg));
    cr_assert(strstr(msg, "header length 0"), "%s", msg);
    remove(path);
    path = write_raw("\x93NUM", 4);
    cr_assert_not(npy_read(path, false, &m, msg, sizeof msg));
    cr_assert(strstr(msg, "not a .npy file"), "%s", msg);
    remove(path);
    cr_assert_not(npy_read("/nonexistent/x.npy", false, &m, msg, sizeof msg));
    cr_assert(strstr(msg, "/nonexistent/x.npy: cannot open it"), "%s", msg);
}
