"""Sampling as CUDA graphs, ours against the peers', in one process (issue 18's speed table): for each
batch x vocab x dtype, libtopk's topk.sample (enqueued on torch's stream by the stream launcher, per-row
offsets in a device tensor), FlashInfer's top_k_top_p_sampling_from_logits (the package, else its kernels
through flashinfer_shim.py; the division by T is its own kernel, as in an engine) and the torch composite
(torch_sample.py: topk, softmax, top-p, min-p, multinomial), each captured in a CUDA graph and its replays
timed with CUDA events (median), plus each one's eager call timed the same way (host launch cost included
where it exceeds the GPU's time).

    PYTHONPATH=python:bench/peers TOPK_LIBRARY=.gpu/bin/libtopk.so python3 bench/peers/sample_graphs.py

Logits are N(0, 2^2) (torch.randn * 2, one generator), so the nucleus at p = 0.9 holds many tokens and
FlashInfer's rejection rounds do real work. Before any number is printed, our graph's replay is checked
against our eager call (same seeds and offsets: the same tokens). Prints a table: microseconds of each,
graph and eager, and ours' ratio to each peer (> 1: ours is faster), graph to graph and eager to eager.
"""
import argparse
import sys

from sample_common import flashinfer_sampling, ratio_cell, time_graphs, us_cell
from torch_sample import composite


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64, 256])
    a.add_argument("--vocab", type=int, nargs="+", default=[128256, 151936])
    a.add_argument("--dtype", nargs="+", default=["fp32", "bf16"])
    a.add_argument("--temperature", type=float, default=0.7)
    a.add_argument("--top-k", type=int, default=50)
    a.add_argument("--top-p", type=float, default=0.9)
    a.add_argument("--reps", type=int, default=50)
    o = a.parse_args()
    import torch
    import topk
    if not torch.cuda.is_available():
        print("sample_graphs: no CUDA device", file=sys.stderr)
        return 3
    fs, why = flashinfer_sampling()
    if fs is None:
        print(f"# flashinfer skipped: {why}")
    T, k, p = o.temperature, o.top_k, o.top_p
    print(f"# sampling as CUDA graphs on {torch.cuda.get_device_name()}: T {T} top-k {k} top-p {p}, median of "
          f"{o.reps} (CUDA events); torch {torch.__version__}; flashinfer {'yes' if fs else 'no'}")
    print(f"{'batch':>5} {'vocab':>7} {'dtype':<5} {'ours_graph':>10} {'fi_graph':>8} {'torch_graph':>11} "
          f"{'ours_eager':>10} {'fi_eager':>8} {'torch_eager':>11} {'vs_fi_g':>7} {'vs_torch_g':>10} "
          f"{'vs_fi_e':>7} {'vs_torch_e':>10}")
    gen = torch.Generator(device="cuda").manual_seed(1)
    for dtype in o.dtype:
        tdtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        for vocab in o.vocab:
            for batch in o.batch:
                logits = (torch.randn(batch, vocab, device="cuda", generator=gen) * 2).to(tdtype)
                seeds = torch.arange(batch, dtype=torch.int64, device="cuda") + 1
                offsets = torch.zeros(batch, dtype=torch.int64, device="cuda")
                runs = {"ours": lambda: topk.sample(logits, T, k, p, seed=seeds, offset=offsets),
                        "torch": lambda: composite(torch, logits, T, k, p, 0.0)}
                if fs is not None:
                    runs["fi"] = lambda: fs.top_k_top_p_sampling_from_logits(logits / T, k, p,
                                                                             filter_apply_order="joint")
                def check_ours(result, run):
                    if not torch.equal(result, run()):
                        raise AssertionError(f"ours: graph replay != eager call at {batch}x{vocab} {dtype}")
                graph_us, eager_us = time_graphs(torch, runs, o.reps, check_ours, f"{batch}x{vocab} {dtype}")
                print(f"{batch:>5} {vocab:>7} {dtype:<5} {us_cell(graph_us, 'ours', 10)} {us_cell(graph_us, 'fi', 8)} "
                      f"{us_cell(graph_us, 'torch', 11)} {us_cell(eager_us, 'ours', 10)} {us_cell(eager_us, 'fi', 8)} "
                      f"{us_cell(eager_us, 'torch', 11)} {ratio_cell(graph_us, 'fi', 7)} "
                      f"{ratio_cell(graph_us, 'torch', 10)} {ratio_cell(eager_us, 'fi', 7)} "
                      f"{ratio_cell(eager_us, 'torch', 10)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
