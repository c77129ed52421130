"""Finds and loads libtopk.so, declares the C prototypes of include/topk.h, and turns statuses into exceptions.

Which library: $TOPK_LIBRARY when set (a path, e.g. .gpu/bin/libtopk.so on the GPU host), else the copy
that `pip install ./python` built into this package, else an installed libtopk of this package's version
(libtopk.so.0.MINOR before 1.0, libtopk.so.MAJOR after) on the loader's path.
Nothing is compiled here: a missing library is an ImportError that says where it looked.
"""
import ctypes
import os
from pathlib import Path

TOPK_SMALLEST = 1
TOPK_DEVICE_POINTERS = 2
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}
BACKENDS = {"auto": 0, "cpu": 1, "offload": 2, "reference": 3}
PARAM_DEVICE = 1
# The package's version and the SONAME of the libtopk it loads from the system (CMakeLists.txt's rule).
VERSION = (0, 3, 0)
SONAME_VERSION = f"0.{VERSION[1]}" if VERSION[0] == 0 else str(VERSION[0])

# topk_status in the order of the enum; those in _ARGUMENT_STATUSES mean "the caller passed something
# wrong" (a ValueError), the others are runtime failures.
STATUSES = ("OK", "NULL_POINTER", "BAD_SHAPE", "BAD_K", "BAD_STRIDE", "BAD_DTYPE", "BAD_BACKEND", "BAD_ENV",
            "BAD_PARAM", "NO_DEVICE", "BAD_MEMORY", "OUT_OF_MEMORY", "DEVICE_FAILURE", "BAD_SAMPLING",
            "STREAM_CAPTURING", "COMM", "BAD_SHARDS", "UNSUPPORTED")
_ARGUMENT_STATUSES = {STATUSES.index(name) for name in ("NULL_POINTER", "BAD_SHAPE", "BAD_K", "BAD_STRIDE", "BAD_DTYPE",
                                                        "BAD_BACKEND", "BAD_ENV", "BAD_PARAM", "BAD_MEMORY",
                                                        "BAD_SAMPLING", "BAD_SHARDS")}


class TopkError(RuntimeError):
    """An error of libtopk: `status` is the C library's topk_status number and `status_name` its name without
    TOPK_ERR_ ("BAD_K"); both None for the checks made in Python."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status
        self.status_name = None if status is None else STATUSES[status] if status < len(STATUSES) else str(status)


class TopkArgumentError(TopkError, ValueError):
    """A bad argument: shape, k, layout, device, backend name or environment value."""


class TopkTypeError(TopkError, TypeError):
    """An input of a type or dtype that libtopk does not read."""


def _candidates():
    explicit = os.environ.get("TOPK_LIBRARY")
    if explicit:
        return [explicit]
    bundled = Path(__file__).with_name("libtopk.so")
    return ([str(bundled)] if bundled.exists() else []) + [f"libtopk.so.{SONAME_VERSION}"]


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as error:
            tried.append(f"{path}: {error}")
    raise ImportError("topk: cannot load libtopk (set TOPK_LIBRARY=/path/to/libtopk.so, or pip install ./python "
                      "to build it into the package); tried " + "; ".join(tried))


lib = _load()

_i64, _ptr, _int, _uint, _float = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_float


class Sampling(ctypes.Structure):
    """struct topk_sampling."""
    _fields_ = [("temperature", _float), ("top_k", _i64), ("top_p", _float), ("min_p", _float),
                ("temperatures", _ptr), ("top_ks", _ptr), ("top_ps", _ptr), ("min_ps", _ptr),
                ("seed", ctypes.c_uint64), ("offset", ctypes.c_uint64), ("seeds", _ptr), ("offsets", _ptr),
                ("max_top_k", ctypes.c_int64)]


class Logprobs(ctypes.Structure):
    """struct topk_logprobs."""
    _fields_ = [("raw", _ptr), ("processed", _ptr), ("top_n", _i64), ("top_tokens", _ptr), ("top_logprobs", _ptr)]


class Speculative(ctypes.Structure):
    """struct topk_speculative."""
    _fields_ = [("seed", ctypes.c_uint64), ("offset", ctypes.c_uint64), ("seeds", _ptr), ("offsets", _ptr)]


# topk_comm's ops (include/topk.h): every one returns 0 on success; the last argument is the CUDA stream.
ALLGATHER = ctypes.CFUNCTYPE(_int, _ptr, _ptr, _ptr, ctypes.c_size_t, _ptr)
GATHER = ctypes.CFUNCTYPE(_int, _ptr, _ptr, _ptr, ctypes.c_size_t, _int, _ptr)
ALLREDUCE_U64 = ctypes.CFUNCTYPE(_int, _ptr, _ptr, _ptr, ctypes.c_size_t, _int, _ptr)
COMM_SUM, COMM_MAX = 0, 1  # topk_comm_reduce
ALL_RANKS = -1  # TOPK_ALL_RANKS


class Comm(ctypes.Structure):
    """struct topk_comm: a communicator as a table of collectives."""
    _fields_ = [("handle", _ptr), ("rank", _int), ("size", _int), ("device_buffers", _int),
                ("allgather", ALLGATHER), ("gather", GATHER), ("allreduce_u64", ALLREDUCE_U64)]


class Shard(ctypes.Structure):
    """struct topk_shard: one rank's columns of a batch x global_vocab matrix."""
    _fields_ = [("data", _ptr), ("dtype", _int), ("batch", _i64), ("vocab", _i64), ("row_stride", _i64),
                ("column_offset", _i64), ("global_vocab", _i64)]


