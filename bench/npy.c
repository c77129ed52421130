/*
 * The .npy reader (npy.h). The format: the magic "\x93NUMPY", a major and a minor version byte, the
 * header's length (2 bytes little-endian in version 1, 4 in versions 2 and 3), then the header, a
 * Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (4, 50304), }, padded
 * with spaces and a newline, then the data. Every check names what it found, so that a wrong file is
 * easy to fix; nothing is trusted before it is checked (the header's length, the shape's product, the
 * data's size).
 */
#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_HEADER = 1 << 16 };

static bool fail(char *message, size_t size, const char *path, const char *format, ...)
{
    if (message && size) {
        int n = snprintf(message, size, "%s: ", path);
        if (n >= 0 && (size_t)n < size) {
            va_list args;
            va_start(args, format);
            vsnprintf(message + n, size - (size_t)n, format, args);
            va_end(args);
        }
    }
    return false;
}

/* The text after `'key':` in the header, spaces skipped, or NULL. */
static const char *value_of(const char *header, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *at = strstr(header, quoted);
    if (!at) {
        snprintf(quoted, sizeof quoted, "\"%s\"", key);
        at = strstr(header, quoted);
    }
    if (!at) return NULL;
    at += strlen(quoted);
    while (*at == ' ') at++;
    if (*at != ':') return NULL;
    at++;
    while (*at == ' ') at++;
    return at;
}

/* Parses "(a, b, ...)" into dims; returns the count, or -1 when it is not a tuple of whole numbers. */
static int parse_shape(const char *text, int64_t dims[4], char *shown, size_t shown_size)
{
    if (*text != '(') return -1;
    const char *close = strchr(text, ')');
    if (!close) return -1;
    snprintf(shown, shown_size, "%.*s", (int)(close - text + 1), text);
    int n = 0;
    const char *at = text + 1;
    for (;;) {
        while (*at == ' ') at++;
        if (*at == ')') return n;
        if (*at < '0' || *at > '9') return -1;
        int64_t v = 0;
        while (*at >= '0' && *at <= '9') {
            if (v > ((int64_t)1 << 50)) return -1;
            v = v * 10 + (*at++ - '0');
        }
        if (n < 4) dims[n] = v;
        n++;
        while (*at == ' ') at++;
        if (*at == ',') at++;
        else if (*at != ')') return -1;
    }
}

/* Reads the quoted descr into out ('<f4' becomes <f4). */
static bool parse_descr(const char *text, char *out, size_t size)
{
    if (*text != '\'' && *text != '"') return false;
    const char *end = strchr(text + 1, *text);
    if (!end || (size_t)(end - text - 1) >= size) return false;
    snprintf(out, size, "%.*s", (int)(end - text - 1), text + 1);
    return true;
}

static bool pick_dtype(const char *descr, bool want_bf16, topk_dtype *dtype, char *message, size_t size,
                       const char *path)
{
    static const char *const bf16_descrs[] = {"<i2", "<u2", "|V2", "<V2", "|i2", "|u2"};
    for (size_t i = 0; i < sizeof bf16_descrs / sizeof bf16_descrs[0]; i++) {
        if (strcmp(descr, bf16_descrs[i]) != 0) continue;
        if (!want_bf16)
            return fail(message, size, path,
                        "dtype '%s' holds 16-bit patterns; NumPy has no bfloat16, so read them as bf16 with "
                        "--dtype bf16", descr);
        *dtype = TOPK_BF16;
        return true;
    }
    if (!strcmp(descr, "<f4") || !strcmp(descr, "<f2")) {
        if (want_bf16)
            return fail(message, size, path, "--dtype bf16, but the file holds %s ('%s')",
                        descr[2] == '4' ? "fp32" : "fp16", descr);
        *dtype = descr[2] == '4' ? TOPK_F32 : TOPK_F16;
        return true;
    }
    if (descr[0] == '>')
        return fail(message, size, path, "dtype '%s' is big-endian; save it little-endian (x.astype('<f4'))", descr);
    return fail(message, size, path,
                "dtype '%s' is not supported: expected '<f4' (fp32), '<f2' (fp16), or bfloat16 bits as '<i2', "
                "'<u2' or '|V2' with --dtype bf16", descr);
}

