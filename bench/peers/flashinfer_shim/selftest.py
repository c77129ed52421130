#!/usr/bin/env python3
"""Checks bench/peers/flashinfer_shim.py (FlashInfer's kernels through libflashinfer_shim.so) on a CUDA host.

    python3 bench/peers/flashinfer_shim/selftest.py [--timeout 300]     (TOPK_FLASHINFER_SHIM=PATH to pick the .so)

top_k(x, k, sorted=True): for each shape and dtype, the values are the k largest of each row as torch.topk
finds them (the same multiset, bit for bit), sorted descending, and the indices are distinct, in range and
point at those values; also the deterministic path, heavy ties, a non-default stream and a CUDA-graph replay.
top_k_top_p_sampling_from_logits(..., filter_apply_order="joint"): every token lies in its row's top-k (its
probability at least the k-th largest), top_k=1 gives the argmax, the RNG offset advances as FlashInfer's
does, and on a row with known probabilities the tokens stay in the top-k/top-p nucleus with frequencies
near the renormalized ones.
Prints PASS/FAIL per check and "selftest: PASS" or "selftest: FAIL"; exit status 0 only when everything
passed. The checks run in a child process with a time limit, so a hung kernel is a FAIL, not a hang.
"""
import argparse
import os
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def parent(timeout):
    try:
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], timeout=timeout)
    except subprocess.TimeoutExpired:  # run() has killed the child
        print(f"FAIL: the checks did not finish within {timeout} s (a hung kernel?)", flush=True)
        print("selftest: FAIL", flush=True)
        return 1
    if child.returncode != 0:
        if child.returncode < 0:
            print(f"FAIL: the checks died of signal {-child.returncode}", flush=True)
            print("selftest: FAIL", flush=True)
        return 1
    return 0


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def run(self, name, fn, *args):
        try:
            why = fn(*args)
        except Exception as e:  # a failing launch raises; so does an unexpected path
            why = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"
        if why:
            self.failed += 1
            print(f"FAIL {name}: {why}", flush=True)
        else:
            self.passed += 1
            print(f"PASS {name}", flush=True)


def check_top_k(torch, fs, x, k, deterministic=False):
    values, indices = fs.top_k(x, k, sorted=True, deterministic=deterministic)
    torch.cuda.synchronize()
    batch, d = x.shape
    if values.shape != (batch, k) or indices.shape != (batch, k):
        return f"shapes {tuple(values.shape)}, {tuple(indices.shape)}, expected ({batch}, {k})"
    if values.dtype != x.dtype or indices.dtype != torch.int64:
        return f"dtypes {values.dtype}, {indices.dtype}, expected {x.dtype}, torch.int64"
    want = torch.topk(x.float(), k, dim=-1, largest=True, sorted=True).values
    got = values.float()
    if not torch.equal(torch.sort(got, dim=-1, descending=True).values, want):
        bad = (torch.sort(got, dim=-1, descending=True).values != want).any(dim=-1).nonzero().flatten()
        return f"values are not the k largest in {bad.numel()} rows (first: row {bad[0].item()})"
    if k > 1 and (got[:, 1:] > got[:, :-1]).any():
        return "values are not sorted descending"
    if (indices < 0).any() or (indices >= d).any():
        return "indices out of range"
    if k > 1 and (torch.sort(indices, dim=-1).values.diff(dim=-1) == 0).any():
        return "repeated indices in a row"
    if not torch.equal(x.gather(1, indices), values):
        return "x[indices] != values"
    return None


def check_top_k_graph(torch, fs, x, k):
    fs.top_k(x, k)  # warm up outside capture, as torch requires of lazily initialized state
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # captures on a side stream of its own
        values, indices = fs.top_k(x, k)
    want = torch.topk(x.float(), k, dim=-1).values
    for _ in range(3):
        values.zero_()
        graph.replay()
        torch.cuda.synchronize()
        if not torch.equal(torch.sort(values.float(), dim=-1, descending=True).values, want):
            return "a replay's values are not the k largest"
        if not torch.equal(x.gather(1, indices), values):
            return "a replay's x[indices] != values"
    return None


