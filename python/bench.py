#!/usr/bin/env python3
"""libtopk through the Python binding against torch.topk (and FlashInfer's top_k on CUDA) in one run, at
the decode shapes, every result checked; then the binding's own overhead per call, and where it goes.

Selection: B in {1, 4, 32} x V in {32000, 50304, 128256, 151936} x k in {50, 200}, bf16 (--dtype).
Each call allocates its outputs, as torch.topk does; libtopk's values must equal torch's bit for bit, and
its indices must point at them (torch may break ties otherwise).
  cpu:  libtopk's cpu backend and torch.topk on --threads threads (default: all); median wall time per call.
  cuda: libtopk's offload backend on the tensors' memory (each call is enqueued on torch's current stream)
        against torch.topk and FlashInfer's top_k(sorted=True): "sync" is the median of (call +
        torch.cuda.synchronize()) wall times, "events" the mean of back-to-back calls between CUDA events.
        FlashInfer: `import flashinfer` when that works, else bench/peers/flashinfer_shim.py (its kernels
        through ctypes) when its available() says so, else the column is skipped; the header says which ran.
Overhead: the time of the Python call minus that of the same C call made directly through ctypes with the
same pointers (no checks, no stream lookup; the context already has torch's stream, so it is enqueued too),
on the smallest call (1 x 8 fp32, k = 1: the reference backend on the CPU, ~1 us of C work; the offload
backend on CUDA), same process. Each variant is timed in rounds of many back-to-back calls, the rounds of
all variants interleaved; the overhead is the median over rounds of the difference within a round. Clock:
CPU time of this thread on the CPU (other processes do not count), wall time on CUDA. On CUDA with the C
path, its parts follow: torch's raw stream lookup alone, and host work added after a direct call (which
costs its own time). The breakdown times each part of the binding's call alone: argument checks, output
allocation, and on CUDA the lookup of torch's current stream.
The binding's path: topk._fast (C) when it is built, and then the same measurement once more with the Python
path alone (TOPK_PY_FAST=0, in a second process), for comparison; "direct" is the same ctypes call in both.
Usage: python3 python/bench.py [--device cpu|cuda] [--threads N] [--dtype bf16|fp16|fp32] [--min-time S]
       [--csv FILE] [--quick] [--only selection|overhead]  (TOPK_LIBRARY and PYTHONPATH=python when not installed)
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

SHAPES = [(b, v, k) for b in (1, 4, 32) for v in (32000, 50304, 128256, 151936) for k in (50, 200)]
QUICK = [(1, 50304, 50), (32, 151936, 200)]
GOAL_US = 3.0  # issue 8: the binding's own overhead per call


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


def flashinfer_peer():
    """(label, top_k(x, k) -> (values, indices) sorted best first), or (None, None) with the reason printed."""
    try:
        import flashinfer
        label = f"flashinfer {getattr(flashinfer, '__version__', '?')} (the package)"
        return label, lambda x, k: flashinfer.top_k(x, k, sorted=True)
    except Exception as error:  # absent, or built for another torch/CUDA
        why = f"import flashinfer: {type(error).__name__}: {error}"
    peers = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers")
    if os.path.exists(os.path.join(peers, "flashinfer_shim.py")):
        sys.path.insert(0, os.path.normpath(peers))
        try:
            import flashinfer_shim
            ok, what = flashinfer_shim.available()
            if ok:
                return f"{what} (bench/peers/flashinfer_shim.py)", lambda x, k: flashinfer_shim.top_k(x, k, sorted=True)
            why += f"; flashinfer_shim: {what}"
        except Exception as error:
            why += f"; flashinfer_shim: {type(error).__name__}: {error}"
    else:
        why += "; no bench/peers/flashinfer_shim.py"
    print(f"bench: FlashInfer column skipped ({why})", flush=True)
    return None, None


def check(torch, x, ours, theirs, what):
    values = theirs[0] if isinstance(theirs, tuple) else theirs.values
    if not torch.equal(ours.values, values) or not torch.equal(x.gather(-1, ours.indices), ours.values):
        sys.exit(f"bench: {what}: libtopk's result differs from torch.topk's")


def peer_agrees(torch, x, ours, theirs):
    values, indices = theirs[0], theirs[1]
    return torch.equal(ours.values, values) and torch.equal(x.gather(-1, indices.long()), values)


def selection(args, torch, topk):
    device, backend = args.device, ("offload" if args.device == "cuda" else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    fi_label, fi_top_k = flashinfer_peer() if device == "cuda" else (None, None)
    if fi_label:
        print(f"flashinfer column: {fi_label}")
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
               "flashinfer_us": None, "ours_ev": None, "torch_ev": None, "fi_ev": None,
               "flashinfer_impl": (fi_label or "").replace(",", ";")}
        if fi_top_k is not None:
            if peer_agrees(torch, x, ours, fi_top_k(x, k)):
                row["flashinfer_us"] = median_wall_us(lambda: fi_top_k(x, k), sync, args.min_time)
                row["fi_ev"] = events_us(torch, lambda: fi_top_k(x, k))
            else:
                print(f"bench: {b}x{v} k{k}: FlashInfer's top_k differs from ours; its cells are left empty")
        if device == "cuda":
            row["ours_ev"] = events_us(torch, lambda: topk.topk(x, k, backend=backend))
            row["torch_ev"] = events_us(torch, lambda: torch.topk(x, k))
        cell = lambda value, width: f"{value:{width}.1f}" if value is not None else f"{'-':>{width}}"
        print(f"{b:>3} {v:>7} {k:>4} {args.dtype:>5} {cell(row['ours_us'], 9)} {cell(row['torch_us'], 9)} "
              f"{cell(row['flashinfer_us'], 13)} {cell(row['ours_ev'], 8)} {cell(row['torch_ev'], 8)} "
              f"{cell(row['fi_ev'], 8)} {row['torch_us'] / row['ours_us']:>10.2f}", flush=True)
        rows.append(row)
    return rows


def timed_rounds(variants, clock, sync, calls, rounds, paired=None):
    """{name: median over rounds of the mean time of one call, in us}; variants: {name: (call, calls or None)}.
    The rounds of all variants are interleaved, so a change of load on the machine hits all of them alike.
    paired: {label: (name, baseline name)}: also the median over rounds of (name - baseline) of the same
    round, under that label (a drift between rounds cancels in each difference)."""
    samples = {name: [] for name in variants}
    for name, (call, _) in variants.items():  # warm up
        for _ in range(20):
            call()
    sync()
    for _ in range(rounds):
        for name, (call, n) in variants.items():
            n = n or calls
            sync()
            t0 = clock()
            for _ in range(n):
                call()
            samples[name].append((clock() - t0) / n * 1e6)
    times = {name: statistics.median(values) for name, values in samples.items()}
    for label, (name, baseline) in (paired or {}).items():
        times[label] = statistics.median(a - b for a, b in zip(samples[name], samples[baseline]))
    return times


def c_path_parts(torch, topk, x, values, indices, dev, select, ctx, flags, pointers, count, rounds):
    """Where the C path's overhead on CUDA tensors goes: torch's raw stream lookup alone, host work after a
    direct call, and the C path on CPU tensors of this host's torch (its attribute reads without CUDA). Wall
    time, rounds interleaved as in overhead()."""
    from topk import _cuda
    from topk._backends import context
    px, pv, pi = pointers
    raw_stream = _cuda.raw_stream_function(torch)
    xc, vc, ic = x.cpu(), values.cpu(), indices.cpu()
    ref, cpx, cpv, cpi = context("reference", None), xc.data_ptr(), vc.data_ptr(), ic.data_ptr()

    def spin_1us():
        end = time.perf_counter() + 1e-6
        while time.perf_counter() < end:
            pass

    variants = {
        "direct ctypes topk_select": (lambda: select(ctx, px, 0, 1, 8, 8, 1, flags, pv, pi), None),
        "topk.topk(x, 1, out=...)": (lambda: topk.topk(x, 1, backend="offload", out=(values, indices)), None),
        "direct + 1 us of busy CPU":
            (lambda: (select(ctx, px, 0, 1, 8, 8, 1, flags, pv, pi), spin_1us()), None),
        "torch's raw stream alone": (lambda: raw_stream(dev), None),
        "CPU tensors: direct ctypes, reference backend":
            (lambda: select(ref, cpx, 0, 1, 8, 8, 1, 0, cpv, cpi), None),
        "CPU tensors: topk.topk(x, 1, out=...), reference":
            (lambda: topk.topk(xc, 1, backend="reference", out=(vc, ic)), None),
    }
    times = timed_rounds(variants, time.perf_counter, torch.cuda.synchronize, count, rounds)
    print(f"C path on CUDA tensors, part by part (wall time, median of {rounds} rounds of {count} calls):")
    for name, us in times.items():
        print(f"  {name:56} {us:8.2f} us")
    side = torch.cuda.Stream(dev)  # torch's current stream a created one, not the legacy default stream
    with torch.cuda.stream(side):
        topk.topk(x, 1, backend="offload", out=(values, indices))  # the context's stream is now this one
        names = ("direct ctypes topk_select", "topk.topk(x, 1, out=...)", "torch's raw stream alone")
        side_variants = {name: variants[name] for name in names}
        times = timed_rounds(side_variants, time.perf_counter, torch.cuda.synchronize, count, rounds)
    print(f"the same with torch's current stream a created one (handle {side.cuda_stream:#x}):")
    for name, us in times.items():
        print(f"  {name:56} {us:8.2f} us")


def overhead(args, torch, topk):
    from topk import _arrays, _cuda
    from topk._backends import context
    from topk._library import C, TOPK_DEVICE_POINTERS
    cuda = args.device == "cuda"
    backend = "offload" if cuda else "reference"
    x = torch.randn(1, 8, device=args.device)
    values, indices = torch.empty(1, 1, device=args.device), torch.empty(1, 1, dtype=torch.int64, device=args.device)
    dev = x.get_device() if cuda else None
    ctx, select = context(backend, dev), C["topk_select"]
    topk.topk(x, 1, backend=backend)  # on CUDA: torch's current stream set on the context, for the direct call too
    flags = TOPK_DEVICE_POINTERS if cuda else 0
    px, pv, pi = x.data_ptr(), values.data_ptr(), indices.data_ptr()
    kind = _arrays.kind_of(x)[0]
    f32, i64 = torch.float32, torch.int64

    def checks():  # what topk() does before it allocates (kind, layout, dtype, device, k, context)
        kind.rows2d(x)
        context(backend, dev)

    calls = {
        "direct ctypes topk_select": (lambda: select(ctx, px, 0, 1, 8, 8, 1, flags, pv, pi), None),
        "topk.topk(x, 1, out=...)": (lambda: topk.topk(x, 1, backend=backend, out=(values, indices)), None),
        "topk.topk(x, 1)": (lambda: topk.topk(x, 1, backend=backend), None),
        "torch.topk(x, 1)": (lambda: torch.topk(x, 1), None),
    }
    if not cuda:
        a, va, ia = x.numpy(), values.numpy(), indices.numpy()
        calls["topk.topk(numpy, 1, out=...)"] = (lambda: topk.topk(a, 1, backend=backend, out=(va, ia)), None)
        calls["topk.topk(numpy, 1)"] = (lambda: topk.topk(a, 1, backend=backend), None)
    parts = {
        "argument checks (rows2d, context)": (checks, None),
        "out= checks (out_pointers)": (lambda: kind.out_pointers(values, indices, (1, 1), f32, dev), None),
        "output allocation (empty_pair)": (lambda: kind.empty_pair((1, 1), (1, 1), f32, dev), None),
        "  2 x torch.empty(device=)": (lambda: (torch.empty((1, 1), dtype=f32, device=x.device),
                                                torch.empty((1, 1), dtype=i64, device=x.device)), None),
    }
    if cuda:
        raw_stream = _cuda.raw_stream_function(torch)
        parts["torch's current stream (raw_stream)"] = (lambda: raw_stream(dev), None)
        parts["the same + set_stream check (streams.get)"] = (lambda: _cuda.streams.get(ctx) != raw_stream(dev), None)
    if cuda:
        clock, sync, what = time.perf_counter, torch.cuda.synchronize, "wall time"
        count, rounds = 400, 25
    else:
        clock, sync, what = time.thread_time, (lambda: None), "CPU time of this thread"
        count, rounds = 5000, 15
    if args.quick:
        rounds = max(5, rounds // 3)
    from topk import select as select_module
    direct_name = "direct ctypes topk_select"
    times = timed_rounds(calls, clock, sync, count, rounds,
                         paired={"with out=": ("topk.topk(x, 1, out=...)", direct_name),
                                 "allocating": ("topk.topk(x, 1)", direct_name)})
    # the breakdown is the Python path's parts: printed by the run without topk._fast
    part_times = timed_rounds(parts, clock, sync, count * 5, rounds) if select_module._fast_topk is None else None
    how = "enqueued on torch's current stream" if cuda else "none (host data)"
    path = ("C (topk._fast)" if select_module._fast_topk is not None else
            "Python (ctypes; TOPK_PY_FAST=0 or no topk._fast)")
    print(f"\nbinding overhead, {path} path, 1 x 8 fp32, k = 1, {backend} backend, {args.device} tensors ({what}, "
          f"median of {rounds} rounds of {count} calls); stream: {how}")
    with_out, allocating = times.pop("with out="), times.pop("allocating")
    for name, us in times.items():
        print(f"  {name:56} {us:8.2f} us")
    print(f"  overhead with out= (median of the rounds' differences topk.topk(x, 1, out=...) - direct): "
          f"{with_out:.2f} us (goal < {GOAL_US:g}: {'met' if with_out < GOAL_US else 'MISSED'}); "
          f"allocating the outputs: {allocating:.2f} us")
    if part_times is None:
        if cuda:
            c_path_parts(torch, topk, x, values, indices, dev, select, ctx, flags, (px, pv, pi), count, rounds)
        return times, part_times
    print(f"breakdown, each part alone ({what}, median of {rounds} rounds of {count * 5} calls):")
    for name, us in part_times.items():
        print(f"  {name:56} {us:8.2f} us")
    known = part_times["argument checks (rows2d, context)"] + part_times["out= checks (out_pointers)"]
    if cuda:
        known += part_times["the same + set_stream check (streams.get)"]
    print(f"  rest of the out= overhead (call, tuple, flags, Python frames): {with_out - known:.2f} us")
    return times, part_times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds of timed calls per measurement")
    parser.add_argument("--csv", help="also write the selection table here")
    parser.add_argument("--quick", action="store_true", help="two shapes only, fewer overhead rounds")
    parser.add_argument("--only", choices=["selection", "overhead"], help="run one of the two parts")
    args = parser.parse_args()
    os.environ["TOPK_THREADS"] = str(args.threads)  # read when the cpu context is made
    import torch
    import topk
    torch.set_num_threads(args.threads)
    print(f"libtopk {topk.library_version} ({topk._library.lib._name}), torch {torch.__version__}, "
          f"{args.device}, {args.threads} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
          + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))
    if args.only != "overhead":
        rows = selection(args, torch, topk)
        if args.csv:
            with open(args.csv, "w") as out:
                out.write(",".join(rows[0]) + "\n")
                for row in rows:
                    out.write(",".join("" if value is None else str(value) for value in row.values()) + "\n")
    if args.only != "selection":
        overhead(args, torch, topk)
        if topk.select._fast_topk is not None:  # the Python path for comparison, in a process without topk._fast
            sys.stdout.flush()
            command = [sys.executable, os.path.abspath(__file__), "--only", "overhead", "--device", args.device,
                       "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
            subprocess.run(command, env=dict(os.environ, TOPK_PY_FAST="0"), check=True)


if __name__ == "__main__":
    main()
