"""Vocab-parallel decode step (issue 19): each rank holds an even slice of every row of the logits, as a
tensor-parallel LM head leaves them, and every rank wants the row's top k (or one sampled token). Per step:
  ours-topk        topk.shard_topk: candidates only (best k of each shard, with global columns) travel
  gather+topk      all_gather of the logits into whole rows, then torch.topk
  ours-sample      topk.shard_sample with temperature, top_k, top_p (a top-k list: candidates only)
  gather+torch     all_gather, then the torch sampling composite (bench/peers/torch_sample.py)
  gather+fi        all_gather, then FlashInfer's top_k_top_p_sampling_from_logits (package or shim; skipped
                   with the reason when neither runs)
Time per step: CUDA events around each step on torch's current stream (NCCL's own stream is waited for
there), median over --steps after --warmup, all methods in the same run. Bytes: what one rank receives from
its all_gather per step (its own block included): ranks x (batch x k x (8 + element) + 16) for ours, ranks x
batch x vocab/ranks x element for the gathers. Every timed result is checked after its timing: ours against
torch.topk's values on the gathered rows and topk.sample on them (bit for bit).

    torchrun --nproc-per-node 2 bench/peers/shard_bench.py                  # GPU host, NCCL
    torchrun --nproc-per-node 2 --redirects 1 --tee 1 bench/peers/shard_bench.py   # here: gloo, tiny sizes

Rank 0 prints the summary table first, the issue's goal line (B 256, V 151936: ours >= 2x faster than
gather+topk with <= 2% of its bytes), then a model for 8 ranks built from costs measured in this run.
"""
import argparse
import os
import statistics
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_sample import composite  # noqa: E402

import topk  # noqa: E402
from topk._shard_tensors import all_gather  # noqa: E402

K, TEMPERATURE, TOP_P = 50, 0.7, 0.9


def parse(cuda):
    a = argparse.ArgumentParser()
    a.add_argument("--batches", default="1,16,64,256" if cuda else "1,4")
    a.add_argument("--vocabs", default="128256,151936,262144" if cuda else "1000,4096")
    a.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"))
    a.add_argument("--steps", type=int, default=100 if cuda else 5)
    a.add_argument("--warmup", type=int, default=10 if cuda else 1)
    return a.parse_args()


class Clock:
    """Median time of a step: CUDA events on the current stream, or the host's clock on CPU."""

    def __init__(self, cuda):
        self.cuda = cuda

    def median_us(self, step, steps, warmup):
        for i in range(warmup):
            step(i)
        self.sync()
        dist.barrier()
        times = []
        for i in range(steps):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                step(i)
                end.record()
                times.append((start, end))
            else:
                import time
                t0 = time.perf_counter()
                step(i)
                times.append(time.perf_counter() - t0)
        self.sync()
        return statistics.median(s.elapsed_time(e) * 1e3 for s, e in times) if self.cuda else \
            statistics.median(t * 1e6 for t in times)

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()


def gathered_rows(shard, world):
    """The whole rows from every rank's even shard: all_gather, then the blocks side by side."""
    received = shard.new_empty(world, shard.numel())
    all_gather(received, shard.reshape(-1), None)
    return received.view(world, *shard.shape).permute(1, 0, 2).reshape(shard.shape[0], -1)


def flashinfer_sampler():
    """(sampler, what) or (None, why not): FlashInfer's package, else its kernels through the shim."""
    if not torch.cuda.is_available():
        return None, "no CUDA device"
    try:
        import flashinfer.sampling as fs
        return fs, "flashinfer package"
    except Exception as error:  # ImportError, or a package built for another torch/CUDA
        import flashinfer_shim as fs
        ok, what = fs.available()
        return (fs, f"flashinfer shim: {what}") if ok else (None, f"no package ({error}), no shim ({what})")


