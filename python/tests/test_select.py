"""topk.topk on every kind of input and every usable backend: bit for bit the reference backend's result,
torch.topk's result where the contract and torch agree (no ties, no NaN), and the layouts that are read in
place (row strides, leading axes) or refused."""
import numpy as np
import pytest
from conftest import CUDA, KINDS, assert_same_bits, backend_kinds, bits, host, kinds, logits, torch

import topk

SHAPES = [(1, 1, 1), (1, 7, 3), (3, 50, 50), (5, 1000, 17), (2, 50304, 200)]


@backend_kinds
@pytest.mark.parametrize("rows,vocab,k", SHAPES)
@pytest.mark.parametrize("largest", [True, False])
def test_equals_reference(backend, label, dtype, make, rows, vocab, k, largest):
    x = make(logits(rows, vocab, seed=vocab + k, special=True))
    ours = topk.topk(x, k, largest=largest, backend=backend)
    oracle = topk.topk(host_input(x), k, largest=largest, backend="reference")
    assert type(ours.values) is type(x) and ours.values.dtype == x.dtype
    assert ours.values.shape == (rows, k) and ours.indices.shape == (rows, k)
    assert_same_bits(to_host_kind(ours.values, oracle.values), oracle.values)
    assert_same_bits(to_host_kind(ours.indices, oracle.indices), oracle.indices)


def host_input(x):
    """x itself, or a CUDA tensor's CPU copy (the reference backend reads host memory)."""
    return x.cpu() if torch is not None and isinstance(x, torch.Tensor) and x.is_cuda else x


def to_host_kind(a, like):
    return a.cpu() if type(a) is type(like) and hasattr(a, "cpu") else a


