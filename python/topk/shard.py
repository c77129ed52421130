"""Vocab-sharded rows over torch.distributed: topk_shard_select and topk_shard_sample (include/topk.h,
"Vocab-sharded rows") with the process group the caller passes, e.g. inside torchrun.

With tensor parallelism each rank holds columns [column_offset, column_offset + n) of every row of the
logits. shard_topk and shard_sample return what topk.topk and topk.sample return on the whole rows, bit for
bit, whatever the number of ranks and the split (empty shards included), with GLOBAL column indices; only
candidates (or integer sums) travel, never the logits. Every rank of the group calls them with the same
batch, dtype, global vocab, k or sampling parameters, largest and root, in the same order as its other
collectives. libtopk agrees on the call first: a call that is wrong on any rank (a k or seed that differs
between ranks, shards that do not tile the row) raises the same error on every rank. Only the checks made
here in Python (an input that is not an array, per-row parameters of the wrong length) raise on the rank
that makes them. A collective that fails raises TOPK_ERR_COMM, with torch's exception as the cause, on
the ranks where it failed; a rank left waiting for a peer that failed early raises it when the group's
timeout (init_process_group's timeout=) ends its own collective.

Two exchanges, one result (exchange=):
  "library" (the default for CPU tensors and NumPy arrays): libtopk's topk_shard_select / topk_shard_sample
      over the group's CPU collectives (gloo; topk._torch_comm), with the agreement above. A group whose only
      backend is NCCL raises TOPK_ERR_UNSUPPORTED.
  "tensors" (the default for CUDA tensors, and the only one for them): torch collectives on the tensors'
      own device (NCCL for CUDA; gloo serves CPU tensors) and topk.topk / topk.sample on torch's current
      stream (topk._shard_tensors). Selection and sampling with a top-k list (greedy, or top_k <= 4096 for
      every row) never wait on the host; other sampling rows gather the whole rows (the logits move, with
      one host synchronisation). There is no agreement step: a call that differs between ranks is not
      detected, and an argument error raises on the rank that makes it while the others wait in the
      collective until the group's timeout.
"""
import ctypes
import operator

from ._arrays import Matrix
from ._backends import context
from ._library import (ALL_RANKS, C, STATUSES, TOPK_DEVICE_POINTERS, TOPK_SMALLEST, Shard, TopkArgumentError,
                       TopkError, raise_for)
from ._torch_comm import TorchComm
from . import _shard_tensors
from .sampling import sampling_params
from .select import TopK

_select, _sample = C["topk_shard_select"], C["topk_shard_sample"]
_UNSUPPORTED, _BAD_SHARDS = STATUSES.index("UNSUPPORTED"), STATUSES.index("BAD_SHARDS")


def shard_topk(x_shard, k, column_offset, global_vocab, *, group=None, root=None, largest=True, backend=None,
               copy=False, exchange=None):
    """The k largest (largest=False: smallest) entries of each whole row, best first, from this rank's shard
    x_shard (..., n) of rows (..., global_vocab) whose columns [column_offset, column_offset + n) it holds:
    TopK(values, indices) with global column indices, equal to topk.topk on the concatenated rows.

    group: the torch.distributed process group (None: the default one). root: None gives the result to every
    rank; a rank of the group receives it alone (the other ranks get None). x_shard is a CUDA tensor, a CPU
    tensor or a NumPy array (float32, float16, bfloat16), read in place (copy as in topk.topk); backend
    selects each shard (None: the environment's choice); exchange as the module's docstring says."""
    m = Matrix(x_shard, -1, copy, "x_shard")
    if _by_tensors(m, exchange):
        k = _checked(m, operator.index(k), column_offset, global_vocab)
        return _shard_tensors.select(m.array, k, operator.index(column_offset), operator.index(global_vocab),
                                     group, root, largest, backend)
    comm = _comm(group)
    k = operator.index(k)
    receives = root is None or root == comm.rank
    values, indices = (m.empty(max(k, 0)), m.empty(max(k, 0), "int64")) if receives else (None, None)
    _call(_select, m, comm, backend, column_offset, global_vocab, (k, 0 if largest else TOPK_SMALLEST), root,
          (values, indices))
    return TopK(values, indices) if receives else None


