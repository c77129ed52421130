#include "internal.h"
topk_status topk_cpu_select(const topk_problem *p, int threads, int64_t chunk)
{
    (void)threads; (void)chunk;
    return topk_reference_select(p);
}
