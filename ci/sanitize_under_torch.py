"""The offload kernels for compute-sanitizer, in a process where PyTorch makes the CUDA context first.

Under compute-sanitizer, a program linked with libomptarget reports "CUDA initialized before the
Sanitizer" and is not checked at all: libomptarget initialises the device in a constructor, before
main. Here torch starts CUDA after the sanitizer, and libtopk (with libomptarget) is loaded through
the Python package afterwards. Runs topk_select and topk_sample on CUDA tensors over a few shapes
and checks them against the cpu backend. Usage (ci/gpu-sanitize): python3 ci/sanitize_under_torch.py
with PYTHONPATH=python and TOPK_LIBRARY=.gpu/bin/libtopk.so.
"""
import gc

import torch

torch.zeros(1, device="cuda")  # torch makes the context (a temporary: its block goes back at the end)
import topk  # noqa: E402  (after CUDA is up, on purpose)


def main():
    wrong = 0
    for batch, vocab, k, dtype in [(1, 50304, 50, torch.bfloat16), (4, 4099, 1024, torch.float32),
                                   (32, 32000, 200, torch.float16), (3, 70000, 2048, torch.float32),
                                   (2, 300000, 3000, torch.float32)]:
        x = torch.randn(batch, vocab, generator=torch.Generator().manual_seed(vocab)).to(dtype)
        gpu = topk.topk(x.cuda(), k, backend="offload")
        cpu = topk.topk(x, k, backend="cpu")
        same = torch.equal(gpu.indices.cpu(), cpu.indices)
        wrong += not same
        print(f"select {batch} x {vocab} k {k} {dtype}: {'same as cpu' if same else 'DIFFERENT'}")
    # The sampler: its fused top-k list path at decode shapes (the root's list had holes on the H100 in
    # issue 14: memcheck saw reads at column 2^32 - 1), a top-p-only row set (the whole-row path) and min-p.
    for batch, vocab, dtype, params in [(8, 32000, torch.float32, dict(top_k=50, top_p=0.9)),
                                        (1, 128256, torch.float32, dict(top_k=50, top_p=0.9)),
                                        (1, 128256, torch.bfloat16, dict(top_k=50, top_p=0.9)),
                                        (32, 128256, torch.bfloat16, dict(top_k=50, top_p=0.9)),
                                        (8, 200019, torch.bfloat16, dict(top_k=40, top_p=0.95, min_p=0.05)),
                                        (4, 50304, torch.float16, dict(top_p=0.9))]:
        x = torch.randn(batch, vocab, generator=torch.Generator().manual_seed(7)).to(dtype)
        a = topk.sample_logits(x.cuda(), temperature=0.7, seed=1, backend="offload", **params)
        b = topk.sample_logits(x, temperature=0.7, seed=1, backend="cpu", **params)
        same = torch.equal(torch.as_tensor(a).cpu().reshape(-1), torch.as_tensor(b).reshape(-1))
        wrong += not same
        print(f"sample {batch} x {vocab} {dtype} {params}: {'same as cpu' if same else 'DIFFERENT'}")
    return wrong


wrong = main()
# Nothing of ours or torch's may stay allocated, so that memcheck's leak check reports only real
# leaks: every tensor died with main(), torch gives its cached blocks back, libtopk its workspace
# (topk.reset, also run at exit).
gc.collect()
torch.cuda.synchronize()
topk.reset()
torch.cuda.empty_cache()
raise SystemExit(1 if wrong else 0)
