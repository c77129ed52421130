"""topk.topk and topk.sample as PyTorch custom operators (torch.library), for torch.compile.

torch.compile cannot look inside a ctypes call or a C function, so code that calls topk.topk would break
its graph there. Registered as custom ops (`torch.ops.topk.topk`, `torch.ops.topk.sample`) with fake
(meta) implementations that give the outputs' shapes and dtypes, the calls become single nodes of the
graph, and torch.compile(fullgraph=True) traces through them; at run time the node calls the library as
usual (enqueued on torch's current stream for CUDA tensors, so a compiled graph may also be a CUDA
graph). Dynamo is then told to put the op in place of topk.topk and topk.sample when it meets them
(torch._dynamo.substitute_in_graph): user code calls topk.topk as always.

Only the torch tensor form goes through the op: dim, largest and the sampling parameters as numbers
(seed and offset also as per-row int64 tensors); out=, backend= and per-row filters are not part of the op.
Registered when topk is imported after torch (import torch first to compile code that calls topk). Needs
torch >= 2.5 (torch.library.custom_op, substitute_in_graph); with an older torch nothing is registered
and topk works as before.
"""
from typing import Optional, Tuple


def register(topk_function, sample_function, TopK):
    """Registers the ops and the substitutions for topk_function (topk.topk: the C fast path or the
    Python function) and sample_function (topk.sample); returns True when it did. TopK: topk's result."""
    try:
        import torch
        from torch._dynamo import substitute_in_graph
        custom_op = torch.library.custom_op
    except (ImportError, AttributeError):
        return False
    Tensor = torch.Tensor

    @custom_op("topk::topk", mutates_args=())
    def topk_op(x: Tensor, k: int, dim: int, largest: bool) -> Tuple[Tensor, Tensor]:
        values, indices = topk_function(x.movedim(dim, -1).contiguous(), k, -1, largest)
        return values.movedim(-1, dim).contiguous(), indices.movedim(-1, dim).contiguous()

    @topk_op.register_fake
    def _(x, k, dim, largest):
        shape = list(x.shape)
        shape[dim] = k
        return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)

    @custom_op("topk::sample", mutates_args=())
    def sample_op(logits: Tensor, temperature: float, top_k: int, top_p: float, min_p: float, seed: int, offset: int,
                  seeds: Optional[Tensor], offsets: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        return sample_function(logits, temperature, top_k, top_p, min_p, return_probs=True,
                               seed=seed if seeds is None else seeds, offset=offset if offsets is None else offsets)

    @sample_op.register_fake
    def _(logits, temperature, top_k, top_p, min_p, seed, offset, seeds, offsets):
        shape = logits.shape[:-1]
        return logits.new_empty(shape, dtype=torch.int64), logits.new_empty(shape, dtype=torch.float32)

    topk_overload, sample_overload = torch.ops.topk.topk.default, torch.ops.topk.sample.default

    def number(value, default):
        return default if value is None else value

    @substitute_in_graph(topk_function, skip_signature_check=True)
    def topk_in_graph(x, k, dim=-1, largest=True, backend=None, *, out=None, copy=False):
        values, indices = topk_overload(x, k, dim, largest)
        return TopK(values, indices)

    @substitute_in_graph(sample_function, skip_signature_check=True)
    def sample_in_graph(logits, temperature=1.0, top_k=None, top_p=None, min_p=None, *, seed=0, offset=0,
                        return_probs=False, backend=None, copy=False):
        seeds = seed if isinstance(seed, Tensor) else None
        offsets = offset if isinstance(offset, Tensor) else None
        tokens, probs = sample_overload(logits, float(number(temperature, 1.0)), int(number(top_k, 0)),
                                        float(number(top_p, 1.0)), float(number(min_p, 0.0)),
                                        0 if seeds is not None else int(seed), 0 if offsets is not None else int(offset),
                                        seeds, offsets)
        return (tokens, probs) if return_probs else tokens

    register.ops = (topk_op, sample_op, topk_in_graph, sample_in_graph)
    return True
