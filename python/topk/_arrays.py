"""NumPy arrays and PyTorch tensors as libtopk matrices, without copying.

A Matrix is the input seen as rows: its data pointer, dtype, number of rows, row length (vocab) and row
stride, and the array library ("kind") that allocates the outputs on the input's own device. The axis
that is selected over (`dim`) is moved last; if that axis has unit stride and the other axes collapse
into rows of one stride >= vocab, the input is passed as it is (slices of wider matrices, rows of a
(B, T, V) tensor, ...). Any other layout raises, unless copy=True, which makes one contiguous copy first.
Objects with __cuda_array_interface__ or __dlpack__ (CuPy, JAX, ...) are viewed as torch tensors, zero
copy, and get torch tensors back.

CUDA tensors: libtopk works on libomptarget's own stream and returns when its work is done. So before a
call wait() synchronises torch's current stream (the kernels that made the input, and any that still
use the memory the outputs were just given, have finished); after it the outputs are complete, and later
work on any stream sees them. Calls therefore cannot be captured in a CUDA graph.

This runs on every call, so it is written for speed: one dictionary lookup finds the kind, one method
describes the array, and a 2-D input skips the general layout walk.
"""
import numbers
import sys

from ._library import DTYPES, TopkArgumentError, TopkTypeError


class _NumpyKind:
    def __init__(self, np):
        self.np = np
        # Native byte order only: np.dtype(">f4") neither equals nor hashes like np.dtype("float32").
        self.codes = {np.dtype(name): code for name, code in DTYPES.items() if name != "bfloat16"}
        self.codes.update({dtype: 2 for dtype in _bfloat16_dtypes(np)})
        self.int64, self.float32 = np.dtype("int64"), np.dtype("float32")

    def describe(self, a):
        """(dtype code or None, CUDA device or None, shape, strides in elements, data pointer) of an array."""
        size = a.itemsize
        return (self.codes.get(a.dtype), None, a.shape, [s // size if s % size == 0 else -1 for s in a.strides],
                a.__array_interface__["data"][0])

    def out_pointer(self, out, shape, dtype, cuda):
        """The data pointer of out if it is a dense array of this shape and dtype on this device, else None."""
        if out.dtype == dtype and out.shape == shape and out.flags.c_contiguous:
            return out.__array_interface__["data"][0]
        return None

    def dtype_name(self, a):
        return a.dtype.name if a.dtype.isnative else "non-native byte order " + a.dtype.str

    def pointer(self, a):
        return a.__array_interface__["data"][0]

    def empty(self, like, shape, dtype, cuda):
        return self.np.empty(shape, dtype)

    def move(self, a, source, destination):
        return self.np.moveaxis(a, source, destination)

    def contiguous(self, a):
        return self.np.ascontiguousarray(a)


def _bfloat16_dtypes(np):
    """bfloat16 as NumPy knows it when ml_dtypes (JAX's) is loaded."""
    ml_dtypes = sys.modules.get("ml_dtypes")
    return [np.dtype(ml_dtypes.bfloat16)] if ml_dtypes is not None else []


class _TorchKind:
    def __init__(self, torch):
        self.torch = torch
        self.codes = {getattr(torch, name): code for name, code in DTYPES.items()}
        self.int64, self.float32 = torch.int64, torch.float32

    def describe(self, a):
        if a.is_cuda:
            cuda = a.get_device()
        elif a.is_cpu:
            cuda = None
        else:
            raise TopkArgumentError(f"tensor on device {a.device}: libtopk reads CPU and CUDA tensors only")
        return self.codes.get(a.dtype), cuda, a.shape, a.stride(), a.data_ptr()

    def out_pointer(self, out, shape, dtype, cuda):
        if (out.dtype == dtype and out.shape == shape and out.is_contiguous()
                and out.get_device() == (-1 if cuda is None else cuda)):
            return out.data_ptr()
        return None

    def dtype_name(self, a):
        return str(a.dtype).replace("torch.", "")

    def pointer(self, a):
        return a.data_ptr()

    def empty(self, like, shape, dtype, cuda):
        if cuda is None:
            return self.torch.empty(shape, dtype=dtype)
        return self.torch.empty(shape, dtype=dtype, device=like.device)

    def move(self, a, source, destination):
        return a.movedim(source, destination)

    def contiguous(self, a):
        return a.contiguous()


_by_type = {}  # exact type (ndarray, Tensor, Parameter, ...) -> its kind, one kind object per library
_kinds = {}


def _kind(make, module):
    kind = _kinds.get(make)
    if kind is None:
        kind = _kinds[make] = make(module)
    return kind


def kind_of(x, name="x"):
    """(kind, array): the array library of x, and x itself or a zero-copy torch view of a foreign array."""
    kind = _by_type.get(type(x))
    if kind is not None:
        return kind, x
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    if numpy is not None and isinstance(x, numpy.ndarray):
        kind = _by_type[type(x)] = _kind(_NumpyKind, numpy)
        return kind, x
    if torch is not None and isinstance(x, torch.Tensor):
        kind = _by_type[type(x)] = _kind(_TorchKind, torch)
        return kind, x
    if hasattr(x, "__cuda_array_interface__") or hasattr(x, "__dlpack__"):
        try:
            import torch
        except ImportError:
            raise TopkTypeError(f"{name}: {type(x).__name__} is read through torch, which is not installed") from None
        view = torch.as_tensor(x, device="cuda") if hasattr(x, "__cuda_array_interface__") else torch.from_dlpack(x)
        return kind_of(view, name)
    raise TopkTypeError(f"{name} must be a NumPy array or a PyTorch tensor (or expose __cuda_array_interface__ "
                        f"or __dlpack__), not {type(x).__name__}")


class Matrix:
    """The input as rows; see the module's docstring."""
    __slots__ = ("kind", "array", "code", "ptr", "lead", "batch", "vocab", "stride", "cuda", "dim")

    def __init__(self, x, dim=-1, copy=False, name="x"):
        kind = _by_type.get(type(x))
        if kind is None:
            kind, x = kind_of(x, name)
        code, cuda, shape, strides, ptr = kind.describe(x)
        if code is None:
            raise TopkTypeError(f"{name} has dtype {kind.dtype_name(x)}: libtopk reads float32, float16 and bfloat16")
        ndim = len(shape)
        if dim != -1 or ndim != 2:
            x, shape, strides, ptr, dim = _move_last(kind, x, dim, shape, strides, ptr, name)
        rows, vocab = (shape[0], shape[1]) if ndim == 2 else (None, shape[-1])
        if rows is not None and (strides[1] == 1 or vocab <= 1) and (strides[0] >= vocab or rows <= 1):
            stride = strides[0] if rows > 1 else vocab  # a 2-D matrix, by far the most common input
        else:
            stride = _row_stride(shape, strides)
        if stride is None:
            if not copy:
                raise TopkArgumentError(
                    f"{name} with shape {tuple(shape)} and element strides {tuple(strides)} (dim moved last) is "
                    "not rows of unit-stride elements: pass copy=True to let topk copy it, or make it contiguous")
            x = kind.contiguous(x)
            stride, ptr = vocab, kind.pointer(x)
        if rows is None:
            rows = 1
            for n in shape[:-1]:
                rows *= n
        self.kind, self.array, self.code, self.cuda, self.dim = kind, x, code, cuda, dim
        self.lead, self.batch, self.vocab, self.stride, self.ptr = tuple(shape)[:-1], rows, vocab, stride, ptr

    def empty(self, last=None, dtype=None):
        """An output of the input's kind and device: shape lead + (last,), or lead when last is None;
        dtype None is the input's own, else "int64" or "float32"."""
        dtype = self.array.dtype if dtype is None else getattr(self.kind, dtype)
        return self.kind.empty(self.array, self.lead if last is None else self.lead + (last,), dtype, self.cuda)

    def pointer(self, out):
        return self.kind.pointer(out)

    def restore(self, out):
        """An output whose last axis stands for `dim`, with that axis moved back where dim was (a view)."""
        return out if self.dim == -1 else self.kind.move(out, -1, self.dim)

    def wait(self):
        """Before a call on CUDA data: synchronise torch's current stream on the input's device."""
        if self.cuda is not None:
            self.kind.torch.cuda.current_stream(self.cuda).synchronize()

    def check_out(self, out, shape, dtype, name):
        """The pointer of a caller's output array, which must be of the input's kind and device, dense, and
        of this shape and dtype (objects of the input's kind)."""
        kind = self.kind
        pointer = kind.out_pointer(out, shape, dtype, self.cuda) if _by_type.get(type(out)) is kind else None
        if pointer is None:
            raise TopkArgumentError(f"{name} must be a dense {type(self.array).__name__} of shape {tuple(shape)} and "
                                    f"dtype {dtype} on the input's device, not a {type(out).__name__} of shape "
                                    f"{tuple(getattr(out, 'shape', ()))} and dtype {getattr(out, 'dtype', None)} "
                                    "(or not dense, or elsewhere)")
        return pointer

    def per_row(self, value, default, ctype, name):
        """A sampling parameter given for the call (a number, or None for `default`) or per row (a sequence
        or 1-D array of batch values): (scalar, host ctypes array or None)."""
        if value is None:
            return default, None
        if getattr(value, "ndim", None) == 0:  # a NumPy scalar or a 0-d tensor
            value = value.item()
        if isinstance(value, numbers.Number):
            return value, None
        values = value.tolist() if hasattr(value, "tolist") else list(value)
        if len(values) != self.batch or any(isinstance(v, list) for v in values):
            raise TopkArgumentError(f"{name} per row must hold one value per row ({self.batch}), got {len(values)}")
        return default, (ctype * self.batch)(*values)


def _move_last(kind, x, dim, shape, strides, ptr, name):
    """x with axis `dim` moved last (a view), its shape, strides and pointer, and dim as a negative axis number."""
    ndim = len(shape)
    if ndim == 0:
        raise TopkArgumentError(f"{name} is a scalar: it needs at least one dimension")
    if not -ndim <= dim < ndim:
        raise TopkArgumentError(f"dim {dim} is out of range for {name} with {ndim} dimensions")
    dim = dim % ndim - ndim
    if dim != -1:
        x = kind.move(x, dim, -1)
        _, _, shape, strides, ptr = kind.describe(x)
    return x, shape, strides, ptr, dim


def _row_stride(shape, strides):
    """The row stride (in elements) if the last axis has unit stride and the leading axes collapse into
    rows of one stride >= the row length, else None."""
    vocab = shape[-1]
    if vocab > 1 and strides[-1] != 1:
        return None
    stride = expected = None
    for i in range(len(shape) - 2, -1, -1):
        if shape[i] == 1:
            continue
        if stride is None:
            stride = expected = strides[i]
        elif strides[i] != expected:
            return None
        expected *= shape[i]
    if stride is None:
        return vocab
    return stride if stride >= vocab else None
