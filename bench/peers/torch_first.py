"""libtopk loaded into a PyTorch process that initialised CUDA first (the order a Python user gets).

Loads libtopk with ctypes, opens an offload context, and times topk_select on torch's own CUDA tensors
(TOPK_DEVICE_POINTERS) against torch.topk on the same tensor, both synchronous per call, median of
many calls; checks that our values equal torch's (indices may differ where torch breaks a tie otherwise).
Usage (GPU host, runtime on LD_LIBRARY_PATH): python3 bench/peers/torch_first.py LIBTOPK.so
"""
import ctypes
import statistics
import sys
import time

import torch

TOPK_OK, TOPK_BACKEND_OFFLOAD, TOPK_DEVICE_POINTERS = 0, 2, 2
DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
SHAPES = [(1, 50304, 50, torch.bfloat16), (1, 128256, 50, torch.float32), (32, 151936, 200, torch.bfloat16),
          (256, 151936, 50, torch.bfloat16), (1, 1, 1, torch.float32)]


def median_us(call, iters=300):
    for _ in range(20):
        call()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main():
    torch.cuda.init()
    torch.zeros(1, device="cuda")  # CUDA's primary context now belongs to torch, with torch's flags
    lib = ctypes.CDLL(sys.argv[1])
    lib.topk_strerror.restype = ctypes.c_char_p
    lib.topk_select.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int] + [ctypes.c_int64] * 4 + [
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    ctx = ctypes.c_void_p()
    status = lib.topk_ctx_create(ctypes.byref(ctx), TOPK_BACKEND_OFFLOAD)
    if status != TOPK_OK:
        sys.exit(f"torch_first: topk_ctx_create: {lib.topk_strerror(status).decode()}")
    print("shape,ours_us,torch_us,values_equal_torch")
    torch.manual_seed(0)
    for batch, vocab, k, dtype in SHAPES:
        x = torch.randn(batch, vocab, device="cuda").to(dtype)
        values = torch.empty(batch, k, device="cuda", dtype=dtype)
        indices = torch.empty(batch, k, device="cuda", dtype=torch.int64)

        def ours():
            s = lib.topk_select(ctx, x.data_ptr(), DTYPES[dtype], batch, vocab, vocab, k, TOPK_DEVICE_POINTERS,
                                values.data_ptr(), indices.data_ptr())
            if s != TOPK_OK:
                sys.exit(f"torch_first: topk_select: {lib.topk_strerror(s).decode()}")

        def theirs():
            torch.topk(x, k)
            torch.cuda.synchronize()

        ours_us, torch_us = median_us(ours), median_us(theirs)
        equal = bool(torch.equal(values, torch.topk(x, k).values))
        print(f"{batch}x{vocab} k{k} {str(dtype).split('.')[1]},{ours_us:.1f},{torch_us:.1f},{int(equal)}")
    lib.topk_ctx_free(ctx)


if __name__ == "__main__":
    main()
