"""Speculative decoding verification: libtopk's topk_chain_speculative_sample, as FlashInfer's
chain_speculative_sampling (the same inputs and outputs), seeded, exactly the target distribution and bit for
bit the same on every backend (topk.h has the exact definition)."""
import ctypes
import types

from ._arrays import kind_of
from ._library import C, Speculative, TopkArgumentError, TopkTypeError
from .sampling import _call, _generator_state

_chain = C["topk_chain_speculative_sample"]


def _dense(x, dtype_name, ndim, name):
    """(kind, dense array, pointer, CUDA device or None) of x, which must have ndim dimensions of dtype_name."""
    kind, a = kind_of(x, name)
    if len(a.shape) != ndim:
        raise TopkArgumentError(f"{name} must have {ndim} dimensions, got shape {tuple(a.shape)}")
    a = kind.contiguous(a)
    code, dtype, cuda, _, _, ptr = kind.describe(a)
    if str(dtype).replace("torch.", "") != dtype_name:
        raise TopkTypeError(f"{name} must be {dtype_name}, got {dtype}")
    return kind, a, ptr, cuda


def chain_speculative_sampling(draft_probs, draft_token_ids, target_probs, *, seed=0, offset=0, backend=None):
    """Verifies each row's chain of S draft tokens against the target model (FlashInfer's
    chain_speculative_sampling): draft_probs (B, S, V) float32, draft_token_ids (B, S) int64, target_probs
    (B, S + 1, V) float32, all NumPy arrays or all tensors on one device. Position j accepts its draft token d
    with probability min(1, p_j(d) / q_j(d)); the first rejection emits a token drawn from
    normalize(max(0, p_j - q_j)) and stops; a row that accepts all S emits a bonus token drawn from p_S.
    Returns (output_token_ids (B, S + 1) int64 with -1 after the emitted tokens, accepted (B,) int64: the
    positions that pass their test each taken on its own, as FlashInfer's "accepted" metric, emitted (B,)
    int64: the draft tokens emitted). seed and offset: one number, or one per row (a request's own
    generator: its result then does not depend on its place in the batch)."""
    kind, q, q_ptr, cuda = _dense(draft_probs, "float32", 3, "draft_probs")
    _, ids, ids_ptr, ids_cuda = _dense(draft_token_ids, "int64", 2, "draft_token_ids")
    _, p, p_ptr, p_cuda = _dense(target_probs, "float32", 3, "target_probs")
    batch, S, vocab = q.shape
    if tuple(ids.shape) != (batch, S) or tuple(p.shape) != (batch, S + 1, vocab):
        raise TopkArgumentError(f"shapes do not agree: draft_probs {tuple(q.shape)}, draft_token_ids "
                                f"{tuple(ids.shape)}, target_probs {tuple(p.shape)} (want (B, S), (B, S + 1, V))")
    if ids_cuda != cuda or p_cuda != cuda:
        raise TopkArgumentError("draft_probs, draft_token_ids and target_probs must be on one device")
    m = types.SimpleNamespace(cuda=cuda, batch=batch, ptr=q_ptr)
    params = Speculative()
    params.seed, params.seeds, seeds = _generator_state(m, seed, "seed")  # owners kept alive until the call returns
    params.offset, params.offsets, offsets = _generator_state(m, offset, "offset")
    tokens = kind.empty((batch, S + 1), (S + 1, 1), kind.int64, cuda)
    accepted, emitted = (kind.empty((batch,), (1,), kind.int64, cuda) for _ in range(2))
    if batch:
        _call(m, backend, _chain, (ids_ptr, p_ptr, batch, S, vocab, ctypes.byref(params)),
              (kind.pointer(tokens), kind.pointer(accepted), kind.pointer(emitted)))
    return tokens, accepted, emitted
