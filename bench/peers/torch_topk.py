#!/usr/bin/env python3
"""torch.topk on the very matrix that topk-bench times, as the peer to compare libtopk with.

Shapes, input bits, timing policy, check and CSV are common.py's (read its docstring). On the GPU each
shape is timed twice: eager calls between CUDA events (median_us) and replays of a CUDA graph of one call
(graph_median_us). Torch 1.13's CPU top-k has no fp16 kernel: there the fp16 rows time x.float() then
topk, and say so in the note column.
Prints CSV: peer,batch,vocab,k,dtype,order,threads,samples,median_us,min_us,graph_median_us,note.
Needs torch and numpy (Debian: /usr/bin/python3 with python3-torch).
"""
import sys

import torch

from common import (as_tensor, cached_matrix, check, checked_args, early_exits, graph_of, parser, run_all,
                    time_on_cpu, time_on_cuda)


def run_case(shape, args):
    batch, vocab, k, dtype = shape
    matrix = cached_matrix(args, batch, vocab, dtype)
    x = as_tensor(matrix, dtype, vocab).to(args.device)
    largest = not args.smallest
    note = ""

    def call():
        return torch.topk(x, k, dim=1, largest=largest, sorted=True)

    try:
        result = call()
    except RuntimeError as e:  # torch 1.13's CPU topk has no fp16 kernel: say so, and time what a caller must do
        if "not implemented" not in str(e):
            raise
        note = f"torch {torch.__version__} {args.device} topk lacks {dtype}: timed x.float() then topk"

        def call():
            return torch.topk(x.float(), k, dim=1, largest=largest, sorted=True)

    graph_samples = None
    if args.device == "cuda":
        samples, result = time_on_cuda(call, args)
        graph, graph_result = graph_of(call)
        graph_samples, _ = time_on_cuda(graph.replay, args)  # replays rewrite graph_result in place
        check(graph_result.values.float().cpu().numpy(), matrix, shape, largest, "torch_topk")
    else:
        samples, result = time_on_cpu(call, args)
    check(result.values.float().cpu().numpy(), matrix, shape, largest, "torch_topk")  # the last timed call's
    return samples, graph_samples, note


def main():
    args = checked_args(parser(__doc__, ["cpu", "cuda"], "cpu"))
    if early_exits(args):
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_topk: --device cuda, but torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    run_all(f"torch-{torch.__version__}", args, lambda shape: run_case(shape, args))


if __name__ == "__main__":
    main()
