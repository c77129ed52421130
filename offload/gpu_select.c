#include "internal.h"
topk_status topk_gpu_select(topk_gpu *gpu, const topk_problem *p, bool device_pointers, int64_t teams_per_row)
{ (void)gpu; (void)p; (void)device_pointers; (void)teams_per_row; return TOPK_ERR_NO_DEVICE; }