def distinct(rows, vocab, seed):
    """Rows of distinct small integers, exact in every dtype (|v| <= 128 for bf16): no ties for torch."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(vocab) - vocab // 2 for _ in range(rows)]).astype(np.float32)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@backend_kinds
@pytest.mark.parametrize("rows,vocab,k", [(1, 256, 50), (4, 256, 1), (3, 200, 200)])
def test_equals_torch_topk_without_ties(backend, label, dtype, make, rows, vocab, k):
    x = make(distinct(rows, vocab, seed=k))
    t = torch.as_tensor(host(x)).float() if label == "numpy" else x.float()  # torch 1.13 has no CPU fp16 topk
    for largest in (True, False):
        ours = topk.topk(x, k, largest=largest, backend=backend)
        theirs = torch.topk(t, k, largest=largest)
        np.testing.assert_array_equal(host(ours.indices), theirs.indices.cpu().numpy())
        np.testing.assert_array_equal(np.asarray(host_float(ours.values)), theirs.values.cpu().numpy())


def host_float(a):
    return a.float().cpu().numpy() if torch is not None and isinstance(a, torch.Tensor) else a.astype(np.float32)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_large_fp32_row_equals_torch():
    x = torch.from_numpy(distinct(2, 151936, seed=1))
    ours, theirs = topk.topk(x, 1024, backend="cpu"), torch.topk(x, 1024)
    assert torch.equal(ours.values, theirs.values) and torch.equal(ours.indices, theirs.indices)


@backend_kinds
def test_row_stride_is_read_in_place(backend, label, dtype, make, monkeypatch):
    wide = make(logits(6, 1000, seed=3, special=True))
    x = wide[:, 100:800]  # rows of 700 with stride 1000
    from topk import _arrays
    for kind in (_arrays._NumpyKind, _arrays._TorchKind):
        monkeypatch.setattr(kind, "contiguous", lambda self, a: pytest.fail("copied a strided input"))
    ours = topk.topk(x, 20, backend=backend)
    dense = host_input(x).copy() if label == "numpy" else host_input(x).contiguous()
    oracle = topk.topk(dense, 20, backend="reference")
    assert_same_bits(to_host_kind(ours.values, oracle.values), oracle.values)
    assert_same_bits(to_host_kind(ours.indices, oracle.indices), oracle.indices)


@kinds
def test_leading_axes_and_one_dimension(label, dtype, make):
    x = make(logits(24, 300, seed=4)).reshape(2, 3, 4, 300)
    ours = topk.topk(x, 5)
    assert ours.values.shape == (2, 3, 4, 5)
    flat = topk.topk(x.reshape(24, 300), 5)
    assert_same_bits(ours.indices.reshape(24, 5), flat.indices)
    last_position = x.reshape(6, 4, 300)[:, -1]  # (B, T, V)[:, -1]: rows with stride 4 * 300, read in place
    assert_same_bits(topk.topk(last_position, 5).indices, flat.indices[3::4])
    row = x[1, 2, 3]
    assert_same_bits(topk.topk(row, 5).indices, flat.indices[23])


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_other_dim_needs_copy_and_matches_torch():
    x = torch.from_numpy(distinct(64, 8, seed=5))  # columns hold duplicates: compare with torch on values only
    with pytest.raises(topk.TopkArgumentError, match="copy=True"):
        topk.topk(x, 3, dim=0)
    ours, theirs = topk.topk(x, 3, dim=0, copy=True), torch.topk(x, 3, dim=0)
    assert ours.values.shape == (3, 8) and torch.equal(ours.values, theirs.values)
    assert torch.equal(x.gather(0, ours.indices), ours.values)
    with pytest.raises(topk.TopkArgumentError, match="copy=True"):
        topk.topk(x.t(), 3)


def test_negative_and_zero_strides_need_copy():
    x = logits(4, 100)
    with pytest.raises(topk.TopkArgumentError):
        topk.topk(x[:, ::-1], 3)
    broadcast = np.broadcast_to(x[:1], (4, 100))  # rows with stride 0: below vocab, which libtopk refuses
    with pytest.raises(topk.TopkArgumentError):
        topk.topk(broadcast, 3)
    ours = topk.topk(x[:, ::-1], 3, copy=True)
    np.testing.assert_array_equal(ours.indices, topk.topk(np.ascontiguousarray(x[:, ::-1]), 3).indices)
    np.testing.assert_array_equal(topk.topk(broadcast, 3, copy=True).indices,
                                  np.repeat(topk.topk(x[:1], 3).indices, 4, axis=0))


@kinds
def test_k_zero_whole_row_and_empty_batch(label, dtype, make):
    x = make(logits(3, 40, seed=6))
    assert topk.topk(x, 0).values.shape == (3, 0)
    whole = topk.topk(x, 40)
    assert sorted(host(whole.indices)[0].tolist()) == list(range(40))
    empty = topk.topk(x[:0], 5)
    assert empty.values.shape == (0, 5) and empty.indices.shape == (0, 5)


@kinds
def test_out_arrays_are_written(label, dtype, make):
    x = make(logits(4, 500, seed=7))
    first = topk.topk(x, 10)
    values, indices = (first.values * 0, first.indices * 0)
    result = topk.topk(x, 10, out=(values, indices))
    assert result.values is values and result.indices is indices
    assert_same_bits(values, first.values)
    assert_same_bits(indices, first.indices)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_dlpack_object_gives_torch_tensors():
    class Foreign:
        def __init__(self, tensor):
            self.tensor = tensor

        def __dlpack__(self, stream=None):
            return self.tensor.__dlpack__()

        def __dlpack_device__(self):
            return self.tensor.__dlpack_device__()

    x = torch.from_numpy(logits(2, 100, seed=8))
    ours = topk.topk(Foreign(x), 4)
    assert isinstance(ours.values, torch.Tensor) and torch.equal(ours.indices, topk.topk(x, 4).indices)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_stream_work_is_seen():
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # the input is made on a side stream, selected on that same stream
        x = torch.randn(8, 50304, device="cuda")
        x.mul_(-1)
        ours = topk.topk(x, 50)
    side.synchronize()
    assert torch.equal(ours.values, torch.topk(x, 50).values)
    assert ours.values.is_cuda and ours.indices.dtype == torch.int64


def test_kinds_cover_numpy():
    assert any(label == "numpy" for label, _, _ in KINDS)
    assert bits(np.float32(1.0).reshape(1)).dtype == np.uint32
