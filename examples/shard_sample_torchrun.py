"""Vocab-parallel top-k and sampling over torch.distributed: each rank holds a slice of the vocabulary of
every row (as with a tensor-parallel LM head), and gets the same top 5 and the same tokens as one process
holding the whole rows, bit for bit. Only candidates (or integer sums) travel, never the logits.

    torchrun --standalone --nproc_per_node 2 examples/shard_sample_torchrun.py
    (or python3 -m torch.distributed.run ...; with the package from `pip install ./python`, or
    PYTHONPATH=python TOPK_LIBRARY=build/libtopk.so from a build tree)

CPU tensors over gloo: this build's vocab-sharded calls read host memory.
"""
import torch
import torch.distributed as dist

import topk

BATCH, VOCAB, STEPS = 4, 151936, 3

dist.init_process_group("gloo")  # torchrun's environment names the rank, the world size and the rendezvous
rank, world = dist.get_rank(), dist.get_world_size()
# This rank's columns [first, first + mine): an uneven split is fine, and so is an empty shard.
first = VOCAB * rank // world
mine = VOCAB * (rank + 1) // world - first

generator = torch.Generator().manual_seed(0)  # the same whole rows on every rank, only to compare below
for step in range(STEPS):
    logits = torch.randn(BATCH, VOCAB, generator=generator).to(torch.bfloat16)
    shard = logits[:, first:first + mine]  # what this rank's LM head would produce

    best = topk.shard_topk(shard, 5, first, VOCAB)  # global column indices, on every rank
    # One token per row; offset advances with the step so that each step draws afresh. root=0 would give
    # the tokens to rank 0 alone (the others get None).
    tokens, probs = topk.shard_sample(shard, first, VOCAB, temperature=0.8, top_p=0.9, seed=1234, offset=step,
                                      return_probs=True)

    whole_tokens, whole_probs = topk.sample(logits, temperature=0.8, top_p=0.9, seed=1234, offset=step,
                                            return_probs=True)
    same = (torch.equal(tokens, whole_tokens) and torch.equal(probs, whole_probs)
            and torch.equal(best.indices, topk.topk(logits, 5).indices))
    if rank == 0:
        print(f"step {step}: top 5 of row 0 {best.indices[0].tolist()}, tokens {tokens.tolist()}, "
              f"p {[round(p, 6) for p in probs.tolist()]}; same as one process: {same}")
    if not same:
        raise SystemExit(f"rank {rank}: the sharded results differ from one process's")
dist.destroy_process_group()
