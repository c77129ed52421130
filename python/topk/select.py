"""topk(): torch.topk's call, answered by libtopk's topk_select on the input's own memory.

The common call (a 2-D NumPy array or torch tensor read in place, dim=-1, with or without a right out=)
is served by the C extension topk._fast when it was built (python/topk/_fast.c: the same checks, the same
allocators, the same steps as topk._cuda.call on CUDA data and the same topk_select, in one C call). topk
is then a C function with _python_topk's arguments and docstring, which hands every call it does not serve
to _python_topk as it came. TOPK_PY_FAST=0 turns the extension off (topk is _python_topk), TOPK_PY_FAST=1
requires it (an ImportError if it is not there), and a path loads that file (the CMake build's, for its tests).
"""
import ctypes
import importlib.util
import operator
import os
import sys
from collections import namedtuple

from . import _backends, _cuda
from ._arrays import Matrix, _by_type, _dense_strides, fast_kind
from ._backends import context
from ._library import C, STATUSES, TOPK_DEVICE_POINTERS, TOPK_SMALLEST, TopkArgumentError, raise_for

TopK = namedtuple("TopK", "values indices")

_select = C["topk_select"]
_BAD_K = STATUSES.index("BAD_K")
_new_tuple = tuple.__new__


def _import_fast(setting):
    if setting in ("", "1"):
        from . import _fast
        return _fast
    spec = importlib.util.spec_from_file_location(__package__ + "._fast", setting)
    if spec is None:
        raise ImportError(f"topk: TOPK_PY_FAST={setting} is neither 0, 1 nor a Python extension module's path")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[spec.name] = module
    return module


def _address(function):
    """A ctypes function's address; 0 for a libtopk without it (topk._fast then leaves CUDA data to Python)."""
    return ctypes.cast(function, ctypes.c_void_p).value if isinstance(function, ctypes._CFuncPtr) else 0


def _fast_path():
    """(topk._fast.topk, the C entry that init() makes), handed what they need, or (None, None) (see the
    module's docstring). topk._fast.topk(x, k, dim, largest, backend, out) is the served call alone: None
    when it does not serve it (the tests compare it with the Python path)."""
    setting = os.environ.get("TOPK_PY_FAST", "")
    if setting == "0" or not isinstance(_select, ctypes._CFuncPtr):  # off, or a libtopk without topk_select
        return None, None
    try:
        fast = _import_fast(setting)
    except ImportError as error:
        if setting:
            raise ImportError(f"topk: TOPK_PY_FAST={setting} but the C fast path cannot be loaded: {error}") from error
        return None, None
    entry = fast.init(ctypes.cast(_select, ctypes.c_void_p).value, _address(_cuda.set_stream),
                      _address(_cuda.last_error), TopK, _backends._contexts, raise_for, fast_kind, _cuda, _python_topk)
    return fast.topk, entry


def _python_topk(x, k, dim=-1, largest=True, backend=None, *, out=None, copy=False):
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
    kind = _by_type.get(type(x))
    rows2d = kind.rows2d(x) if kind is not None and dim == -1 else None
    if rows2d is not None:  # the common case, described in one step
        code, dtype, cuda, lead, batch, vocab, stride, ptr = rows2d
        m = None
    else:
        m = Matrix(x, dim, copy)
        kind, code, dtype, cuda, lead, batch, vocab, stride, ptr = (m.kind, m.code, m.dtype, m.cuda, m.lead, m.batch,
                                                                    m.vocab, m.stride, m.ptr)
    if type(k) is not int:
        k = operator.index(k)
    if not 0 <= k <= vocab:
        raise_for(_BAD_K)
    shape = lead + (k,)
    if out is None:
        values, indices, values_ptr, indices_ptr = kind.empty_pair(shape, (k or 1, 1) if len(shape) == 2 else
                                                                   _dense_strides(shape), dtype, cuda)
    else:
        if m is not None and m.dim != -1:
            raise TopkArgumentError("out= is only accepted with dim=-1")
        values, indices = out
        pointers = kind.out_pointers(values, indices, shape, dtype, cuda)
        if pointers is None:  # the checks one by one, to say which one is wrong, and how
            m = Matrix(x, dim, copy) if m is None else m
            pointers = m.check_out(values, shape, dtype, "out values"), m.check_out(indices, shape, kind.int64,
                                                                                   "out indices")
        values_ptr, indices_ptr = pointers
    if batch and k:
        flags = 0 if largest else TOPK_SMALLEST
        if cuda is None:
            status = _select(context(backend, None), ptr, code, batch, vocab, stride, k, flags, values_ptr, indices_ptr)
            if status:
                raise_for(status)
        else:  # enqueued on torch's current stream (topk._cuda)
            _cuda.call(cuda, _select, context(backend, cuda), ptr, code, batch, vocab, stride, k,
                       flags | TOPK_DEVICE_POINTERS, values_ptr, indices_ptr)
    if m is not None and m.dim != -1:
        return TopK(m.restore(values), m.restore(indices))
    return _new_tuple(TopK, (values, indices))


_fast_topk, topk = _fast_path()
if topk is None:
    topk = _python_topk
