"""The torch composite that topk_sample replaces: topk, divide by the temperature, softmax, top-p over
the sorted top-k, min-p, multinomial. Times it on --device (cpu or cuda) and prints "median_us X".

    python3 bench/peers/torch_sample.py --batch 32 --vocab 128256 --temperature 0.7 --top-k 50 --top-p 0.9
"""
import statistics
import sys
import time

from sample_common import print_graph_us, sample_parser


def composite(torch, logits, temperature, top_k, top_p, min_p):
    values, indices = torch.topk(logits, top_k, dim=-1) if top_k else torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(values / temperature, dim=-1)
    if top_p < 1:
        before = torch.cumsum(probs, dim=-1) - probs
        probs = probs.masked_fill(before >= top_p, 0)
    if min_p > 0:
        probs = probs.masked_fill(probs < min_p * probs[:, :1], 0)
    choice = torch.multinomial(probs, 1)
    return indices.gather(1, choice)


def main():
    o = sample_parser("cpu").parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"torch peer skipped: {e}", file=sys.stderr)
        return
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[o.dtype]
    if o.device == "cpu" and dtype == torch.float16:
        dtype = torch.float32  # torch's CPU topk has no fp16 kernel
    logits = (torch.randn(o.batch, o.vocab) * 2).to(dtype).to(o.device)
    sync = torch.cuda.synchronize if o.device.startswith("cuda") else (lambda: None)
    times = []
    for i in range(o.reps + 1):
        sync()
        t0 = time.perf_counter()
        composite(torch, logits, o.temperature, o.top_k, o.top_p, o.min_p)
        sync()
        if i:
            times.append((time.perf_counter() - t0) * 1e6)
    print(f"median_us {statistics.median(times):.1f}")
    if o.device.startswith("cuda"):
        print_graph_us("torch composite", torch, lambda: composite(torch, logits, o.temperature, o.top_k, o.top_p, o.min_p), o.reps)


if __name__ == "__main__":
    main()
