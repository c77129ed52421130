"""NumPy arrays and PyTorch tensors as libtopk matrices, without copying.

A Matrix is the input seen as rows: its data pointer, dtype, number of rows, row length (vocab) and row
stride, and the array library ("kind") that allocates the outputs on the input's own device. The axis
that is selected over (`dim`) is moved last; if that axis has unit stride and the other axes collapse
into rows of one stride >= vocab, the input is passed as it is (slices of wider matrices, rows of a
(B, T, V) tensor, ...). Any other layout raises, unless copy=True, which makes one contiguous copy first.
Objects with __cuda_array_interface__ or __dlpack__ (CuPy, JAX, ...) are viewed as torch tensors, zero
copy, and get torch tensors back.

CUDA tensors: outputs are allocated by torch on the input's device, from its current stream there, the
stream that topk._cuda.call then enqueues the library's call on (so they need no record_stream).

This runs on every call, so it is written for speed: one dictionary lookup finds the kind, one method
describes the array, a 2-D input skips the general layout walk, outputs are one allocation each (torch's
lower-overhead _empty_strided_cpu / _empty_strided_cuda where this torch has them), and the checks that
fail fast come first.
"""
import ctypes
import numbers
import sys

from ._library import DTYPES, TopkArgumentError, TopkTypeError

_addressof, _from_buffer = ctypes.addressof, ctypes.c_char.from_buffer


