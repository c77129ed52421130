"""Which backend runs a call, and one libtopk context per backend and GPU, made on first use and reused.

backend=None is the environment's choice: TOPK_BACKEND when set (the C library reads it, and it wins
over any backend given, as everywhere in libtopk), else the old module's AIKF_TOPK_IMPL mapped to our
names with a one-line notice on stderr, else "auto". The environment is read when the first context is
made; reset() forgets the contexts and the choice.
"auto" on CUDA data asks for "offload", so that a library or machine without a usable GPU says so
("no usable GPU") instead of "device pointers given to a backend that reads host memory".
"""
import atexit
import ctypes
import os
import sys
import threading

from . import _cuda
from ._library import BACKENDS, C, PARAM_DEVICE, TopkArgumentError, raise_for

# The old module's implementation names, read as ours.
AIKF_NAMES = {
    "auto": "auto", "default": "auto", "torch": "auto",
    "cuda": "offload", "gpu": "offload", "triton": "offload", "flashinfer": "offload", "offload": "offload",
    "cpu": "cpu", "torch-cpu": "cpu", "torch_cpu": "cpu", "numpy": "cpu",
    "reference": "reference", "naive": "reference", "ref": "reference", "python": "reference",
}

_contexts = {}
_choice = []
_lock = threading.Lock()


def environment_choice():
    """The backend name that backend=None stands for (see the module's docstring)."""
    if _choice:
        return _choice[0]
    name = "auto"
    old = os.environ.get("AIKF_TOPK_IMPL", "")
    if not os.environ.get("TOPK_BACKEND") and old:
        name = AIKF_NAMES.get(old.strip().lower())
        if name is None:
            raise TopkArgumentError(f"AIKF_TOPK_IMPL={old!r} is not a known implementation name; set TOPK_BACKEND "
                                    "to auto, cpu, offload or reference instead")
        print(f"topk: AIKF_TOPK_IMPL={old} is read as TOPK_BACKEND={name}", file=sys.stderr)
    _choice.append(name)
    return name


def context(backend, cuda_device):
    """The context for backend (a name or None) on data on the host (cuda_device None) or on a CUDA device."""
    ctx = _contexts.get((backend, cuda_device))
    return ctx if ctx is not None else _create(backend, cuda_device)


def _create(backend, cuda_device):
    name = environment_choice() if backend is None else backend
    if name not in BACKENDS:
        raise TopkArgumentError(f"unknown backend {name!r} (expected auto, cpu, offload or reference)")
    if name == "auto" and cuda_device is not None:
        name = "offload"
    with _lock:
        ctx = _contexts.get((backend, cuda_device))
        if ctx is None:
            ctx = ctypes.c_void_p()
            status = C["topk_ctx_create"](ctypes.byref(ctx), BACKENDS[name])
            if status == 0 and cuda_device:
                status = C["topk_ctx_set_param"](ctx, PARAM_DEVICE, cuda_device)
            if status:
                C["topk_ctx_free"](ctx)
                raise_for(status)
            ctx = _contexts[(backend, cuda_device)] = ctx.value
    return ctx


def backend_name(backend=None, cuda_device=None):
    """The backend that a call with this backend argument runs, after the environment and "auto" are
    resolved: "cpu", "offload" or "reference". cuda_device: None for host data, else the CUDA device index."""
    names = {number: name for name, number in BACKENDS.items()}
    return names[C["topk_ctx_backend"](context(backend, cuda_device))]


def reset():
    """Frees every context (and forgets the streams set on them) and the environment's choice: the next call
    reads the environment again."""
    with _lock:
        for ctx in _contexts.values():
            C["topk_ctx_free"](ctx)
        _contexts.clear()
        _cuda.streams.clear()
        _choice.clear()


# The contexts hold device memory (the offload workspace): give it back before the process ends, so
# that leak checkers (compute-sanitizer's memcheck, LeakSanitizer) see nothing left over.
atexit.register(reset)
