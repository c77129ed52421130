"""FlashInfer's fused top_k_top_p_sampling_from_logits on the GPU, timed like torch_sample.py (prints
"median_us X"). Which FlashInfer: the flashinfer package where it imports, else FlashInfer's own kernels
through bench/peers/flashinfer_shim.py (the GPU host cannot install the package; the shim's .so travels in
.gpu/flashinfer); the first line on stdout says which ("flashinfer: ..."). Skips with a message, and no
median, when neither runs or there is no CUDA device.

    python3 bench/peers/flashinfer_sample.py --batch 32 --vocab 128256 --temperature 0.7 --top-k 50 --top-p 0.9
"""
import statistics
import sys
import time

from sample_common import flashinfer_sampling, print_graph_us, sample_parser


def main():
    o = sample_parser("cuda").parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"flashinfer peer skipped: torch does not import: {e}", file=sys.stderr)
        return
    if not torch.cuda.is_available():
        print("flashinfer peer skipped: no CUDA device", file=sys.stderr)
        return
    fs, what = flashinfer_sampling()
    if fs is None:
        print(f"flashinfer peer skipped: {what}", file=sys.stderr)
        return
    print(f"flashinfer: {what}", flush=True)
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
    print_graph_us("flashinfer", torch, run, o.reps)


if __name__ == "__main__":
    main()