_PROTOTYPES = {
    "topk_version_string": (ctypes.c_char_p, []),
    "topk_strerror": (ctypes.c_char_p, [_int]),
    "topk_ctx_create": (_int, [ctypes.POINTER(_ptr), _int]),
    "topk_ctx_free": (None, [_ptr]),
    "topk_ctx_backend": (_int, [_ptr]),
    "topk_ctx_set_param": (_int, [_ptr, _int, _i64]),
    "topk_ctx_set_stream": (_int, [_ptr, _ptr]),
    "topk_ctx_last_error": (ctypes.c_char_p, [_ptr]),
    "topk_select": (_int, [_ptr, _ptr, _int, _i64, _i64, _i64, _i64, _uint, _ptr, _ptr]),
    "topk_sampling_default": (Sampling, []),
    "topk_sample": (_int, [_ptr, _ptr, _int, _i64, _i64, _i64, ctypes.POINTER(Sampling), _uint, _ptr, _ptr]),
    "topk_sample_logprobs": (_int, [_ptr, _ptr, _int, _i64, _i64, _i64, ctypes.POINTER(Sampling), _uint, _ptr, _ptr,
                                    ctypes.POINTER(Logprobs)]),
    "topk_softmax": (_int, [_ptr, _ptr, _int, _i64, _i64, _i64, _float, _ptr, _uint, _ptr]),
    "topk_top_k_renorm_probs": (_int, [_ptr, _ptr, _i64, _i64, _i64, _i64, _ptr, _uint, _ptr]),
    "topk_top_p_renorm_probs": (_int, [_ptr, _ptr, _i64, _i64, _i64, _float, _ptr, _uint, _ptr]),
    "topk_top_k_mask_logits": (_int, [_ptr, _ptr, _int, _i64, _i64, _i64, _i64, _ptr, _uint, _ptr]),
    "topk_chain_speculative_sample": (_int, [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _i64, ctypes.POINTER(Speculative),
                                             _uint, _ptr, _ptr, _ptr]),
    "topk_shard_select": (_int, [_ptr, ctypes.POINTER(Comm), ctypes.POINTER(Shard), _i64, _uint, _int, _ptr, _ptr]),
    "topk_shard_sample": (_int, [_ptr, ctypes.POINTER(Comm), ctypes.POINTER(Shard), ctypes.POINTER(Sampling), _uint,
                                 _int, _ptr, _ptr]),
}


def _missing(name):
    def call(*_):
        raise TopkError(f"this libtopk ({lib._name}) has no {name}: it was built before that function existed")
    return call


def _bind():
    functions = {}
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            functions[name] = _missing(name)
            continue
        function.restype, function.argtypes = restype, argtypes
        functions[name] = function
    return functions


C = _bind()
version = C["topk_version_string"]().decode()


def raise_for(status, detail=None, cause=None):
    """Raises the exception for a non-zero topk_status, with the library's own message, followed by detail when
    given (the driver's message after a DEVICE_FAILURE of a call on a stream: topk._cuda), from cause (the
    exception behind a COMM status: topk.shard)."""
    message = C["topk_strerror"](status).decode()
    if detail:
        message = f"{message}: {detail}"
    raise (TopkArgumentError if status in _ARGUMENT_STATUSES else TopkError)(f"libtopk: {message}", status) from cause
