"""topk.topk and topk.sample inside torch.compile(fullgraph=True): registered as torch custom ops
(topk._torch_ops), so the graph has no break and the compiled function gives the eager function's bits.
Needs torch >= 2.5 (skipped with an older torch, e.g. Debian 12's 1.13); CUDA cases need a GPU, and run
the compiled function also as CUDA graphs (mode="reduce-overhead")."""
import pytest
from conftest import torch

import topk

compile_ready = torch is not None and hasattr(torch, "compile") and bool(getattr(topk, "torch_ops", False))
pytestmark = pytest.mark.skipif(not compile_ready, reason="torch >= 2.5 with topk's custom ops registered")
devices = ["cpu"] + (["cuda"] if compile_ready and torch.cuda.is_available() else [])


def step(x, seeds):
    values, indices = topk.topk(x * 2, 20)
    smallest = topk.topk(x, 5, dim=0, largest=False, copy=True)
    tokens, probs = topk.sample(x, 0.8, 40, 0.9, seed=seeds, offset=3, return_probs=True)
    greedy = topk.sample(x, 0.0, seed=1)
    return values + 1, indices, smallest.values, smallest.indices, tokens, probs, greedy


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_compiled_step_equals_eager(device, dtype):
    x = torch.randn(8, 5000, generator=torch.Generator().manual_seed(1)).to(getattr(torch, dtype)).to(device)
    seeds = torch.arange(100, 108, dtype=torch.int64, device=device)
    eager = step(x, seeds)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")(x, seeds)
    for a, b in zip(eager, compiled):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


@pytest.mark.skipif("cuda" not in devices, reason="needs a GPU")
def test_compiled_as_cuda_graphs():
    """mode="reduce-overhead" records CUDA graphs: the library's calls are captured and replayed."""
    seeds = torch.arange(8, dtype=torch.int64, device="cuda")
    compiled = torch.compile(step, fullgraph=True, mode="reduce-overhead")
    for i in range(4):
        x = torch.randn(8, 5000, generator=torch.Generator().manual_seed(10 + i)).cuda()
        want = step(x, seeds)
        got = compiled(x, seeds)
        for a, b in zip(want, got):
            assert torch.equal(a, b)
