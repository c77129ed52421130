"""Top-k as CUDA graphs, ours against the peers', in one process: for each case of a matrix, libtopk's
topk.topk (enqueued on torch's stream by the stream launcher), torch.topk and FlashInfer's top_k (the
package, else its kernels through flashinfer_shim.py), each captured in a CUDA graph and its replays timed
with CUDA events (median), plus each one's eager call (CUDA events around back-to-back calls). Ours is
checked against torch.topk's values (the k best, in order) before any number is printed.

    PYTHONPATH=python:bench/peers TOPK_LIBRARY=.gpu/bin/libtopk.so python3 bench/peers/graphs.py --matrix llm

Prints a table: per case the microseconds of each (graph and eager) and ours' ratio to each peer's graph
(> 1: ours is faster).
"""
import argparse
import sys

from common import as_tensor, cached_matrix, check, matrix_cases
from sample_common import ratio_cell, time_graphs, us_cell


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--matrix", default="llm")
    a.add_argument("--reps", type=int, default=50)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--cache", default=None)
    o = a.parse_args()
    import torch
    import topk
    if not torch.cuda.is_available():
        print("graphs: no CUDA device", file=sys.stderr)
        return 3
    try:
        import flashinfer.sampling  # noqa: F401
        import flashinfer
        fi_top_k = flashinfer.top_k
    except Exception:  # noqa: BLE001 - no package, or one built for another torch: the shim
        import flashinfer_shim
        fi_top_k = flashinfer_shim.top_k if flashinfer_shim.available()[0] else None
    print(f"# top-k as CUDA graphs on {torch.cuda.get_device_name()}, matrix {o.matrix}, median of {o.reps} "
          f"replays (CUDA events); torch {torch.__version__}; flashinfer {'yes' if fi_top_k else 'no'}")
    # the host's cost of one call from Python (host_cost.py: 1000 calls in bursts that never fill the queue)
    from host_cost import CALLS, host_us
    small = torch.randn(1, 4096, device="cuda").to(torch.bfloat16)
    for name, call in [("topk.topk", lambda: topk.topk(small, 50)),
                       ("topk.sample", lambda: topk.sample(small, 0.7, 50, 0.9, seed=1))]:
        print(f"# python enqueue: {name} 1 x 4096 bf16 k 50: {host_us(call):.2f} us/call on the host over {CALLS} calls")
    print(f"{'batch':>5} {'vocab':>7} {'k':>5} {'dtype':<5} {'ours_graph':>10} {'torch_graph':>11} {'fi_graph':>8} "
          f"{'ours_eager':>10} {'torch_eager':>11} {'fi_eager':>8} {'vs_torch':>8} {'vs_fi':>6}")
    for batch, vocab, k, dtype in matrix_cases(o.matrix):
        matrix = cached_matrix(o, batch, vocab, dtype)
        x = as_tensor(matrix, dtype, vocab).contiguous().cuda()
        runs = {"ours": lambda: topk.topk(x, k), "torch": lambda: torch.topk(x, k)}
        if fi_top_k is not None:
            runs["fi"] = lambda: fi_top_k(x, k)
        def check_ours(result, _run):
            check(result[0].float().cpu().numpy(), matrix, (batch, vocab, k, dtype), True, "ours (graph)")
        graph_us, eager_us = time_graphs(torch, runs, o.reps, check_ours, f"{batch}x{vocab} k {k}")
        print(f"{batch:>5} {vocab:>7} {k:>5} {dtype:<5} {us_cell(graph_us, 'ours', 10)} "
              f"{us_cell(graph_us, 'torch', 11)} {us_cell(graph_us, 'fi', 8)} {us_cell(eager_us, 'ours', 10)} "
              f"{us_cell(eager_us, 'torch', 11)} {us_cell(eager_us, 'fi', 8)} {ratio_cell(graph_us, 'torch', 8)} "
              f"{ratio_cell(graph_us, 'fi', 6)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
