"""FlashInfer's fused top_k_top_p_sampling_from_logits on the GPU, timed like torch_sample.py (prints
"median_us X"). Skips with a message, and no median, when flashinfer or CUDA cannot be imported.

    python3 bench/peers/flashinfer_sample.py --batch 32 --vocab 128256 --temperature 0.7 --top-k 50 --top-p 0.9
"""
import argparse
import statistics
import sys
import time


def main():
    a = argparse.ArgumentParser()
    for name, kind, default in [("batch", int, 32), ("vocab", int, 128256), ("temperature", float, 0.7),
                                ("top-k", int, 50), ("top-p", float, 0.9), ("min-p", float, 0.0), ("reps", int, 50)]:
        a.add_argument("--" + name, type=kind, default=default)
    a.add_argument("--dtype", default="fp32")
    a.add_argument("--device", default="cuda")
    o = a.parse_args()
    try:
        import torch
        import flashinfer.sampling as fs
    except Exception as e:  # ImportError, or a wheel built for another torch/CUDA
        print(f"flashinfer peer skipped: import failed: {e}", file=sys.stderr)
        return
    if not torch.cuda.is_available():
        print("flashinfer peer skipped: no CUDA device", file=sys.stderr)
        return
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[o.dtype]
    logits = (torch.randn(o.batch, o.vocab, device="cuda") * 2).to(dtype)
    top_k = o.top_k if o.top_k else o.vocab

    def run():
        # FlashInfer takes the temperature outside: logits / T, then its fused top-k + top-p sampler.
        return fs.top_k_top_p_sampling_from_logits(logits / o.temperature, top_k, o.top_p, filter_apply_order="joint")

    times = []
    for i in range(o.reps + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        if i:
            times.append((time.perf_counter() - t0) * 1e6)
    print(f"median_us {statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
