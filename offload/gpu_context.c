#include <stddef.h>
#include "internal.h"
topk_status topk_gpu_open(topk_gpu **gpu, int device) { (void)device; *gpu = NULL; return TOPK_ERR_NO_DEVICE; }
void topk_gpu_close(topk_gpu *gpu) { (void)gpu; }