/* Reads and checks the preamble and header: dtype, rows, cols. The file is left at the data. */
static bool read_header(FILE *f, const char *path, bool want_bf16, npy_matrix *m, char *message, size_t size)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return fail(message, size, path, "not a .npy file (it does not start with \\x93NUMPY)");
    int major = pre[6];
    size_t header_len;
    if (major == 1) {
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) return fail(message, size, path, "the file ends inside its preamble");
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        return fail(message, size, path, ".npy format version %d.%d is not supported (1, 2 and 3 are)", major, pre[7]);
    }
    if (header_len == 0 || header_len > MAX_HEADER)
        return fail(message, size, path, "header length %zu is not plausible", header_len);
    char *header = malloc(header_len + 1);
    if (!header) return fail(message, size, path, "out of memory");
    bool ok = fread(header, 1, header_len, f) == header_len;
    header[ok ? header_len : 0] = 0;
    if (!ok) {
        free(header);
        return fail(message, size, path, "the file ends inside its %zu-byte header", header_len);
    }
    const char *descr_at = value_of(header, "descr"), *order_at = value_of(header, "fortran_order");
    const char *shape_at = value_of(header, "shape");
    char descr[16], shown[96] = "";
    int64_t dims[4] = {0};
    int ndim = shape_at ? parse_shape(shape_at, dims, shown, sizeof shown) : -1;
    if (header[0] != '{' || !descr_at || !order_at || !shape_at)
        ok = fail(message, size, path, "the header is not a dict with 'descr', 'fortran_order' and 'shape'");
    else if (!parse_descr(descr_at, descr, sizeof descr))
        ok = fail(message, size, path, "the header's 'descr' is not a simple type string (structured arrays are "
                                      "not supported)");
    else if (strncmp(order_at, "False", 5) != 0)
        ok = fail(message, size, path, "the array is in Fortran order; save a C-order copy (np.ascontiguousarray)");
    else if (ndim < 0)
        ok = fail(message, size, path, "the header's 'shape' is not a tuple of whole numbers");
    else if (ndim != 2)
        ok = fail(message, size, path, "expected a 2-D matrix (batch, vocab), got %d dimension%s %s", ndim,
                  ndim == 1 ? "" : "s", shown);
    else if (dims[0] < 1 || dims[1] < 1)
        ok = fail(message, size, path, "shape %s is empty: batch and vocab must be at least 1", shown);
    else
        ok = pick_dtype(descr, want_bf16, &m->dtype, message, size, path);
    free(header);
    m->rows = dims[0];
    m->cols = dims[1];
    return ok;
}

bool npy_read(const char *path, bool want_bf16, npy_matrix *out, char *message, size_t message_size)
{
    *out = (npy_matrix){0};
    FILE *f = fopen(path, "rb");
    if (!f) return fail(message, message_size, path, "cannot open it (%s)", strerror(errno));
    npy_matrix m = {0};
    bool ok = read_header(f, path, want_bf16, &m, message, message_size);
    size_t elem = m.dtype == TOPK_F32 ? 4 : 2, bytes = 0;
    if (ok && (__builtin_mul_overflow((size_t)m.rows, (size_t)m.cols, &bytes) ||
               __builtin_mul_overflow(bytes, elem, &bytes)))
        ok = fail(message, message_size, path, "shape (%lld, %lld) is too large", (long long)m.rows,
                  (long long)m.cols);
    if (ok) {
        m.data = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!m.data) ok = fail(message, message_size, path, "out of memory for %zu bytes", bytes);
    }
    if (ok) {
        size_t got = fread(m.data, 1, bytes, f);
        if (got != bytes)
            ok = fail(message, message_size, path, "holds %zu bytes of data, but shape (%lld, %lld) needs %zu", got,
                      (long long)m.rows, (long long)m.cols, bytes);
        else if (fgetc(f) != EOF)
            ok = fail(message, message_size, path, "has data past the %zu bytes that shape (%lld, %lld) needs", bytes,
                      (long long)m.rows, (long long)m.cols);
    }
    fclose(f);
    if (!ok) {
        free(m.data);
        return false;
    }
    *out = m;
    return true;
}
