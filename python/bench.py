#!/usr/bin/env python3
"""libtopk through the Python binding against torch.topk (and FlashInfer's top_k on CUDA) in one run, at
the decode shapes, every result checked; then the binding's own overhead per call.

Decode shapes: B in {1, 4, 32} x V in {32000, 50304, 128256, 151936} x k in {50, 200}, bf16 (--dtype).
Each call allocates its outputs, as torch.topk does; libtopk's values must equal torch's bit for bit, and
its indices must point at them (torch may break ties otherwise).
  cpu:  libtopk's cpu backend and torch.topk on --threads threads (default: all); median wall time per call.
  cuda: libtopk's offload backend on the tensors' memory (each call synchronises torch's stream and returns
        when done) against torch.topk and flashinfer.top_k(sorted=True): "sync" is the median of (call +
        torch.cuda.synchronize()) wall times, "events" the mean of back-to-back calls between CUDA events.
Overhead: the smallest call (1 x 8 fp32, k = 1, the reference backend: ~0 us of C work) through the
binding, with out= and allocating, against the same C function called directly through ctypes; CPU time of
this thread (time.thread_time), best of several rounds, so other processes on the machine do not count.
On CUDA the same with a CUDA tensor and the offload backend, in wall time.
Usage: python3 python/bench.py [--device cpu|cuda] [--threads N] [--dtype bf16|fp16|fp32] [--min-time S]
       [--csv FILE] [--quick]  (TOPK_LIBRARY and PYTHONPATH=python when not installed)
"""
import argparse
import os
import statistics
import sys
import time

SHAPES = [(b, v, k) for b in (1, 4, 32) for v in (32000, 50304, 128256, 151936) for k in (50, 200)]
QUICK = [(1, 50304, 50), (32, 151936, 200)]


def median_wall_us(call, sync, min_time, fewest=5):
    for _ in range(3):
        call()
    sync()
    times, start = [], time.perf_counter()
    while len(times) < fewest or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def events_us(torch, call, calls=200):
    call()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        call()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / calls


def flashinfer_top_k():
    try:
        import flashinfer
        return flashinfer.top_k
    except Exception as error:  # absent, or built for another torch/CUDA: the column is skipped
        print(f"bench: no FlashInfer top_k ({type(error).__name__}: {error})", file=sys.stderr)
        return None


def check(torch, x, ours, theirs, what):
    values = theirs[0] if isinstance(theirs, tuple) else theirs.values
    if not torch.equal(ours.values, values) or not torch.equal(x.gather(-1, ours.indices), ours.values):
        sys.exit(f"bench: {what}: libtopk's result differs from torch.topk's")