def shard_sample(logits_shard, column_offset, global_vocab, temperature=1.0, top_k=None, top_p=None, min_p=None, *,
                 seed=0, offset=0, group=None, root=None, return_probs=False, backend=None, copy=False, exchange=None):
    """One token per whole row, drawn from this rank's shard logits_shard (..., n) of logits (...,
    global_vocab) whose columns [column_offset, column_offset + n) it holds: the global token ids (and, with
    return_probs, their float32 probabilities) that topk.sample gives on the concatenated rows with the same
    parameters, seed and offset (see topk.sample; top_k counts over the whole row; per-row values, seeds and
    offsets must be the same on every rank).

    group, root, backend, copy and exchange as in shard_topk: with a root, the other ranks get None."""
    m = Matrix(logits_shard, -1, copy, "logits_shard")
    if _by_tensors(m, exchange):
        _checked(m, 0, column_offset, global_vocab)
        return _shard_tensors.sample(m.array, operator.index(column_offset), operator.index(global_vocab),
                                     (temperature, top_k, top_p, min_p), seed, offset, group, root, return_probs,
                                     backend)
    comm = _comm(group)
    # per_row: the arrays that params points to, alive until the call returns
    params, per_row = sampling_params(m, temperature, top_k, top_p, min_p, seed, offset)
    receives = root is None or root == comm.rank
    tokens = m.empty(None, "int64") if receives else None
    probs = m.empty(None, "float32") if receives and return_probs else None
    _call(_sample, m, comm, backend, column_offset, global_vocab, (ctypes.byref(params), 0), root, (tokens, probs))
    if not receives:
        return None
    return (tokens, probs) if return_probs else tokens


def _by_tensors(m, exchange):
    """Whether the call takes the "tensors" exchange (see the module's docstring)."""
    if exchange not in (None, "library", "tensors"):
        raise TopkArgumentError(f"exchange must be None, 'library' or 'tensors', not {exchange!r}")
    if exchange == "tensors" and m.kind.__class__.__name__ != "_TorchKind":
        raise TopkArgumentError("exchange='tensors' takes torch tensors")
    return exchange == "tensors" or (exchange is None and m.cuda is not None)


def _checked(m, k, column_offset, global_vocab):
    """The checks the "tensors" exchange makes on this rank (the library's agreement is not there): k."""
    column_offset, global_vocab = operator.index(column_offset), operator.index(global_vocab)
    if not 0 <= column_offset or column_offset + m.vocab > global_vocab or not 1 <= global_vocab < 1 << 32:
        raise_for(_BAD_SHARDS, f"columns [{column_offset}, {column_offset + m.vocab}) do not fit a row of "
                               f"{global_vocab} (1 .. 2^32 - 1)")
    if not 0 <= k <= global_vocab:
        raise_for(STATUSES.index("BAD_K"), f"k = {k} is not in 0 .. {global_vocab}")
    return k


def _comm(group):
    """The topk_comm of a process group, refusing one whose collectives cannot take host tensors."""
    import torch.distributed as dist
    if not dist.is_available() or not dist.is_initialized():
        raise TopkError("topk.shard_*: torch.distributed is not initialised (call init_process_group, as "
                           "torchrun's scripts do)")
    if dist.get_backend(group) == "nccl":
        raise_for(_UNSUPPORTED, "the group's backend is NCCL alone, and the vocab-sharded calls of this build "
                                "exchange host buffers: pass a gloo group (torch.distributed.new_group(backend="
                                "'gloo'))")
    return TorchComm(group)


def _call(function, m, comm, backend, column_offset, global_vocab, args, root, outputs):
    """function(ctx, comm, shard, *args with flags last, root, *outputs) on every rank; raises the status that
    every rank returns. CUDA data goes in as device pointers, which libtopk refuses on every rank after the
    agreement (TOPK_ERR_UNSUPPORTED), so that no rank is left waiting. A batch of 0 rows calls nothing."""
    if not m.batch:
        return
    *args, flags = args
    if m.cuda is not None:
        flags |= TOPK_DEVICE_POINTERS
    shard = Shard(m.ptr, m.code, m.batch, m.vocab, m.stride, operator.index(column_offset),
                  operator.index(global_vocab))
    pointers = [None if out is None else m.pointer(out) for out in outputs]
    status = function(context(backend, None), ctypes.byref(comm.table), ctypes.byref(shard), *args, flags,
                      ALL_RANKS if root is None else root, *pointers)
    if status:
        failure = comm.failure
        detail = (f"torch.distributed raised {type(failure).__name__}: {failure}" if failure is not None else
                  "CUDA tensors: this build's vocab-sharded calls read host memory (CPU tensors, gloo)"
                  if status == _UNSUPPORTED and m.cuda is not None else None)
        raise_for(status, detail, failure)