def check_top_k_stream(torch, fs, x, k):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        values, _ = fs.top_k(x, k)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    if not torch.equal(values.float(), torch.topk(x.float(), k, dim=-1).values):
        return "values on a side stream are not the k largest"
    return None


def check_sampling_in_top_k(torch, fs, logits, temperature, top_k, top_p):
    scaled = logits / temperature
    samples = fs.top_k_top_p_sampling_from_logits(scaled, top_k, top_p, filter_apply_order="joint")
    torch.cuda.synchronize()
    batch, vocab = logits.shape
    if samples.shape != (batch,) or samples.dtype != torch.int32:
        return f"samples {tuple(samples.shape)} {samples.dtype}, expected ({batch},) torch.int32"
    if (samples < 0).any() or (samples >= vocab).any():
        return "a token out of range"
    probs = torch.softmax(scaled, dim=-1).float()  # what the kernel samples from
    kth = torch.topk(probs, top_k, dim=-1).values[:, -1]
    chosen = probs.gather(1, samples.long().unsqueeze(1)).squeeze(1)
    outside = (chosen < kth).nonzero().flatten()
    if outside.numel():
        r = outside[0].item()
        return (f"{outside.numel()} of {batch} tokens outside the top-{top_k} (row {r}: token "
                f"{samples[r].item()} p={chosen[r].item():.3g} < k-th {kth[r].item():.3g})")
    return None


def check_greedy(torch, fs, logits):
    samples = fs.top_k_top_p_sampling_from_logits(logits, 1, 1.0, filter_apply_order="joint")
    probs = torch.softmax(logits, dim=-1).float()
    chosen = probs.gather(1, samples.long().unsqueeze(1)).squeeze(1)
    if not torch.equal(chosen, probs.max(dim=-1).values):
        return "top_k=1 did not give the most probable token"
    return None


def check_rng_offset(torch, fs, logits):
    gen = torch.cuda.default_generators[logits.device.index]
    before = [int(v) for v in gen.get_state().view(torch.int64)]
    a = fs.top_k_top_p_sampling_from_logits(logits, 1000, 1.0, filter_apply_order="joint")
    after = [int(v) for v in gen.get_state().view(torch.int64)]
    step = (logits.shape[0] * 32 + 3) // 4 * 4
    if after != [before[0], before[1] + step]:
        return f"generator state {before} -> {after}, expected the offset to advance by {step}"
    b = fs.top_k_top_p_sampling_from_logits(logits, 1000, 1.0, filter_apply_order="joint")
    if torch.equal(a, b):
        return "two calls drew the same tokens for every row (the offset is not used?)"
    return None


def check_frequencies(torch, fs, device):
    # Row: p = 0.4, 0.3, 0.2, 0.1 on tokens 7, 70, 700, 7000, about nothing elsewhere. top_k=3, top_p=0.5:
    # the nucleus is {7, 70} (0.4 < 0.5 <= 0.7) with 4/7 and 3/7 of the draws.
    vocab, rows = 32000, 8192
    logits = torch.full((vocab,), -40.0, device=device)
    tokens = torch.tensor([7, 70, 700, 7000], device=device)
    logits[tokens] = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1], device=device))
    samples = fs.top_k_top_p_sampling_from_logits(logits.expand(rows, vocab).contiguous(), 3, 0.5,
                                                  filter_apply_order="joint").long().cpu()
    counts = {t: int((samples == t).sum()) for t in set(samples.tolist())}
    if set(counts) - {7, 70}:
        return f"tokens outside the nucleus {{7, 70}}: {counts}"
    share = counts.get(7, 0) / rows
    if abs(share - 4 / 7) > 0.04:  # ~7 standard deviations at 8192 draws
        return f"token 7 drawn {share:.3f} of the time, expected {4 / 7:.3f}"
    return None


