#!/usr/bin/env python3
"""FlashInfer's top-k (flashinfer.top_k(x, k, sorted=True), a radix select) on the very matrix that
topk-bench times, on the GPU.

Shapes, input bits, timing policy, check and CSV are common.py's: eager calls between CUDA events
(median_us) and replays of a CUDA graph of one call (graph_median_us). FlashInfer only selects the
largest, so --smallest times flashinfer.top_k(-x) (exact negation) and says so in the note column.

FlashInfer comes from PyPI (flashinfer-python) and compiles its kernels with nvcc the first time they
run (JIT). On a GPU host without it installed, this looks for wheels in .whl/ beside the repository
(bench/peers/fetch-wheels puts them there) and installs them into a temporary folder; where FlashInfer
still cannot be imported it prints why on stderr and exits with status 3 ("skipped"), which
bench/gpu-bench reports as a skip rather than a failure.
Prints CSV: peer,batch,vocab,k,dtype,order,threads,samples,median_us,min_us,graph_median_us,note.
"""
import glob
import os
import subprocess
import sys
import tempfile

from common import (as_tensor, cached_matrix, check, checked_args, early_exits, graph_of, parser, run_all,
                    time_on_cuda)

SKIPPED = 3


def skip(why):
    print(f"flashinfer_topk: skipped: {why}", file=sys.stderr, flush=True)
    sys.exit(SKIPPED)


def import_flashinfer():
    """flashinfer, from the environment or from the wheels in .whl/; skips the peer when neither works."""
    try:
        import flashinfer
        return flashinfer
    except ImportError as e:
        first_error = e
    wheels = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".whl")
    if not glob.glob(os.path.join(wheels, "flashinfer_python-*.whl")):
        skip(f"flashinfer is not installed ({first_error}) and .whl/ has no flashinfer_python wheel "
             f"(bench/peers/fetch-wheels downloads it; see its note on size)")
    target = tempfile.mkdtemp(prefix="flashinfer-")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels,
                              "--target", target, "--no-deps", "flashinfer-python"], capture_output=True, text=True)
    if install.returncode != 0:
        skip(f"pip could not install the wheel from .whl/: {install.stderr.strip().splitlines()[-1:]}")
    sys.path.insert(0, target)
    try:
        import flashinfer
        return flashinfer
    except ImportError as e:  # its dependencies (apache-tvm-ffi, cuda-python, ...) are not on this host
        skip(f"the wheel from .whl/ installed, but `import flashinfer` failed: {e}")


def run_case(flashinfer, torch, shape, args):
    batch, vocab, k, dtype = shape
    matrix = cached_matrix(args, batch, vocab, dtype)
    x = as_tensor(matrix, dtype, vocab).to(args.device)
    note = ""
    if args.smallest:
        x = -x
        note = "flashinfer selects the largest only: timed top_k(-x)"

    def call():
        return flashinfer.top_k(x, k, sorted=True)

    samples, (values, _) = time_on_cuda(call, args)
    graph, (graph_values, _) = graph_of(call)
    graph_samples, _ = time_on_cuda(graph.replay, args)  # replays rewrite graph_values in place
    sign = -1.0 if args.smallest else 1.0
    for got in (values, graph_values):
        check(sign * got.float().cpu().numpy(), matrix, shape, not args.smallest, "flashinfer_topk")
    return samples, graph_samples, note


def main():
    args = checked_args(parser(__doc__, ["cuda"], "cuda"))
    if early_exits(args):
        return
    try:
        import torch
    except ImportError as e:
        skip(f"torch is not installed: {e}")
    if not torch.cuda.is_available():
        skip("torch sees no CUDA device")
    flashinfer = import_flashinfer()
    if not hasattr(flashinfer, "top_k"):
        skip(f"flashinfer {getattr(flashinfer, '__version__', '?')} has no top_k (added in 0.5)")
    run_all(f"flashinfer-{getattr(flashinfer, '__version__', 'unknown')}", args,
            lambda shape: run_case(flashinfer, torch, shape, args))


if __name__ == "__main__":
    main()
