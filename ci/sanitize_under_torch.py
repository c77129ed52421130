"""The offload kernels for compute-sanitizer, in a process where PyTorch makes the CUDA context first.

Under compute-sanitizer, a program linked with libomptarget reports "CUDA initialized before the
Sanitizer" and is not checked at all: libomptarget initialises the device in a constructor, before
main. Here torch starts CUDA after the sanitizer, and libtopk (with libomptarget) is loaded through
the Python package afterwards. Runs topk_select and topk_sample on CUDA tensors over a few shapes
and checks them against the cpu backend. Usage (ci/gpu-sanitize): python3 ci/sanitize_under_torch.py
with PYTHONPATH=python and TOPK_LIBRARY=.gpu/bin/libtopk.so.
"""
import torch

torch.zeros(1, device="cuda")
import topk  # noqa: E402  (after CUDA is up, on purpose)

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
x = torch.randn(8, 32000, generator=torch.Generator().manual_seed(7))
a = topk.sample_logits(x.cuda(), temperature=0.7, top_k=50, top_p=0.9, seed=1, backend="offload")
b = topk.sample_logits(x, temperature=0.7, top_k=50, top_p=0.9, seed=1, backend="cpu")
same = torch.equal(torch.as_tensor(a).cpu().reshape(-1), torch.as_tensor(b).reshape(-1))
wrong += not same
print(f"sample 8 x 32000: {'same as cpu' if same else 'DIFFERENT'}")
del x, a, b, gpu, cpu
torch.cuda.empty_cache()  # torch's cached blocks would read as leaks
raise SystemExit(1 if wrong else 0)
