"""A decode loop, as a serving engine runs it: each step makes B x V bf16 logits with a GEMM (hidden states
times the LM head), samples one token per row, and feeds the tokens' embeddings back as the next hidden
states; everything on one CUDA stream, no host synchronisation until the end. Samplers, in one process:
libtopk's topk.sample (enqueued on torch's stream), FlashInfer's top_k_top_p_sampling_from_logits (the
package, else its kernels through flashinfer_shim.py) and the torch composite (torch_sample.py). Each runs
eagerly and as one CUDA graph per step (captured once, replayed each step; libtopk's per-row offsets live
in a device tensor that the graph advances, so every step draws fresh tokens).

Prints per sampler and mode: microseconds per step, tokens per second (B x steps / wall time), and the
GPU's idle time per step (wall time minus the GPU's busy time: the step's kernels timed alone as a graph
replay with CUDA events). Run on the GPU host with PYTHONPATH=python:bench/peers and TOPK_LIBRARY set:
    python3 bench/peers/decode_loop.py --batch 1 8 32 --vocab 128256 --steps 200
"""
import argparse
import statistics
import sys
import time


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32, 64])
    a.add_argument("--vocab", type=int, default=128256)
    a.add_argument("--hidden", type=int, default=4096)
    a.add_argument("--steps", type=int, default=200)
    a.add_argument("--temperature", type=float, default=0.7)
    a.add_argument("--top-k", type=int, default=50)
    a.add_argument("--top-p", type=float, default=0.9)
    o = a.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("decode_loop: no CUDA device", file=sys.stderr)
        return
    import topk
    from sample_common import flashinfer_sampling
    from torch_sample import composite
    samplers = {"libtopk": None, "torch": None}
    fs, _ = flashinfer_sampling()
    if fs is not None:
        samplers["flashinfer"] = None
    gen = torch.Generator(device="cuda").manual_seed(0)
    head = (torch.randn(o.vocab, o.hidden, device="cuda", generator=gen) / o.hidden ** 0.5).to(torch.bfloat16)
    embed = torch.randn(o.vocab, o.hidden, device="cuda", generator=gen).to(torch.bfloat16)
    print(f"# decode_loop on {torch.cuda.get_device_name()}: V {o.vocab}, hidden {o.hidden}, {o.steps} steps, "
          f"T {o.temperature} top-k {o.top_k} top-p {o.top_p}, bf16 logits; torch {torch.__version__}")
    print(f"{'sampler':<11} {'mode':<6} {'batch':>5} {'us/step':>9} {'tokens/s':>11} {'gpu_busy_us':>11} {'idle_us':>8}")
    for batch in o.batch:
        hidden0 = torch.randn(batch, o.hidden, device="cuda", generator=gen).to(torch.bfloat16)
        offsets = torch.zeros(batch, dtype=torch.int64, device="cuda")
        seeds = torch.arange(batch, dtype=torch.int64, device="cuda") + 1
        state = {"hidden": hidden0.clone()}

        def step(name):
            logits = state["hidden"] @ head.T
            if name == "libtopk":
                tokens = topk.sample(logits, o.temperature, o.top_k, o.top_p, seed=seeds, offset=offsets)
                offsets.add_(1)
            elif name == "flashinfer":
                tokens = fs.top_k_top_p_sampling_from_logits(logits / o.temperature, o.top_k, o.top_p,
                                                             filter_apply_order="joint")
            else:
                tokens = composite(torch, logits, o.temperature, o.top_k, o.top_p, 0.0).squeeze(1)
            state["hidden"].copy_(embed[tokens.long()])
            return tokens

        for name in samplers:
            for mode in ("eager", "graph"):
                state["hidden"].copy_(hidden0)
                run = lambda: step(name)  # noqa: E731
                if mode == "graph":
                    side = torch.cuda.Stream()
                    side.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(side):
                        for _ in range(3):
                            step(name)
                    torch.cuda.current_stream().wait_stream(side)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        step(name)
                    run = graph.replay
                for _ in range(5):
                    run()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(o.steps):
                    run()
                torch.cuda.synchronize()
                wall = (time.perf_counter() - t0) / o.steps * 1e6
                # the GPU's busy time per step: the same step as a graph, replays timed with CUDA events
                # one at a time (the graph's own launch gap is excluded by the events)
                if mode == "eager":
                    side = torch.cuda.Stream()
                    side.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(side):
                        step(name)
                    torch.cuda.current_stream().wait_stream(side)
                    busy_graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(busy_graph):
                        step(name)
                else:
                    busy_graph = graph
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                busy = []
                for _ in range(20):
                    start.record()
                    busy_graph.replay()
                    end.record()
                    end.synchronize()
                    busy.append(start.elapsed_time(end) * 1e3)
                busy_us = statistics.median(busy)
                print(f"{name:<11} {mode:<6} {batch:>5} {wall:>9.1f} {batch * 1e6 / wall:>11.0f} {busy_us:>11.1f} "
                      f"{max(wall - busy_us, 0):>8.1f}", flush=True)


if __name__ == "__main__":
    main()