def measure(batch, vocab, dtype, o, clock, world, rank, device, fi):
    """{method: (median us, bytes received per step)} for one shape, every result checked."""
    n = vocab // world
    first = rank * n
    if rank == world - 1:
        n = vocab - first
    generator = torch.Generator().manual_seed(batch * vocab)
    whole = (torch.randn(batch, vocab, generator=generator) * 2).to(device=device, dtype=dtype)
    shard = whole[:, first:first + n].contiguous()
    widest = -(-vocab // world)
    elem = shard.element_size()
    ours_bytes = world * (-(-(batch * K * (8 + elem) + 16) // 8) * 8)
    gather_bytes = world * batch * widest * elem
    if vocab % world:
        return {}  # the gather peers take even shards
    sample = dict(temperature=TEMPERATURE, top_k=K, top_p=TOP_P)
    fi_sample = (lambda rows: fi.top_k_top_p_sampling_from_logits(rows / TEMPERATURE, K, TOP_P,
                                                                  filter_apply_order="joint")) if fi else None
    methods = {
        "ours-topk": (lambda i: topk.shard_topk(shard, K, first, vocab, exchange="tensors"), ours_bytes),
        "gather+topk": (lambda i: torch.topk(gathered_rows(shard, world), K), gather_bytes),
        "ours-sample": (lambda i: topk.shard_sample(shard, first, vocab, **sample, seed=1, offset=i, exchange="tensors"),
                        ours_bytes),
        "gather+torch": (lambda i: composite(torch, gathered_rows(shard, world).float(), TEMPERATURE, K, TOP_P, 0.0),
                         gather_bytes),
    }
    if fi_sample:
        methods["gather+fi"] = (lambda i: fi_sample(gathered_rows(shard, world)), gather_bytes)
    results = {name: (clock.median_us(step, o.steps, o.warmup), bytes_) for name, (step, bytes_) in methods.items()}
    best = topk.shard_topk(shard, K, first, vocab, exchange="tensors")
    assert torch.equal(best.values, torch.topk(whole, K).values), f"ours-topk differs at {batch} x {vocab}"
    tokens = topk.shard_sample(shard, first, vocab, **sample, seed=1, offset=0, exchange="tensors")
    assert torch.equal(tokens, topk.sample(whole, **sample, seed=1, offset=0)), f"ours-sample differs at {batch} x {vocab}"
    # Parts for the 8-rank model, each alone: the local selection of a shard and the merge of the candidates,
    # at this world size and at 8 ranks, and torch.topk of the whole rows.
    for ranks in (world, 8):
        part, merge = whole[:, :vocab // ranks].contiguous(), whole[:, :ranks * K].contiguous()
        results[f"model:local-{ranks}"] = (clock.median_us(lambda i: topk.topk(part, K), o.steps, o.warmup), 0)
        results[f"model:merge-{ranks}"] = (clock.median_us(lambda i: topk.topk(merge, K), o.steps, o.warmup), 0)
    results["model:topk-V"] = (clock.median_us(lambda i: torch.topk(whole, K), o.steps, o.warmup), 0)
    return results


def model_8(rows, world):
    """Lines estimating 8 ranks from this run. A ring all_gather of T bytes in all over R ranks takes about
    (R - 1) (latency + T / R / bandwidth); latency and bandwidth are fitted on this run's two gathers (ours
    and the logits', each the step minus its local work measured alone), local work and merges at 8 ranks
    are measured alone."""
    lines = []
    for (batch, vocab), r in rows.items():
        if "ours-topk" not in r or world < 2:
            continue
        t = {name: us for name, (us, _) in r.items()}
        ours_bytes, gather_bytes = r["ours-topk"][1], r["gather+topk"][1]  # T at this world size
        ours_comm = max(t["ours-topk"] - t[f"model:local-{world}"] - t[f"model:merge-{world}"], 0.0) / (world - 1)
        gather_comm = max(t["gather+topk"] - t["model:topk-V"], 0.0) / (world - 1)
        per_byte = max((gather_comm - ours_comm) / ((gather_bytes - ours_bytes) / world), 0.0)
        latency = max(ours_comm - per_byte * ours_bytes / world, 0.0)
        ours8 = t["model:local-8"] + 7 * (latency + per_byte * ours_bytes / world) + t["model:merge-8"]
        gather8 = 7 * (latency + per_byte * gather_bytes / 8) + t["model:topk-V"]
        lines.append(f"  B {batch:4d} V {vocab:6d}: ours ~{ours8:8.1f} us, gather+topk ~{gather8:8.1f} us, "
                     f"x{gather8 / ours8:5.2f}; MB received a rank {ours_bytes * 8 / world / 1e6:.3f} vs "
                     f"{gather_bytes / 1e6:.2f} (fit: {latency:.1f} us + {per_byte * 1e3:.3f} us/KB a hop)")
    return lines


def main():
    cuda = torch.cuda.is_available()
    o = parse(cuda)
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[o.dtype]
    if not cuda and dtype == torch.float16:
        dtype = torch.float32  # torch's CPU topk has no fp16 kernel
    fi, fi_what = flashinfer_sampler()
    clock = Clock(cuda)
    rows = {}
    for vocab in map(int, o.vocabs.split(",")):
        for batch in map(int, o.batches.split(",")):
            rows[(batch, vocab)] = measure(batch, vocab, dtype, o, clock, world, rank, device, fi)
    if rank:
        dist.destroy_process_group()
        return
    where = f"{world} x {torch.cuda.get_device_name(device)}, NCCL" if cuda else f"{world} CPU ranks, gloo (smoke test)"
    print(f"shard_bench: {where}; {o.dtype}, k {K}, sampling T {TEMPERATURE} top_k {K} top_p {TOP_P}; median of "
          f"{o.steps} steps after {o.warmup}; FlashInfer: {fi_what if fi else 'skipped: ' + fi_what}")
    print(f"{'B':>4} {'V':>6} {'method':<13} {'us/step':>9} {'MB/step':>9} {'x vs gather':>11} {'bytes %':>8}")
    for (batch, vocab), r in rows.items():
        for name, (us, moved) in r.items():
            if name.startswith("model:"):
                continue
            peer = r["gather+topk" if "topk" in name else "gather+torch"]
            print(f"{batch:4d} {vocab:6d} {name:<13} {us:9.1f} {moved / 1e6:9.3f} {peer[0] / us:11.2f} "
                  f"{100 * moved / peer[1]:7.2f}%")
    goal = rows.get((256, 151936), {})
    if "ours-topk" in goal:
        speedup = goal["gather+topk"][0] / goal["ours-topk"][0]
        share = goal["ours-topk"][1] / goal["gather+topk"][1]
        print(f"goal (B 256, V 151936): x{speedup:.2f} faster than gather+topk (>= 2: "
              f"{'MET' if speedup >= 2 else 'NOT MET'}), {100 * share:.2f}% of its bytes (<= 2%: "
              f"{'MET' if share <= 0.02 else 'NOT MET'})")
    print("model for 8 ranks (gathers: latency + bytes / bandwidth fitted on this run's two; local work and "
          "merge measured alone):")
    print("\n".join(model_8(rows, world)))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