def _numpy_pointer(a):
    """The data pointer of a NumPy array: through the buffer protocol when the array is writable,
    C-contiguous and not empty (0.25 us), else through __array_interface__ (0.7 us, a new dict)."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.__array_interface__["data"][0]


def _dense_strides(shape):
    """Row-major strides in elements of a dense array of this shape (torch's: sizes of 0 count as 1)."""
    if len(shape) == 2:
        return (shape[1], 1)
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n if n > 1 else 1
    return tuple(reversed(strides))


class _NumpyKind:
    def __init__(self, np):
        self.np = np
        # Native byte order only: np.dtype(">f4") neither equals nor hashes like np.dtype("float32").
        self.codes = {np.dtype(name): code for name, code in DTYPES.items() if name != "bfloat16"}
        self.codes.update({dtype: 2 for dtype in _bfloat16_dtypes(np)})
        self.int64, self.float32 = np.dtype("int64"), np.dtype("float32")

    def describe(self, a):
        """(dtype code or None, dtype, CUDA device or None, shape, strides in elements, data pointer) of an
        array; a stride that is not a whole number of elements is -1 (never read in place)."""
        dtype, size, strides = a.dtype, a.itemsize, a.strides
        if len(strides) == 2 and not (strides[0] % size or strides[1] % size):
            strides = (strides[0] // size, strides[1] // size)
        else:
            strides = tuple(s // size if s % size == 0 else -1 for s in strides)
        return self.codes.get(dtype), dtype, None, a.shape, strides, _numpy_pointer(a)

    def rows2d(self, a):
        """(code, dtype, cuda, lead, rows, vocab, stride, pointer) of a 2-D array of a dtype libtopk reads
        whose rows it reads in place (the common case, described in one step); None for anything else,
        which Matrix then describes, or refuses with the reason."""
        strides = a.strides
        if len(strides) != 2:
            return None
        dtype = a.dtype
        code = self.codes.get(dtype)
        if code is None:
            return None
        size, (rows, vocab) = a.itemsize, a.shape
        if (strides[1] == size or vocab <= 1) and (strides[0] >= vocab * size or rows <= 1) and not strides[0] % size:
            return code, dtype, None, (rows,), rows, vocab, (strides[0] // size if rows > 1 else vocab), _numpy_pointer(a)
        return None

    def out_pointer(self, out, shape, dtype, cuda):
        """The data pointer of out if it is a dense array of this shape and dtype on this device, else None."""
        if out.dtype == dtype and out.shape == shape and out.flags.c_contiguous:
            return _numpy_pointer(out)
        return None

    def out_pointers(self, values, indices, shape, dtype, cuda):
        """The pointers of out=(values, indices) when both are dense arrays of this kind and device, of this
        shape, and of dtypes (dtype, int64); else None."""
        if _by_type.get(type(values)) is not self or _by_type.get(type(indices)) is not self:
            return None
        values_ptr = self.out_pointer(values, shape, dtype, cuda)
        indices_ptr = self.out_pointer(indices, shape, self.int64, cuda)
        return None if values_ptr is None or indices_ptr is None else (values_ptr, indices_ptr)

    def dtype_name(self, a):
        return a.dtype.name if a.dtype.isnative else "non-native byte order " + a.dtype.str

    pointer = staticmethod(_numpy_pointer)

    def empty(self, shape, strides, dtype, cuda):
        return self.np.empty(shape, dtype)

    def empty_pair(self, shape, strides, dtype, cuda):
        """Dense (values of dtype, int64 indices) of this shape, and their pointers."""
        empty = self.np.empty
        values, indices = empty(shape, dtype), empty(shape, self.int64)
        return values, indices, _numpy_pointer(values), _numpy_pointer(indices)

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
        # torch.empty costs ~1-2 us of argument parsing per call; torch 2's _empty_strided_cpu/_cuda (what
        # compiled graphs allocate with) skip it. _empty_strided_cuda allocates on the current device only.
        guards = getattr(getattr(torch._C, "_dynamo", None), "guards", None)
        self.empty_cpu = getattr(guards, "_empty_strided_cpu", None)
        self.empty_cuda = getattr(guards, "_empty_strided_cuda", None)
        self.current_device = getattr(torch._C, "_cuda_getDevice", None)
        if self.current_device is None:
            self.empty_cuda = None
        self.devices = {}  # CUDA device index -> torch.device, made once

    def describe(self, a):
        if a.is_cuda:
            cuda = a.get_device()
        elif a.is_cpu:
            cuda = None
        else:
            raise TopkArgumentError(f"tensor on device {a.device}: libtopk reads CPU and CUDA tensors only")
        dtype = a.dtype
        return self.codes.get(dtype), dtype, cuda, a.shape, a.stride(), a.data_ptr()

    def rows2d(self, a):
        """As _NumpyKind.rows2d: a 2-D CPU or CUDA tensor read in place, described in one step, else None."""
        shape = a.shape
        if len(shape) != 2:
            return None
        if a.is_cuda:
            cuda = a.get_device()
        elif a.is_cpu:
            cuda = None
        else:
            return None
        dtype = a.dtype
        code = self.codes.get(dtype)
        if code is None:
            return None
        rows, vocab = shape
        stride, unit = a.stride()
        if (unit == 1 or vocab <= 1) and (stride >= vocab or rows <= 1):
            return code, dtype, cuda, (rows,), rows, vocab, (stride if rows > 1 else vocab), a.data_ptr()
        return None

    def out_pointer(self, out, shape, dtype, cuda):
        if (out.dtype == dtype and out.shape == shape and (out.is_cpu if cuda is None else out.is_cuda and
                                                           out.get_device() == cuda) and out.is_contiguous()):
            return out.data_ptr()
        return None

    def out_pointers(self, values, indices, shape, dtype, cuda):
        """As _NumpyKind.out_pointers."""
        if _by_type.get(type(values)) is not self or _by_type.get(type(indices)) is not self:
            return None
        if cuda is None:
            if not (values.is_cpu and indices.is_cpu):
                return None
        elif not (values.is_cuda and indices.is_cuda and values.get_device() == cuda and indices.get_device() == cuda):
            return None
        if (values.dtype == dtype and indices.dtype == self.int64 and values.shape == shape and indices.shape == shape
                and values.is_contiguous() and indices.is_contiguous()):
            return values.data_ptr(), indices.data_ptr()
        return None

    def dtype_name(self, a):
        return str(a.dtype).replace("torch.", "")

    def pointer(self, a):
        return a.data_ptr()

    def empty(self, shape, strides, dtype, cuda):
        """A dense tensor of shape (a tuple of ints; strides: its dense strides) on the CPU (cuda None) or on
        that CUDA device."""
        if cuda is None:
            if self.empty_cpu is not None:
                return self.empty_cpu(shape, strides, dtype)
            return self.torch.empty(shape, dtype=dtype)
        if self.empty_cuda is not None and self.current_device() == cuda:
            return self.empty_cuda(shape, strides, dtype)
        return self.torch.empty(shape, dtype=dtype, device=self._device(cuda))

    def empty_pair(self, shape, strides, dtype, cuda):
        """Dense (values of dtype, int64 indices) of this shape on the device, and their pointers."""
        if cuda is None:
            empty = self.empty_cpu
            if empty is not None:
                values, indices = empty(shape, strides, dtype), empty(shape, strides, self.int64)
            else:
                empty = self.torch.empty
                values, indices = empty(shape, dtype=dtype), empty(shape, dtype=self.int64)
        elif self.empty_cuda is not None and self.current_device() == cuda:
            empty = self.empty_cuda
            values, indices = empty(shape, strides, dtype), empty(shape, strides, self.int64)
        else:
            device, empty = self._device(cuda), self.torch.empty
            values, indices = empty(shape, dtype=dtype, device=device), empty(shape, dtype=self.int64, device=device)
        return values, indices, values.data_ptr(), indices.data_ptr()

    def _device(self, cuda):
        device = self.devices.get(cuda)
        if device is None:
            device = self.devices[cuda] = self.torch.device("cuda", cuda)
        return device

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


def fast_kind(type_):
    """The kind of an exact type that topk() has met, as topk._fast reads it once per type: (kind, is torch,
    ((dtype, code), ...), int64, empty_pair, the allocator for host data, the one for CUDA data (or None),
    current_device (or None)); None for a type not met yet, which the Python path then registers."""
    kind = _by_type.get(type_)
    if isinstance(kind, _TorchKind):
        return (kind, True, tuple(kind.codes.items()), kind.int64, kind.empty_pair, kind.empty_cpu, kind.empty_cuda,
                kind.current_device)
    if isinstance(kind, _NumpyKind):
        return kind, False, tuple(kind.codes.items()), kind.int64, kind.empty_pair, kind.np.empty, None, None
    return None


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
    """The input as rows; see the module's docstring. lead: the output's leading shape (a tuple)."""
    __slots__ = ("kind", "array", "code", "dtype", "ptr", "lead", "batch", "vocab", "stride", "cuda", "dim")

    def __init__(self, x, dim=-1, copy=False, name="x"):
        kind = _by_type.get(type(x))
        if kind is None:
            kind, x = kind_of(x, name)
        if dim == -1:  # a 2-D matrix read in place over its rows, by far the most common input
            rows2d = kind.rows2d(x)
            if rows2d is not None:
                self.code, self.dtype, self.cuda, self.lead, self.batch, self.vocab, self.stride, self.ptr = rows2d
                self.kind, self.array, self.dim = kind, x, -1
                return
        code, dtype, cuda, shape, strides, ptr = kind.describe(x)
        if code is None:
            raise TopkTypeError(f"{name} has dtype {kind.dtype_name(x)}: libtopk reads float32, float16 and bfloat16")
        x, shape, strides, ptr, dim = _move_last(kind, x, dim, shape, strides, ptr, name)
        stride = _row_stride(shape, strides)
        lead, vocab = tuple(shape[:-1]), shape[-1]
        rows = 1
        for n in lead:
            rows *= n
        if stride is None:
            if not copy:
                raise TopkArgumentError(
                    f"{name} with shape {tuple(shape)} and element strides {tuple(strides)} (dim moved last) is "
                    "not rows of unit-stride elements: pass copy=True to let topk copy it, or make it contiguous")
            x = kind.contiguous(x)
            stride, ptr = vocab, kind.pointer(x)
        self.kind, self.array, self.code, self.dtype, self.cuda, self.dim = kind, x, code, dtype, cuda, dim
        self.lead, self.batch, self.vocab, self.stride, self.ptr = lead, rows, vocab, stride, ptr

    def empty(self, last=None, dtype=None):
        """An output of the input's kind and device: shape lead + (last,), or lead when last is None;
        dtype None is the input's own, else "int64" or "float32"."""
        shape = self.lead if last is None else self.lead + (last,)
        return self.kind.empty(shape, _dense_strides(shape), self.dtype if dtype is None else getattr(self.kind, dtype),
                               self.cuda)

    def pointer(self, out):
        return self.kind.pointer(out)

    def restore(self, out):
        """An output whose last axis stands for `dim`, with that axis moved back where dim was (a view)."""
        return out if self.dim == -1 else self.kind.move(out, -1, self.dim)

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
        """A sampling parameter given for the call (a number, or None for `default`) or per row (a sequence,
        1-D array or tensor of batch values): (scalar, address of the per-row values or None, their owner,
        to keep alive until the call returns). The values go where the data is: a host array for host
        data; for CUDA data a tensor on its device, read by the kernel (libtopk_sampling's arrays follow
        TOPK_DEVICE_POINTERS), so a CUDA graph replays whatever that tensor holds."""
        if value is None:
            return default, None, None
        if type(value) is float or type(value) is int:
            return value, None, None
        if getattr(value, "ndim", None) == 0:  # a NumPy scalar or a 0-d tensor
            value = value.item()
        if isinstance(value, numbers.Number):
            return value, None, None
        if self.cuda is not None:
            tensor = _per_row_on_device(value, ctype, self.batch, self.cuda, name)
            return default, tensor.data_ptr(), tensor
        if getattr(value, "is_cuda", False):
            raise TopkArgumentError(f"{name} per row is on a CUDA device but the data is not")
        values = value.tolist() if hasattr(value, "tolist") else list(value)
        if len(values) != self.batch or any(isinstance(v, list) for v in values):
            raise TopkArgumentError(f"{name} per row must hold one value per row ({self.batch}), got {len(values)}")
        array = (ctype * self.batch)(*values)
        return default, ctypes.addressof(array), array


def _per_row_on_device(value, ctype, batch, device, name):
    """Per-row values for CUDA data as a contiguous tensor of batch float32 (int64 for ctype c_int64) on
    cuda:device. A CUDA tensor is used as it is (converted on the device, on torch's current stream, if
    its dtype or layout differ); host values are copied through pinned memory without a host wait, which
    a CUDA graph cannot hold: refused in a capture (STREAM_CAPTURING), as libtopk refuses host values."""
    import torch
    dtype = torch.int64 if ctype is ctypes.c_int64 else torch.float32
    if isinstance(value, torch.Tensor) and value.is_cuda:
        if value.device.index != device or tuple(value.shape) != (batch,):
            raise TopkArgumentError(f"{name} per row must be {batch} values on cuda:{device}, not a tensor of shape "
                                    f"{tuple(value.shape)} on {value.device}")
        return value.to(dtype).contiguous()
    if torch.cuda.is_current_stream_capturing():
        from ._library import STATUSES, raise_for
        raise_for(STATUSES.index("STREAM_CAPTURING"), f"{name} per row from host memory")
    values = value.tolist() if hasattr(value, "tolist") else list(value)
    if len(values) != batch or any(isinstance(v, list) for v in values):
        raise TopkArgumentError(f"{name} per row must hold one value per row ({batch}), got {len(values)}")
    staged = torch.tensor(values, dtype=dtype).pin_memory()
    return staged.to(f"cuda:{device}", non_blocking=True)


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
        _, _, _, shape, strides, ptr = kind.describe(x)
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
