/*
 * Selection and sorting of composites (keys.h: key << 32 | ~column; "words" here), largest first. They are
 * distinct within a row, so the results are unique and any correct algorithm gives the same bits.
 */
#ifndef TOPK_SELECT_WORDS_H
#define TOPK_SELECT_WORDS_H

#include <stdint.h>

/* Rearranges words[0..n) so that its `keep` largest words are in words[0..keep), in no order. */
void topk_select_words(uint64_t *words, int64_t n, int64_t keep);

/* Sorts words[0..n) largest first. */
void topk_sort_words_descending(uint64_t *words, int64_t n);

#endif
