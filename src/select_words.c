/*
 * Quickselect and quicksort on candidate words, descending. Hoare partitioning around the median of
 * three, which keeps sorted and reverse-sorted inputs (ascending rows are a test case) at n log n.
 */
#include "select_words.h"

enum { SMALL = 16 };

static inline void swap_words(uint64_t *a, uint64_t *b)
{
    uint64_t t = *a;
    *a = *b;
    *b = t;
}

static void insertion_sort_descending(uint64_t *w, int64_t lo, int64_t hi)
{
    for (int64_t i = lo + 1; i <= hi; i++) {
        uint64_t x = w[i];
        int64_t j = i;
        for (; j > lo && w[j - 1] < x; j--) w[j] = w[j - 1];
        w[j] = x;
    }
}

/* Splits w[lo..hi] (inclusive) at the returned j, lo <= j < hi: every word in w[lo..j] is >= every
 * word in w[j+1..hi]. */
static int64_t partition_descending(uint64_t *w, int64_t lo, int64_t hi)
{
    int64_t mid = lo + (hi - lo) / 2;
    if (w[mid] > w[lo]) swap_words(&w[mid], &w[lo]);
    if (w[hi] > w[lo]) swap_words(&w[hi], &w[lo]);
    if (w[hi] > w[mid]) swap_words(&w[hi], &w[mid]);
    uint64_t pivot = w[mid];
    int64_t i = lo - 1, j = hi + 1;
    for (;;) {
        do i++;
        while (w[i] > pivot);
        do j--;
        while (w[j] < pivot);
        if (i >= j) return j;
        swap_words(&w[i], &w[j]);
    }
}

void topk_select_words(uint64_t *words, int64_t n, int64_t keep)
{
    if (keep <= 0 || keep >= n) return;
    int64_t lo = 0, hi = n - 1, last = keep - 1;
    while (hi - lo > SMALL) {
        int64_t j = partition_descending(words, lo, hi);
        if (last <= j) hi = j;
        else lo = j + 1;
    }
    insertion_sort_descending(words, lo, hi);
}

static void sort_range(uint64_t *w, int64_t lo, int64_t hi)
{
    while (hi - lo > SMALL) {
        int64_t j = partition_descending(w, lo, hi);
        /* Recurse into the smaller side, loop on the larger: stack depth stays O(log n). */
        if (j - lo < hi - j) {
            sort_range(w, lo, j);
            lo = j + 1;
        } else {
            sort_range(w, j + 1, hi);
            hi = j;
        }
    }
    insertion_sort_descending(w, lo, hi);
}

void topk_sort_words_descending(uint64_t *words, int64_t n)
{
    if (n > 1) sort_range(words, 0, n - 1);
}
