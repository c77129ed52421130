/*
 * Quickselect and quicksort on candidate words, descending.
 *
 * The partition is branch-free (Lomuto with an unconditional swap and a counted advance): candidate
 * words are random-looking, so a branch on "word > pivot" would mispredict half the time, and these
 * selections run once per k winners of every row. The pivot is the median of three, which keeps
 * sorted and reverse-sorted inputs (ascending rows are a test case) at n log n.
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
    for (int64_t i = lo + 1; i < hi; i++) {
        uint64_t x = w[i];
        int64_t j = i;
        for (; j > lo && w[j - 1] < x; j--) w[j] = w[j - 1];
        w[j] = x;
    }
}

/* Partitions w[lo..hi) around a pivot and returns the pivot's final place p: w[lo..p) > pivot >= w(p..hi). */
static int64_t partition_descending(uint64_t *w, int64_t lo, int64_t hi)
{
    int64_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (w[mid] > w[lo]) swap_words(&w[mid], &w[lo]);
    if (w[last] > w[lo]) swap_words(&w[last], &w[lo]);
    if (w[mid] > w[last]) swap_words(&w[mid], &w[last]); /* the median now sits at `last` */
    uint64_t pivot = w[last];
    int64_t store = lo;
    for (int64_t i = lo; i < last; i++) {
        uint64_t x = w[i];
        w[i] = w[store];
        w[store] = x;
        store += x > pivot;
    }
    swap_words(&w[store], &w[last]);
    return store;
}

void topk_select_words(uint64_t *words, int64_t n, int64_t keep)
{
    if (keep <= 0 || keep >= n) return;
    int64_t lo = 0, hi = n;
    while (hi - lo > SMALL) {
        int64_t p = partition_descending(words, lo, hi);
        if (p == keep || p == keep - 1) return;
        if (p > keep) hi = p;
        else lo = p + 1;
    }
    insertion_sort_descending(words, lo, hi);
}

static void sort_range(uint64_t *w, int64_t lo, int64_t hi)
{
    while (hi - lo > SMALL) {
        int64_t p = partition_descending(w, lo, hi);
        /* Recurse into the smaller side, loop on the larger: stack depth stays O(log n). */
        if (p - lo < hi - p) {
            sort_range(w, lo, p);
            lo = p + 1;
        } else {
            sort_range(w, p + 1, hi);
            hi = p;
        }
    }
    insertion_sort_descending(w, lo, hi);
}

void topk_sort_words_descending(uint64_t *words, int64_t n) { sort_range(words, 0, n); }
