"""topk.shard_topk and topk.shard_sample against one device, over a sweep, as a torchrun script: on GPUs
(one per rank) with CUDA tensors over NCCL, else on CPU tensors over gloo with the same exchange
(exchange="tensors"; test_shard_dist.py tests both exchanges on CPU under pytest).

    torchrun --nproc-per-node 2 python/tests/shard_sweep.py                      # GPU host (ci/gpu-shard-check)
    torchrun --nproc-per-node 3 --redirects 1 --tee 1 python/tests/shard_sweep.py  # here (Debian's torchrun)

Every rank builds the same whole rows, takes its columns and compares the sharded results with topk.topk /
topk.sample on the whole rows on its own device, bit for bit: uneven splits, a shard narrower than k, an empty
shard, one rank holding every column, shards out of rank order; k 1 .. 2048; rows of ties across shard
boundaries, NaN, +-inf and +-0.0; both orders; float32, float16, bfloat16; sampling filters with and without
a top-k list, many seeds. Rank 0 prints a summary line first, then up to 20 failing cases; every rank exits
1 when any case failed on any rank. SHARD_SWEEP_QUICK=1 leaves out the 151936-column rows.
"""
import datetime
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import bits, logits  # noqa: E402  (after the path; conftest also finds the package)

import topk  # noqa: E402

BATCH = 6
KS = (1, 2, 50, 257, 1024, 2048)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FILTERS = ({"temperature": 0.0}, {"top_k": 1}, {"top_k": 20}, {"top_k": 50, "temperature": 0.7},
           {"top_k": 4096, "top_p": 0.9}, {"top_k": 50, "top_p": 0.8, "min_p": 0.05},
           {"top_p": 0.9}, {"min_p": 0.2, "temperature": 1.5}, {})


def splits(world, vocab):
    """Each rank's (first column, width) for several ways to tile [0, vocab)."""
    even = [(vocab * r // world, vocab * (r + 1) // world - vocab * r // world) for r in range(world)]
    if world == 1:
        return [even]
    # rank 0 empty, rank 1 three columns (narrower than most k), the rest split the remainder
    rest = [(3 + (vocab - 3) * r // (world - 2), (vocab - 3) * (r + 1) // (world - 2) - (vocab - 3) * r // (world - 2))
            for r in range(world - 2)] if world > 2 else []
    uneven = [(0, 0), (0, 3)] + rest if world > 2 else [(0, 3), (3, vocab - 3)]
    one_holds_all = [(0, 0)] * (world - 1) + [(0, vocab)]
    return [even, uneven, even[::-1], one_holds_all]


def whole_rows(vocab, dtype, seed, device):
    """The same rows on every rank: normal, with ties/NaN/inf/+-0 spread in (conftest.logits), one row of a
    single value (ties across every boundary), one of +0.0 and -0.0 alternating, one all NaN, one all -inf but
    for one finite value near the end."""
    a = torch.from_numpy(logits(BATCH, vocab, seed=seed, special=True))
    a[1] = 0.5
    a[2, 0::2], a[2, 1::2] = 0.0, -0.0
    a[3] = float("nan")
    a[4], a[4, vocab - 2] = float("-inf"), 1.0
    return a.to(device=device, dtype=dtype)


def same(got, want):
    return (got is not None and got.shape == want.shape and got.dtype == want.dtype
            and np.array_equal(bits(got), bits(want)))


def sweep(rank, world, device, vocabs, exchange):
    """(cases, failures): every case's outcome on this rank; a failure is a line that names the case."""
    cases, failures = 0, []
    for vocab in vocabs:
        for s, split in enumerate(splits(world, vocab)):
            first, width = split[rank]
            for d, dtype in enumerate(DTYPES):
                x = whole_rows(vocab, dtype, seed=vocab + s + d, device=device)
                shard = x[:, first:first + width]
                name = f"V {vocab} split {s} {str(dtype)[6:]}"
                for k in (k for k in KS if k <= vocab):
                    for largest, root in ((True, None), (False, None), (True, world - 1)):
                        got = topk.shard_topk(shard, k, first, vocab, largest=largest, root=root, exchange=exchange)
                        if root is not None and rank != root:
                            continue
                        want = topk.topk(x, k, largest=largest)
                        cases += 1
                        if not (same(got.values, want.values) and same(got.indices, want.indices)):
                            failures.append(f"shard_topk {name} k {k} largest {largest} root {root}")
                for f, filters in enumerate(FILTERS):
                    filters = {**filters, "top_k": min(filters["top_k"], vocab)} if "top_k" in filters else filters
                    for seed in (vocab + f, [s, d, f, 1, 2, 3]):
                        seed = seed if isinstance(seed, int) else torch.tensor(seed, device=device)
                        got = topk.shard_sample(shard, first, vocab, **filters, seed=seed, offset=d, return_probs=True,
                                                exchange=exchange)
                        want = topk.sample(x, **filters, seed=seed, offset=d, return_probs=True)
                        cases += 1
                        if not (same(got[0], want[0]) and same(got[1], want[1])):
                            failures.append(f"shard_sample {name} {filters} seed {seed.tolist() if hasattr(seed, 'tolist') else seed}")
    return cases, failures


def main():
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    vocabs = (1000, 4099) if os.environ.get("SHARD_SWEEP_QUICK") == "1" else (1000, 4099, 151936)
    cases, failures = sweep(rank, world, device, vocabs, None if cuda else "tensors")
    counts = torch.tensor([cases, len(failures)], dtype=torch.int64, device=device)
    dist.all_reduce(counts)
    total, failed = counts.tolist()
    if rank == 0:
        where = f"{world} x {torch.cuda.get_device_name(device)} (NCCL)" if cuda else f"{world} CPU ranks (gloo)"
        print(f"shard sweep: {'PASS' if failed == 0 else 'FAIL'}: {total - failed} of {total} cases equal one device's "
              f"bits, {failed} differ; {where}; vocabs {vocabs}; torch {torch.__version__}", flush=True)
    dist.barrier()
    for line in failures[:20]:
        print(f"rank {rank}: DIFFERS: {line}", flush=True)
    dist.destroy_process_group()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
