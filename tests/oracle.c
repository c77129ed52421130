/*
 * The oracle: decode to double, sort every column with a comparator that spells the contract out
 * case by case, keep the first k. Slow and plain on purpose.
 */
#include "oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* An IEEE binary number with the given field widths, decoded from its bits. */
static double decode_ieee(uint32_t bits, int exponent_width, int mantissa_width)
{
    uint32_t mantissa = bits & ((1u << mantissa_width) - 1);
    uint32_t exponent = (bits >> mantissa_width) & ((1u << exponent_width) - 1);
    bool negative = (bits >> (mantissa_width + exponent_width)) & 1;
    int bias = (1 << (exponent_width - 1)) - 1;
    double magnitude;
    if (exponent == (1u << exponent_width) - 1)
        magnitude = mantissa ? NAN : INFINITY;
    else if (exponent == 0) /* zero or denormal: no implicit leading 1, exponent 1 - bias */
        magnitude = ldexp((double)mantissa, 1 - bias - mantissa_width);
    else
        magnitude = ldexp((double)(mantissa | (1u << mantissa_width)), (int)exponent - bias - mantissa_width);
    return negative ? -magnitude : magnitude;
}

double oracle_decode(topk_dtype dtype, const void *element)
{
    if (dtype == TOPK_F32) {
        uint32_t bits;
        memcpy(&bits, element, 4);
        return decode_ieee(bits, 8, 23);
    }
    uint16_t bits;
    memcpy(&bits, element, 2);
    return dtype == TOPK_F16 ? decode_ieee(bits, 5, 10) : decode_ieee(bits, 8, 7);
}

typedef struct entry {
    double value;
    int64_t index;
} entry;

static int by_index(const entry *a, const entry *b) { return (a->index > b->index) - (a->index < b->index); }

/* Largest first: NaN above everything, then larger values, +0.0 before -0.0, then smaller index. */
static int largest_first(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    bool a_nan = isnan(a->value), b_nan = isnan(b->value);
    if (a_nan != b_nan) return a_nan ? -1 : 1;
    if (!a_nan) {
        if (a->value != b->value) return a->value > b->value ? -1 : 1;
        if (signbit(a->value) != signbit(b->value)) return signbit(a->value) ? 1 : -1;
    }
    return by_index(a, b);
}

/* Smallest first: the mirror for values (NaN last, -0.0 before +0.0), but still smaller index first. */
static int smallest_first(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    bool a_nan = isnan(a->value), b_nan = isnan(b->value);
    if (a_nan != b_nan) return a_nan ? 1 : -1;
    if (!a_nan) {
        if (a->value != b->value) return a->value < b->value ? -1 : 1;
        if (signbit(a->value) != signbit(b->value)) return signbit(a->value) ? -1 : 1;
    }
    return by_index(a, b);
}

void oracle_select(const void *input, topk_dtype dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                   int64_t k, bool smallest, void *values, int64_t *indices)
{
    size_t elem = dtype == TOPK_F32 ? 4 : 2;
    entry *row_entries = malloc((size_t)vocab * sizeof *row_entries);
    for (int64_t r = 0; r < batch; r++) {
        const char *row = (const char *)input + (size_t)(r * row_stride) * elem;
        for (int64_t c = 0; c < vocab; c++) row_entries[c] = (entry){oracle_decode(dtype, row + c * elem), c};
        qsort(row_entries, (size_t)vocab, sizeof *row_entries, smallest ? smallest_first : largest_first);
        for (int64_t j = 0; j < k; j++) {
            indices[r * k + j] = row_entries[j].index;
            memcpy((char *)values + (size_t)(r * k + j) * elem, row + row_entries[j].index * elem, elem);
        }
    }
    free(row_entries);
}