def selection(args, torch, topk):
    device, backend = args.device, ("offload" if args.device == "cuda" else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    fi_top_k = flashinfer_top_k() if device == "cuda" else None
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    print(f"{'B':>3} {'V':>7} {'k':>4} {'dtype':>5} {'ours_us':>9} {'torch_us':>9} {'flashinfer_us':>13} "
          f"{'ours_ev':>8} {'torch_ev':>8} {'fi_ev':>8} {'torch/ours':>10}")
    generator = torch.Generator(device=device).manual_seed(0)
    for b, v, k in (QUICK if args.quick else SHAPES):
        x = torch.randn(b, v, generator=generator, device=device).to(dtype)
        ours = topk.topk(x, k, backend=backend)
        theirs = torch.topk(x, k)
        check(torch, x, ours, theirs, f"{b}x{v} k{k}")
        row = {"B": b, "V": v, "k": k, "dtype": args.dtype,
               "ours_us": median_wall_us(lambda: topk.topk(x, k, backend=backend), sync, args.min_time),
               "torch_us": median_wall_us(lambda: torch.topk(x, k), sync, args.min_time),
               "flashinfer_us": None, "ours_ev": None, "torch_ev": None, "fi_ev": None}
        if fi_top_k is not None:
            check(torch, x, ours, fi_top_k(x, k, sorted=True), f"{b}x{v} k{k} (flashinfer)")
            row["flashinfer_us"] = median_wall_us(lambda: fi_top_k(x, k, sorted=True), sync, args.min_time)
            row["fi_ev"] = events_us(torch, lambda: fi_top_k(x, k, sorted=True))
        if device == "cuda":
            row["ours_ev"] = events_us(torch, lambda: topk.topk(x, k, backend=backend))
            row["torch_ev"] = events_us(torch, lambda: torch.topk(x, k))
        cell = lambda value, width: f"{value:{width}.1f}" if value is not None else f"{'-':>{width}}"
        print(f"{b:>3} {v:>7} {k:>4} {args.dtype:>5} {cell(row['ours_us'], 9)} {cell(row['torch_us'], 9)} "
              f"{cell(row['flashinfer_us'], 13)} {cell(row['ours_ev'], 8)} {cell(row['torch_ev'], 8)} "
              f"{cell(row['fi_ev'], 8)} {row['torch_us'] / row['ours_us']:>10.2f}", flush=True)
        rows.append(row)
    return rows


def best_thread_us(call, rounds=12, calls=20000):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time()
        for _ in range(calls):
            call()
        best = min(best, (time.thread_time() - t0) / calls * 1e6)
    return best


def overhead(args, torch, topk):
    from topk._backends import context
    from topk._library import C, TOPK_DEVICE_POINTERS
    cuda = args.device == "cuda"
    backend = "offload" if cuda else "reference"
    x = torch.randn(1, 8, device=args.device)
    values, indices = torch.empty(1, 1, device=args.device), torch.empty(1, 1, dtype=torch.int64, device=args.device)
    ctx, select = context(backend, 0 if cuda else None), C["topk_select"]
    flags = TOPK_DEVICE_POINTERS if cuda else 0
    pointers = x.data_ptr(), values.data_ptr(), indices.data_ptr()
    calls = {
        "direct ctypes topk_select": lambda: select(ctx, pointers[0], 0, 1, 8, 8, 1, flags, pointers[1], pointers[2]),
        "topk.topk(x, 1, out=...)": lambda: topk.topk(x, 1, backend=backend, out=(values, indices)),
        "topk.topk(x, 1)": lambda: topk.topk(x, 1, backend=backend),
        "torch.topk(x, 1)": lambda: torch.topk(x, 1),
    }
    if not cuda:
        a, va, ia = x.numpy(), values.numpy(), indices.numpy()
        calls["topk.topk(numpy, 1, out=...)"] = lambda: topk.topk(a, 1, backend=backend, out=(va, ia))
        calls["topk.topk(numpy, 1)"] = lambda: topk.topk(a, 1, backend=backend)
    if cuda:
        measure = lambda call: median_wall_us(call, torch.cuda.synchronize, args.min_time * 4)
    else:
        measure = best_thread_us
    times = {name: measure(call) for name, call in calls.items()}
    clock = "wall, median, with torch.cuda.synchronize()" if cuda else "thread CPU time, best round"
    print(f"\nbinding overhead, 1 x 8 fp32, k = 1, {backend} backend, {args.device} ({clock}):")
    for name, us in times.items():
        print(f"  {name:32} {us:7.2f} us")
    direct = times["direct ctypes topk_select"]
    print(f"  overhead with out=: {times['topk.topk(x, 1, out=...)'] - direct:.2f} us; "
          f"allocating the outputs too: {times['topk.topk(x, 1)'] - direct:.2f} us")
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds of timed calls per measurement")
    parser.add_argument("--csv", help="also write the selection table here")
    parser.add_argument("--quick", action="store_true", help="two shapes only")
    args = parser.parse_args()
    os.environ["TOPK_THREADS"] = str(args.threads)  # read when the cpu context is made
    import torch
    import topk
    torch.set_num_threads(args.threads)
    print(f"libtopk {topk.library_version} ({topk._library.lib._name}), torch {torch.__version__}, "
          f"{args.device}, {args.threads} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
          + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))
    rows = selection(args, torch, topk)
    overhead(args, torch, topk)
    if args.csv:
        with open(args.csv, "w") as out:
            out.write(",".join(rows[0]) + "\n")
            for row in rows:
                out.write(",".join("" if value is None else str(value) for value in row.values()) + "\n")


if __name__ == "__main__":
    main()