def child():
    sys.path.insert(0, os.path.dirname(HERE))  # bench/peers, for flashinfer_shim.py
    try:
        import torch
        import flashinfer_shim as fs
    except Exception as e:
        print(f"FAIL: cannot import torch or flashinfer_shim: {type(e).__name__}: {e}", flush=True)
        print("selftest: FAIL", flush=True)
        return 1
    ok, what = fs.available()
    if not ok:
        print(f"FAIL: the shim cannot run here: {what}", flush=True)
        print("selftest: FAIL", flush=True)
        return 1
    print(f"selftest: {what}; {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    device = torch.device("cuda", torch.cuda.current_device())
    gen = torch.Generator(device=device)
    gen.manual_seed(1234)
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

    def randn(b, v, dtype, scale=2.0):
        return (torch.randn(b, v, device=device, generator=gen) * scale).to(dtypes[dtype])

    c = Checks()
    for b, v, k, dt in [(1, 50304, 50, "bf16"), (4, 50304, 128, "fp16"), (32, 32000, 40, "fp32"),
                        (1, 128256, 1, "fp32"), (8, 128256, 200, "bf16"), (64, 151936, 1024, "fp32"),
                        (256, 151936, 50, "bf16"), (4096, 4096, 64, "fp32"), (1, 1 << 22, 2048, "fp32"),
                        (2, 1 << 20, 500, "fp16"), (3, 1000, 1000, "fp32")]:
        c.run(f"top_k {b}x{v} k={k} {dt}", check_top_k, torch, fs, randn(b, v, dt), k)
    for b, v, k, dt in [(4, 128256, 50, "bf16"), (1, 1 << 21, 256, "fp32")]:
        c.run(f"top_k deterministic {b}x{v} k={k} {dt}", check_top_k, torch, fs, randn(b, v, dt), k, True)
    ties = torch.randint(0, 4, (16, 65536), device=device, generator=gen).float()
    c.run("top_k heavy ties 16x65536 k=100 fp32 (values 0..3)", check_top_k, torch, fs, ties, 100)
    c.run("top_k on a side stream 8x50304 k=50 fp32", check_top_k_stream, torch, fs, randn(8, 50304, "fp32"), 50)
    c.run("top_k CUDA graph replays 4x128256 k=50 bf16", check_top_k_graph, torch, fs, randn(4, 128256, "bf16"), 50)
    c.run("top_k CUDA graph replays 1x1048576 k=64 fp32", check_top_k_graph, torch, fs,
          randn(1, 1 << 20, "fp32"), 64)

    torch.manual_seed(5678)  # the sampler draws from torch's default CUDA generator, as FlashInfer's does
    for b in (1, 32, 256):
        for dt in ("fp32", "bf16", "fp16"):
            c.run(f"sampling B={b} V=128256 {dt} T=0.7 top_k=50 top_p=0.9: tokens in the top-k",
                  check_sampling_in_top_k, torch, fs, randn(b, 128256, dt), 0.7, 50, 0.9)
    c.run("sampling B=64 V=32000 fp32 top_k=5 top_p=1.0: tokens in the top-k", check_sampling_in_top_k, torch, fs,
          randn(64, 32000, "fp32", 0.5), 1.0, 5, 1.0)
    c.run("sampling top_k=1 gives the argmax (B=32 V=151936 fp32)", check_greedy, torch, fs,
          randn(32, 151936, "fp32"))
    c.run("sampling advances the generator's offset as FlashInfer does", check_rng_offset, torch, fs,
          randn(16, 50304, "fp32", 0.1))
    c.run("sampling frequencies on a known row (top_k=3, top_p=0.5, 8192 draws)", check_frequencies, torch, fs,
          device)
    print(f"selftest: {'PASS' if c.failed == 0 else 'FAIL'} ({c.passed} passed, {c.failed} failed)", flush=True)
    return 0 if c.failed == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=300, help="seconds for all checks (default 300)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        try:
            return child()
        except BaseException as e:  # anything unexpected is a FAIL with a message, never a silent exit
            print(f"FAIL: {type(e).__name__}: {e}\n{traceback.format_exc()}", flush=True)
            print("selftest: FAIL", flush=True)
            return 1
    return parent(a.timeout)


if __name__ == "__main__":
    sys.exit(main())
