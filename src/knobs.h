/*
 * The tuning knobs in one table: each one's topk_param, its environment variable, its name in tuning
 * tables, the backend that uses it, and its range. api.c validates topk_ctx_set_param and the environment
 * with it, tuning.c the values of tuning tables; a new knob is one row here.
 */
#ifndef TOPK_KNOBS_H
#define TOPK_KNOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "topk.h"

enum { TOPK_PARAM_COUNT = TOPK_PARAM_SAMPLE_LIST + 1 }; /* the topk_param values are 0..TOPK_PARAM_COUNT-1 */

typedef struct topk_knob {
    topk_param param;
    const char *env;     /* read by topk_ctx_create; NULL: none */
    const char *table;   /* its name in a tuning table; NULL: tables do not set it */
    const char *backend; /* the backend that uses it ("cpu", "offload"), which a table row must name */
    int64_t least, most; /* its range; 0 ("choose for me") is always allowed */
    int64_t step;        /* values are multiples of this */
} topk_knob;

/* The knob of a parameter, or NULL for a value outside topk_param. */
const topk_knob *topk_knob_of(topk_param param);

/* The knob a tuning table names, or NULL. */
const topk_knob *topk_knob_in_tables(const char *name);

/* Whether a knob may take this value. */
bool topk_knob_allows(const topk_knob *knob, int64_t value);

#endif
