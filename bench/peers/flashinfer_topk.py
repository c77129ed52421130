#!/usr/bin/env python3
"""FlashInfer's top-k (flashinfer.top_k(x, k, sorted=True), a radix select) on the very matrix that
topk-bench times, on the GPU.

Shapes, input bits, timing policy, check and CSV are common.py's: eager calls between CUDA events
(median_us) and replays of a CUDA graph of one call (graph_median_us). FlashInfer only selects the
largest, so --smallest times flashinfer.top_k(-x) (exact negation) and says so in the note column.

Which FlashInfer: the flashinfer package where it imports (peer flashinfer-VERSION); else FlashInfer's
own kernels compiled ahead of time, called through bench/peers/flashinfer_shim.py (peer
flashinfer-VERSION-shim, and the note column says "flashinfer VERSION kernels via shim (nvcc X sm_Y)"):
the GPU host cannot install the 100+ MB package, but the shim's .so travels in .gpu/flashinfer (ci/gpu-pack
builds it). Where neither runs it prints why on stderr and exits with status 3 ("skipped"), which
bench/gpu-bench reports as a skip rather than a failure.
Prints CSV: peer,batch,vocab,k,dtype,order,threads,samples,median_us,min_us,graph_median_us,note.
"""
import math
import sys

from common import (as_tensor, cached_matrix, check, checked_args, early_exits, graph_of, parser, run_all,
                    time_on_cuda)

SKIPPED = 3


def skip(why):
    print(f"flashinfer_topk: skipped: {why}", file=sys.stderr, flush=True)
    sys.exit(SKIPPED)


def import_flashinfer():
    """(top_k, peer name, note): the flashinfer package if it imports, else the shim; skips when neither."""
    try:
        import flashinfer
    except Exception as e:  # ImportError, or a package built for another torch/CUDA
        first_error = f"{type(e).__name__}: {e}"
    else:
        version = getattr(flashinfer, "__version__", "unknown")
        if not hasattr(flashinfer, "top_k"):
            skip(f"flashinfer {version} has no top_k (added in 0.5)")
        return flashinfer.top_k, f"flashinfer-{version}", f"flashinfer {version} python package"
    import flashinfer_shim
    ok, what = flashinfer_shim.available()
    if not ok:
        skip(f"flashinfer does not import ({first_error}) and its shim cannot run: {what}")
    return flashinfer_shim.top_k, f"flashinfer-{flashinfer_shim.version()}-shim", what


def radix_would_hang(torch, batch, vocab, k, dtype):
    """Why FlashInfer 0.7.4's top_k never returns on this shape and GPU, or None (issue 17 item 5). Its dispatch
    (include/flashinfer/topk.cuh, ShouldUseFilteredTopK) sends long rows to RadixTopKMultiCTA, which cuts a row
    into ctas_per_group chunks of at most (opt-in shared memory per block - 2080 bytes) / sizeof(ordered key)
    elements (GetRadixTopKLaunchConfig), one CTA of 1024 threads each, and joins them every radix round at a
    barrier that thread 0 of each CTA spins on in global memory (AdvanceRadixGroupBarrier, wait_ge). A CTA
    with that much shared memory fills a multiprocessor, so a row that needs more CTAs than the GPU has
    multiprocessors waits forever: the CTAs that are running spin for ones that cannot start. 1 x 16777216
    fp32 needs 292 on an H100 (132 multiprocessors): that step ran into its 300 s limit in every run."""
    key = 4 if dtype == "fp32" else 2  # RadixTopKTraits: uint32_t for float, uint16_t for half and bfloat16
    if k <= 2048 and vocab > k and (vocab <= 16384 if key == 2 else vocab <= 32768 or batch > vocab // 16384):
        return None  # FilteredTopK: one CTA a row, no group barrier
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    optin = getattr(props, "shared_memory_per_block_optin", 232448)  # older torch: the H100's 227 KiB
    vec = math.gcd(16 // key, vocab)  # 16 bytes of the input dtype, whose size the key has
    capacity = (optin - 2080) // key // vec * vec
    ctas = -(-vocab // capacity)
    if ctas <= props.multi_processor_count:
        return None
    return (f"FlashInfer's multi-CTA radix top-k would need {ctas} co-resident CTAs for one row of {vocab} "
            f"{dtype} ({capacity} keys of shared memory each) on a GPU of {props.multi_processor_count} "
            f"multiprocessors: its inter-CTA barrier would never be reached (a hang, not slowness)")


def run_case(top_k, what, shape, args):
    batch, vocab, k, dtype = shape
    import torch
    why = radix_would_hang(torch, batch, vocab, k, dtype)
    if why:
        print(f"flashinfer_topk: skipped {batch} x {vocab}, k {k}, {dtype}: {why}", file=sys.stderr, flush=True)
        return None
    matrix = cached_matrix(args, batch, vocab, dtype)
    x = as_tensor(matrix, dtype, vocab).to(args.device)
    note = what
    if args.smallest:
        x = -x
        note += "; flashinfer selects the largest only: timed top_k(-x)"

    def call():
        return top_k(x, k, sorted=True)

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
    top_k, peer, what = import_flashinfer()
    print(f"flashinfer_topk: {what}", file=sys.stderr, flush=True)
    run_all(peer, args, lambda shape: run_case(top_k, what, shape, args))


if __name__ == "__main__":
    main()
