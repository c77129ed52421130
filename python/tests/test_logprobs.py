"""topk.sample with return_logprobs / top_logprobs (topk_sample_logprobs): the same tokens as without them,
raw logprobs against log_softmax in float64 within topk.h's tolerance, processed logprobs the log of the
probabilities, top tokens in the sampling order (NaN as -inf, ties to the smaller index), and every backend
bit for bit the cpu backend's."""
import numpy as np
import pytest
from conftest import BACKENDS, assert_same_bits, backend_kinds, host, logits, torch

import topk

TOLERANCE = 2e-6  # topk.h: |raw - exact| <= 2e-6 * (1 + |exact|)


def log_softmax(x, temperature):
    """The raw distribution in float64 (temperature 0: 1), NaN as -inf; rows of nothing but -inf: all on the
    best (the first)."""
    x = np.where(np.isnan(x), -np.inf, x.astype(np.float64)) / (temperature or 1.0)
    best = x.max(axis=-1, keepdims=True)
    out = x - best - np.log(np.exp(x - best).sum(axis=-1, keepdims=True))
    return out


def expected_top(x, n):
    """Each row's best n columns: by value (NaN as -inf), ties to the smaller index."""
    x = np.where(np.isnan(x), -np.inf, x.astype(np.float64))
    return np.stack([np.lexsort((np.arange(x.shape[1]), -row))[:n] for row in x])


@backend_kinds
@pytest.mark.parametrize("params", [dict(temperature=0.7, top_k=50, top_p=0.9), dict(temperature=0.0),
                                    dict(temperature=1.3, top_p=0.8, min_p=0.05), dict(temperature=1.0)])
def test_against_float64(backend, label, dtype, make, params):
    base = logits(6, 300, seed=3) * 4
    x = make(base)
    got = topk.sample(x, **params, seed=11, offset=2, top_logprobs=20, backend=backend)
    tokens, probs = topk.sample(x, **params, seed=11, offset=2, return_probs=True, backend=backend)
    assert_same_bits(got.tokens, tokens)
    assert_same_bits(got.probs, probs)
    read = host(x) if dtype != "bfloat16" else host(x.float())  # the logits as the library reads them
    exact = log_softmax(np.asarray(read, np.float64), params["temperature"])
    tok = host(got.tokens)
    raw = exact[np.arange(6), tok]
    np.testing.assert_allclose(host(got.logprobs), raw, rtol=0, atol=TOLERANCE * (1 + np.abs(raw)).max())
    np.testing.assert_allclose(host(got.processed_logprobs), np.log(host(got.probs).astype(np.float64)), atol=2e-7)
    top = expected_top(np.asarray(read), 20)
    np.testing.assert_array_equal(host(got.top_tokens), top)
    want = np.take_along_axis(exact, top, axis=-1)
    np.testing.assert_allclose(host(got.top_logprobs), want, rtol=0, atol=TOLERANCE * (1 + np.abs(want)).max())


def test_backends_agree_bit_for_bit():
    x = logits(9, 1000, seed=5, special=True) * 3
    want = topk.sample(x, 0.8, top_k=40, seed=4, return_logprobs=True, top_logprobs=7, backend="cpu")
    for backend in BACKENDS:
        got = topk.sample(x, 0.8, top_k=40, seed=4, return_logprobs=True, top_logprobs=7, backend=backend)
        for a, b in zip(got, want):
            assert_same_bits(a, b)


def test_edges_and_shapes():
    x = np.array([[1, 1, 1, 1, 1], [0, np.inf, 2, np.inf, np.nan], [-np.inf, np.nan, -np.inf, -np.inf, -np.inf]],
                 np.float32)
    got = topk.sample(x, 1.0, top_logprobs=20, backend="cpu")
    assert got.top_tokens.shape == (3, 20) and got.top_logprobs.shape == (3, 20)
    np.testing.assert_array_equal(got.top_tokens[0], list(range(5)) + [-1] * 15)
    np.testing.assert_allclose(got.top_logprobs[0, :5], np.log(0.2), atol=1e-6)
    assert np.all(got.top_logprobs[:, 5:] == -np.inf)
    np.testing.assert_allclose(got.logprobs[1], -np.log(2.0), atol=1e-6)
    assert got.tokens[2] == 0 and got.logprobs[2] == 0.0 and got.processed_logprobs[2] == 0.0
    only = topk.sample(x, 1.0, return_logprobs=True, backend="cpu")
    assert only.top_tokens is None and only.top_logprobs is None
    three_d = topk.sample(np.stack([x, x]), 0.0, top_logprobs=2, backend="cpu")
    assert three_d.top_tokens.shape == (2, 3, 2) and three_d.logprobs.shape == (2, 3)


@pytest.mark.parametrize("n", [21, -1])
def test_top_logprobs_out_of_range(n):
    with pytest.raises(topk.TopkArgumentError):
        topk.sample(logits(2, 10), top_logprobs=n, backend="cpu")


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_torch_outputs_are_tensors():
    got = topk.sample(torch.from_numpy(logits(3, 100)), 0.5, top_k=10, top_logprobs=3, backend="cpu")
    assert all(isinstance(a, torch.Tensor) for a in got)
    assert got.top_tokens.dtype == torch.int64 and got.logprobs.dtype == torch.float32
