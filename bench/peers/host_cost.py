"""The host's cost of one call from Python on CUDA tensors (issue 16: <= 5 us for topk.topk and topk.sample),
with torch.topk's and the binding's own steps beside it, so that the number says where the time goes.

Each call is timed over 1000 back-to-back calls, in bursts of 100 with the GPU drained between bursts
(torch.cuda.synchronize, not timed): a burst never fills the launch queue, so the number is the host's
cost, not the GPU's throughput (1000 calls in a row of a 20 us kernel would measure the kernel once the
queue is full). Usage: python3 host_cost.py [--batch 1] [--vocab 4096] [--k 50]
"""
import argparse
import time

import torch

import topk
from topk import _cuda
from topk._backends import context
from topk._library import C, DTYPES, TOPK_DEVICE_POINTERS

CALLS, BURST = 1000, 100


def host_us(call):
    """Mean host time of one call (us) over CALLS calls in bursts of BURST."""
    for _ in range(BURST):
        call()
    torch.cuda.synchronize()
    total = 0.0
    for _ in range(CALLS // BURST):
        t0 = time.perf_counter()
        for _ in range(BURST):
            call()
        total += time.perf_counter() - t0
        torch.cuda.synchronize()
    return total / CALLS * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--k", type=int, default=50)
    o = parser.parse_args()
    x = torch.randn(o.batch, o.vocab, device="cuda").to(torch.bfloat16)
    values, indices = torch.empty(o.batch, o.k, device="cuda", dtype=torch.bfloat16), torch.empty(
        o.batch, o.k, device="cuda", dtype=torch.int64)
    ctx = context("offload", 0)
    C["topk_ctx_set_stream"](ctx, _cuda.raw_stream(0) or _cuda.CU_STREAM_LEGACY)  # enqueue, as topk.topk does
    select = C["topk_select"]
    args = (ctx, x.data_ptr(), DTYPES["bfloat16"], o.batch, o.vocab, o.vocab, o.k, TOPK_DEVICE_POINTERS,
            values.data_ptr(), indices.data_ptr())
    steps = {
        "topk.topk": lambda: topk.topk(x, o.k),
        "topk.topk(out=) (outputs given)": lambda: topk.topk(x, o.k, out=(values, indices)),
        "topk.sample (T 0.7, top-k 50, top-p 0.9)": lambda: topk.sample(x, 0.7, 50, 0.9, seed=1),
        "torch.topk": lambda: torch.topk(x, o.k),
        "torch.topk(out=) (outputs given)": lambda: torch.topk(x, o.k, out=(values, indices)),
        "  two torch.empty outputs": lambda: (torch.empty(o.batch, o.k, device="cuda", dtype=torch.bfloat16),
                                              torch.empty(o.batch, o.k, device="cuda", dtype=torch.int64)),
        "  torch's current raw stream": lambda: _cuda.raw_stream(0),
        "  topk_select through ctypes (enqueued, outputs given)": lambda: select(*args),
        "  the same through topk._cuda.call (stream check, lock)": lambda: _cuda.call(0, select, *args),
        "  an empty ctypes call (topk_ctx_backend)": lambda: C["topk_ctx_backend"](ctx),
    }
    print(f"# host cost per call from Python, {o.batch} x {o.vocab} bf16 k {o.k}, CUDA tensors, "
          f"{torch.cuda.get_device_name()}, torch {torch.__version__}, libtopk {topk.__version__}; "
          f"mean over {CALLS} calls in bursts of {BURST}")
    for name, call in steps.items():
        print(f"{name:<48} {host_us(call):7.2f} us")


if __name__ == "__main__":
    main()
