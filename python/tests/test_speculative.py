"""topk.chain_speculative_sampling: FlashInfer's outputs (tokens with -1 after the stop, accepted, emitted),
NumPy and torch giving the same bits on every backend, the emitted tokens distributed as the target's,
per-row seeds independent of the batch, and bad arguments refused."""
import numpy as np
import pytest
from conftest import BACKENDS, CUDA, torch

import topk


def inputs(batch, S, vocab, seed):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(vocab), size=(batch, S)).astype(np.float32)
    p = rng.dirichlet(np.ones(vocab), size=(batch, S + 1)).astype(np.float32)
    ids = np.array([[rng.choice(vocab, p=q[b, j] / q[b, j].sum()) for j in range(S)] for b in range(batch)], np.int64)
    return q, ids, p


MAKERS = [("numpy", lambda a: a)]
if torch is not None:
    MAKERS.append(("torch-cpu", torch.from_numpy))
    if CUDA:
        MAKERS.append(("torch-cuda", lambda a: torch.from_numpy(a).cuda()))


def host(a):
    return a.cpu().numpy() if torch is not None and isinstance(a, torch.Tensor) else a


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("label,make", MAKERS, ids=[m[0] for m in MAKERS])
def test_same_bits_everywhere(backend, label, make):
    if label == "torch-cuda" and backend != "offload":
        pytest.skip("CUDA tensors go to the offload backend")
    q, ids, p = inputs(9, 3, 50, seed=1)
    want = topk.chain_speculative_sampling(q, ids, p, seed=5, offset=2, backend="reference")
    got = topk.chain_speculative_sampling(make(q), make(ids), make(p), seed=5, offset=2, backend=backend)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(host(a), b)
    tokens, accepted, emitted = want
    assert tokens.shape == (9, 4) and accepted.shape == (9,) and emitted.shape == (9,)
    for b in range(9):
        e = emitted[b]
        assert list(tokens[b, :e]) == list(ids[b, :e]) and 0 <= tokens[b, e] < 50 and all(tokens[b, e + 1:] == -1)
        assert e <= accepted[b] <= 3


def test_first_token_follows_target():
    """The first emitted token is distributed as p_0 (drafts drawn from q_0): chi-square at p = 1e-6."""
    rows, vocab = 20000, 8
    rng = np.random.default_rng(3)
    q0, p0 = rng.dirichlet(np.ones(vocab)).astype(np.float32), rng.dirichlet(np.ones(vocab)).astype(np.float32)
    q = np.tile(q0, (rows, 1, 1))
    p = np.tile(p0, (rows, 2, 1))
    ids = rng.choice(vocab, size=(rows, 1), p=q0 / q0.sum()).astype(np.int64)
    tokens, accepted, emitted = topk.chain_speculative_sampling(q, ids, p, seed=11)
    counts = np.bincount(tokens[:, 0], minlength=vocab)
    expected = p0 / p0.sum() * rows
    assert ((counts - expected) ** 2 / expected).sum() < 40.0  # df 7: p = 1e-6 at ~39
    alpha = np.minimum(p0, q0).sum()
    assert abs(accepted.mean() - alpha) < 5 * np.sqrt(alpha * (1 - alpha) / rows)


def test_per_row_seeds_batch_invariance():
    q, ids, p = inputs(16, 2, 30, seed=2)
    seeds, offsets = np.arange(100, 116, dtype=np.uint64), np.arange(16, dtype=np.uint64)
    tokens, accepted, emitted = topk.chain_speculative_sampling(q, ids, p, seed=seeds, offset=offsets)
    for b in (0, 7, 15):
        alone = topk.chain_speculative_sampling(q[b:b + 1], ids[b:b + 1], p[b:b + 1], seed=[int(seeds[b])],
                                                offset=int(offsets[b]))
        assert (alone[0][0] == tokens[b]).all() and alone[1][0] == accepted[b] and alone[2][0] == emitted[b]


def test_errors():
    q, ids, p = inputs(2, 2, 5, seed=4)
    with pytest.raises(topk.TopkArgumentError):
        topk.chain_speculative_sampling(q, ids, p[:, :2])
    with pytest.raises(topk.TopkTypeError):
        topk.chain_speculative_sampling(q.astype(np.float64), ids, p)
    with pytest.raises(topk.TopkTypeError):
        topk.chain_speculative_sampling(q, ids.astype(np.int32), p)
    bad = ids.copy()
    bad[1, 1] = 5
    with pytest.raises(topk.TopkArgumentError, match="out of range"):
        topk.chain_speculative_sampling(q, bad, p)
