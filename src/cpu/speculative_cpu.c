/*
 * The cpu backend of chain speculative sampling: rows spread over OpenMP threads, each row run by a
 * one-thread team of speculative_math.h's spec_team_row, the function the offload backend's teams run.
 */
#include <omp.h>
#include <stdlib.h>

#include "speculative.h"

topk_status topk_cpu_speculative(const topk_spec_problem *p, int threads)
{
    int team_count = threads > 0 ? threads : omp_get_max_threads();
    if (team_count > p->batch) team_count = (int)p->batch;
    sample_mem *mems = malloc((size_t)team_count * sizeof *mems);
    if (!mems) return TOPK_ERR_OUT_OF_MEMORY;
    int64_t S = p->S, V = p->vocab;
#pragma omp parallel for num_threads(team_count) schedule(dynamic, 1)
    for (int64_t b = 0; b < p->batch; b++) {
        sample_team t = {&mems[omp_get_thread_num()], 0, 1};
        spec_team_row(t, p->draft + b * S * V, p->ids + b * S, p->target + b * (S + 1) * V, S, V, p->seed, p->offset,
                      p->seeds, p->offsets, b, p->out + b * (S + 1), p->accepted ? p->accepted + b : NULL,
                      p->emitted ? p->emitted + b : NULL);
    }
    free(mems);
    return TOPK_OK;
}
