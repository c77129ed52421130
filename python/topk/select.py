"""topk(): torch.topk's call, answered by libtopk's topk_select on the input's own memory."""
import operator
from collections import namedtuple

from ._arrays import Matrix
from ._backends import context
from ._library import C, STATUSES, TOPK_DEVICE_POINTERS, TOPK_SMALLEST, TopkArgumentError, raise_for

TopK = namedtuple("TopK", "values indices")

_select = C["topk_select"]
_BAD_K = STATUSES.index("BAD_K")


def topk(x, k, dim=-1, largest=True, backend=None, *, out=None, copy=False):
    """The k largest (largest=False: smallest) entries along `dim` of x, best first: TopK(values, indices).

    x: a NumPy array (float32, float16, or ml_dtypes' bfloat16) or a PyTorch tensor (float32, float16,
    bfloat16) on the CPU or on a CUDA device; values and int64 indices come back as the same kind of
    array on the same device, shaped like x with `dim` cut to k. Ties go to the smaller index and NaN
    ranks above +inf (libtopk's contract), so every backend gives the same bits.
    backend: None (the environment's choice, see topk._backends), "auto", "cpu", "offload" or "reference".
    out: optional (values, indices) to write into instead of allocating (dense, right shape and dtype,
    same kind and device as x; only with dim=-1).
    copy: x is read in place when its `dim` axis has unit stride and its other axes collapse into rows
    of one stride; any other layout (dim=0 of a row-major matrix, say) raises unless copy=True, which
    makes one contiguous copy first. Outputs for dim != -1 are views of row-major results.
    Values do not carry gradients.
    """
    m = Matrix(x, dim, copy)
    k = operator.index(k)
    if not 0 <= k <= m.vocab:
        raise_for(_BAD_K)
    if out is None:
        values, indices = m.empty(k), m.empty(k, "int64")
        values_ptr, indices_ptr = m.pointer(values), m.pointer(indices)
    else:
        if m.dim != -1:
            raise TopkArgumentError("out= is only accepted with dim=-1")
        values, indices = out
        shape = m.lead + (k,)
        values_ptr = m.check_out(values, shape, m.array.dtype, "out values")
        indices_ptr = m.check_out(indices, shape, m.kind.int64, "out indices")
    if m.batch and k:
        flags = 0 if largest else TOPK_SMALLEST
        if m.cuda is not None:
            flags |= TOPK_DEVICE_POINTERS
            m.wait()
        status = _select(context(backend, m.cuda), m.ptr, m.code, m.batch, m.vocab, m.stride, k, flags, values_ptr,
                         indices_ptr)
        if status:
            raise_for(status)
    if m.dim != -1:
        return TopK(m.restore(values), m.restore(indices))
    return TopK(values, indices)
