"""Shared helpers: the backends to test, the kinds of input (NumPy, torch on the CPU, torch on CUDA),
and bitwise comparison. The reference backend is the oracle; every other usable backend must match it bit
for bit. Tests choose their backend explicitly, so TOPK_BACKEND and AIKF_TOPK_IMPL are cleared here.
"""
import importlib.util
import os
import sys

import numpy as np
import pytest

os.environ.pop("TOPK_BACKEND", None)
os.environ.pop("AIKF_TOPK_IMPL", None)
if importlib.util.find_spec("topk") is None:  # not installed and not on PYTHONPATH: the package beside tests/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    import torch  # before topk, which then registers its torch.compile ops (topk._torch_ops)
except ImportError:
    torch = None

import topk  # noqa: E402  (after the environment is cleared)

CUDA = torch is not None and torch.cuda.is_available()


def usable(backend):
    try:
        return topk.backend_name(backend) == backend
    except topk.TopkError:
        return False


# Backends under test besides the oracle: offload where a GPU (or TOPK_OFFLOAD_HOST=1) makes it usable.
BACKENDS = [b for b in ("cpu", "offload") if usable(b)]

# (label, dtype name, maker): maker turns a float32 NumPy array into the input of that kind and dtype.
KINDS = [("numpy", "float32", lambda a: a), ("numpy", "float16", lambda a: a.astype(np.float16))]
if torch is not None:
    for device in ["cpu"] + (["cuda"] if CUDA else []):
        for dtype in ("float32", "float16", "bfloat16"):
            KINDS.append((f"torch-{device}", dtype,
                          lambda a, d=device, t=dtype: torch.from_numpy(a).to(device=d, dtype=getattr(torch, t))))

kinds = pytest.mark.parametrize("label,dtype,make", KINDS, ids=[f"{k[0]}-{k[1]}" for k in KINDS])
# Every backend with every kind of input it reads: CUDA tensors go to the offload backend only.
_PAIRS = [(b,) + k for b in BACKENDS for k in KINDS if b == "offload" or not k[0].endswith("cuda")]
backend_kinds = pytest.mark.parametrize("backend,label,dtype,make", _PAIRS,
                                        ids=[f"{p[0]}-{p[1]}-{p[2]}" for p in _PAIRS])


def host(a):
    """A NumPy array with the bits of a (torch bf16 becomes its uint16 bit patterns)."""
    if isinstance(a, np.ndarray):
        return a
    a = a.detach().cpu()
    if a.dtype == torch.bfloat16:
        a = a.view(torch.int16)
    return a.numpy()


def bits(a):
    """The array's elements as unsigned integers of their width, for bit-for-bit comparison."""
    a = host(a)
    return a.view({8: np.uint64, 4: np.uint32, 2: np.uint16}[a.itemsize])


def assert_same_bits(x, y):
    assert type(x) is type(y)
    assert x.shape == y.shape and x.dtype == y.dtype
    np.testing.assert_array_equal(bits(x), bits(y))


def logits(rows, vocab, seed=0, special=False):
    """Normal float32 logits; with special, ties, NaN, +-inf and +-0.0 spread through every row."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, vocab), dtype=np.float32)
    if special:
        a = np.round(a * 4) / 4
        for value in (np.nan, np.inf, -np.inf, 0.0, -0.0):
            a[rng.random(a.shape) < 0.01] = value
    return a
