/*
 * The clock of the stage profile (topk_ctx_last_profile): monotonic, nanosecond resolution. Read only
 * when a context profiles, so a call that does not pays nothing for it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c17 */
#include <time.h>

#include "internal.h"

double topk_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
