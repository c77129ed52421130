"""topk.shard_topk and topk.shard_sample over torch.distributed: 1 to 4 processes in one gloo group, each
holding a slice of the columns of the same rows, get on every rank (or on the root alone) the bits that
topk.topk and topk.sample give on the whole rows, for splits with an empty shard, a shard narrower than
k and shards out of rank order, through both exchanges (libtopk's, and torch collectives on the tensors,
which CUDA tensors take over NCCL: python/tests/shard_sweep.py runs that on GPUs). Errors (a k that differs between ranks, a failing collective) raise on
every rank.

One group of processes per world size runs every case (starting processes is the slow part): a failed
check on any rank fails that world size's test with the rank's traceback.
"""
import datetime
import os
import tempfile

import numpy as np
import pytest
from conftest import assert_same_bits, logits, torch

import topk

dist = getattr(torch, "distributed", None)
pytestmark = pytest.mark.skipif(dist is None or not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

DTYPES = ("float32", "float16", "bfloat16")
EXCHANGES = ("library", "tensors")
BATCH, VOCAB = 3, 600


def splits(world, vocab):
    """Ways to split [0, vocab) among the ranks, as each rank's (first column, width): even, one empty shard
    and one of 2 columns (narrower than most k below), and the even split in reverse rank order."""
    even = [(vocab * r // world, vocab * (r + 1) // world - vocab * r // world) for r in range(world)]
    if world == 1:
        return [even]
    uneven = [(0, 0), (0, 2)] + [(2 + (vocab - 2) * r // (world - 2), (vocab - 2) * (r + 1) // (world - 2) -
                                  (vocab - 2) * r // (world - 2)) for r in range(world - 2)]
    if world == 2:
        uneven = [(0, 2), (2, vocab - 2)]
    return [even, uneven, even[::-1]]


def dtypes(world, s):
    """The dtypes to test split s in: all of them, or one per split above 2 ranks, where every collective
    costs context switches on CI's 2 cores (each dtype still meets every split kind at some world size)."""
    return DTYPES if world <= 2 else DTYPES[s % 3:s % 3 + 1]


def whole_rows(dtype, seed):
    """The same rows on every rank (ties, NaN, +-inf and +-0 included), of shape (BATCH, 2, VOCAB) every
    other seed so that leading axes are tested too."""
    rows = torch.from_numpy(logits(2 * BATCH, VOCAB, seed=seed, special=True)).to(getattr(torch, dtype))
    return rows.reshape(BATCH, 2, VOCAB) if seed % 2 else rows


def check_select(rank, world):
    for s, split in enumerate(splits(world, VOCAB)):
        first, width = split[rank]
        for dtype in dtypes(world, s):
            x = whole_rows(dtype, seed=s)
            shard = x[..., first:first + width]  # a view: rows keep the whole row's stride
            for k, exchange in ((k, e) for k in (1, 64, VOCAB) for e in EXCHANGES):
                for largest, root in ((True, None), (False, None), (True, world - 1)):
                    got = topk.shard_topk(shard, k, first, VOCAB, root=root, largest=largest, exchange=exchange)
                    if root is not None and rank != root:
                        assert got is None
                        continue
                    want = topk.topk(x, k, largest=largest)
                    assert_same_bits(got.values, want.values)
                    assert_same_bits(got.indices, want.indices)


FILTERS = [{}, {"temperature": 0.0}, {"top_k": 20}, {"top_p": 0.9}, {"min_p": 0.2},
           {"temperature": 0.7, "top_k": 50, "top_p": 0.95, "min_p": 0.05},
           {"temperature": [0.5, 1.0, 2.0], "top_k": [0, 5, 600], "top_p": [1.0, 0.8, 0.5]},
           {"temperature": [0.0, 1.0, 0.8], "top_k": [0, 40, 7], "min_p": 0.1}]  # lists of three lengths


def check_sample(rank, world):
    for s, split in enumerate(splits(world, VOCAB)):
        first, width = split[rank]
        for d, dtype in enumerate(dtypes(world, s)):
            x = torch.from_numpy(logits(BATCH, VOCAB, seed=10 + s, special=True)).to(getattr(torch, dtype))
            shard = x[:, first:first + width]
            for filters, exchange in ((f, e) for f in FILTERS for e in EXCHANGES):
                for seed, offset, root in ((10 * s + d, d, None), ([3, 4, 5 + d], [0, 1, 2 + s], 0)):
                    got = topk.shard_sample(shard, first, VOCAB, **filters, seed=seed, offset=offset, root=root,
                                            return_probs=True, exchange=exchange)
                    if root is not None and rank != root:
                        assert got is None
                        continue
                    want = topk.sample(x, **filters, seed=seed, offset=offset, return_probs=True)
                    assert_same_bits(got[0], want[0])
                    assert_same_bits(got[1], want[1])


def check_errors(rank, world):
    x = torch.zeros(2, 10)
    first, width = 10 * rank // world, 10 * (rank + 1) // world - 10 * rank // world
    shard = x[:, first:first + width]
    if world > 1:
        with pytest.raises(topk.TopkArgumentError) as error:  # every rank, not only the one with another k
            topk.shard_topk(shard, 3 + (rank == 1), first, 10)
        assert error.value.status_name == "BAD_SHARDS"
        with pytest.raises(topk.TopkArgumentError) as error:  # seeds differ between ranks
            topk.shard_sample(shard, first, 10, seed=rank)
        assert error.value.status_name == "BAD_SHARDS"
    with pytest.raises(topk.TopkArgumentError) as error:  # overlapping shards
        topk.shard_topk(shard, 2, first, 10 + 1)
    assert error.value.status_name == "BAD_SHARDS"
    with pytest.raises(topk.TopkArgumentError) as error:
        topk.shard_topk(shard, 11, first, 10)
    assert error.value.status_name == "BAD_K"
    # A collective that raises in Python: every rank's does here, so no rank waits for another.
    from topk._torch_comm import TorchComm
    allgather = TorchComm._allgather
    TorchComm._allgather = lambda *args: 1 / 0
    try:
        with pytest.raises(topk.TopkError, match="ZeroDivisionError") as error:
            topk.shard_topk(shard, 2, first, 10)
    finally:
        TorchComm._allgather = allgather
    assert error.value.status_name == "COMM" and isinstance(error.value.__cause__, ZeroDivisionError)
    assert topk.shard_topk(shard, 2, first, 10).indices.tolist() == [[0, 1], [0, 1]]  # and the group still works


def check_subgroup(rank, world):
    """A group of every rank but the first, with a root: its ranks are not the default group's."""
    if world < 3:
        return
    members = list(range(1, world))
    group = dist.new_group(members, backend="gloo")  # every rank calls it, members or not
    if rank == 0:
        return
    me, size = members.index(rank), len(members)
    first, width = VOCAB * me // size, VOCAB * (me + 1) // size - VOCAB * me // size
    x = whole_rows("float32", seed=4)
    got = topk.shard_topk(x[:, first:first + width], 10, first, VOCAB, group=group, root=1)
    tokens = topk.shard_sample(x[:, first:first + width], first, VOCAB, top_p=0.9, seed=3, group=group)
    assert_same_bits(tokens, topk.sample(x, top_p=0.9, seed=3))
    if me != 1:
        assert got is None
        return
    want = topk.topk(x, 10)
    assert_same_bits(got.values, want.values)
    assert_same_bits(got.indices, want.indices)


def _rank_main(rank, world, init_method, checks):
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        for check in checks:
            check(rank, world)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_equals_one_process(world):
    with tempfile.TemporaryDirectory() as folder:
        torch.multiprocessing.start_processes(_rank_main, nprocs=world, start_method="spawn",
                                              args=(world, f"file://{os.path.join(folder, 'rendezvous')}",
                                                    (check_select, check_sample, check_errors, check_subgroup)))


def test_without_a_group_says_so():
    with pytest.raises(RuntimeError, match="not initialised"):
        topk.shard_topk(np.zeros((1, 4), np.float32), 1, 0, 4)
