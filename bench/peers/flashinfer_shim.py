"""FlashInfer's top-k and top-k/top-p sampler without the flashinfer package: its own CUDA kernels, compiled
ahead of time into libflashinfer_shim.so (bench/peers/flashinfer_shim/build, shim.cu), called with ctypes.

For a GPU host that cannot install flashinfer-python (100+ MB with its dependencies, no PyPI there). The
kernels and their launch code are FlashInfer's, from the pinned wheel's headers; what FlashInfer does in
Python around them is done here the same way, step for step (flashinfer/topk.py top_k, flashinfer/sampling.py
top_k_top_p_sampling_from_logits), on the current CUDA stream:

    top_k(x, k, sorted=True)   the radix path FlashInfer takes on an H100/H200 (SM90) for sorted=True:
                               TopKDispatch into int32 indices and values, .long(), then torch.sort of the
                               values (descending) and a gather of the indices.
    top_k_top_p_sampling_from_logits(logits, top_k, top_p, filter_apply_order="joint")
                               torch.softmax, .float(), seed and offset taken from torch's CUDA generator as
                               FlashInfer takes them, then its TopKTopPSamplingFromProb kernel; int32 tokens.

Only those paths are here: the calls that FlashInfer would serve with another backend on SM90 (sorted=False
goes to CUB there, filter_apply_order="top_k_first" to a radix top-k and a top-p sampler) raise
NotImplementedError rather than time something FlashInfer would not run.

The library: $TOPK_FLASHINFER_SHIM, else .gpu/flashinfer/libflashinfer_shim.so under the repository root, with
flashinfer-version.txt beside it (what was compiled, from which wheel, with which nvcc, for which arch).
available() says whether it can run here, and why not.
"""
import ctypes
import os

_REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_PATH = os.path.join(_REPO, ".gpu", "flashinfer", "libflashinfer_shim.so")
ROW_STATES_NBYTES = 1024 * 1024  # flashinfer/topk.py _ROW_STATES_NBYTES: RadixRowState scratch

_state = {}  # "lib", "info", "why"
_row_states = {}  # (device index, raw stream) -> zeroed uint8 tensor, as flashinfer's _get_stream_cache_buf


def library_path():
    return os.environ.get("TOPK_FLASHINFER_SHIM") or DEFAULT_PATH


def _read_info(so_path):
    info = {}
    path = os.path.join(os.path.dirname(so_path), "flashinfer-version.txt")
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    info[key] = value
    except OSError as e:
        raise OSError(f"{path}: {e.strerror}") from e
    return info


def _load():
    if "lib" in _state or "why" in _state:
        return _state.get("lib")
    try:
        import torch
    except ImportError as e:
        _state["why"] = f"torch is not installed: {e}"
        return None
    path = library_path()
    if not os.path.isfile(path):
        _state["why"] = (f"{path} does not exist (bench/peers/flashinfer_shim/build OUT_DIR builds it; "
                         f"ci/gpu-pack puts it in .gpu/flashinfer)")
        return None
    try:
        info = _read_info(path)
        lib = ctypes.CDLL(path)
    except OSError as e:
        _state["why"] = f"cannot load {path}: {e}"
        return None
    c = ctypes
    lib.fi_shim_flashinfer_version.restype = c.c_char_p
    lib.fi_shim_flashinfer_version.argtypes = []
    lib.fi_shim_error_string.restype = c.c_char_p
    lib.fi_shim_error_string.argtypes = [c.c_int]
    lib.fi_shim_cuda_arch.restype = c.c_int
    lib.fi_shim_cuda_arch.argtypes = []
    lib.fi_can_implement_filtered_topk.restype = c.c_int
    lib.fi_can_implement_filtered_topk.argtypes = [c.c_int]
    lib.fi_radix_topk.restype = c.c_int
    lib.fi_radix_topk.argtypes = [c.c_int, c.c_void_p, c.c_void_p, c.c_int, c.c_void_p, c.c_void_p, c.c_void_p,
                                  c.c_uint32, c.c_uint32, c.c_uint32, c.c_int, c.c_int, c.c_int, c.c_int]
    lib.fi_top_k_top_p_sampling_from_probs.restype = c.c_int
    lib.fi_top_k_top_p_sampling_from_probs.argtypes = [
        c.c_int, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.c_double, c.c_void_p,
        c.c_double, c.c_uint32, c.c_uint32, c.c_int, c.c_void_p, c.c_uint64, c.c_void_p, c.c_uint64, c.c_uint32,
        c.c_uint32]
    version = lib.fi_shim_flashinfer_version().decode()
    if info.get("flashinfer") != version:
        _state["why"] = f"{path} holds FlashInfer {version} but flashinfer-version.txt says {info.get('flashinfer')}"
        return None
    if not torch.cuda.is_available():
        _state["why"] = "torch sees no CUDA device"
        return None
    arch = lib.fi_shim_cuda_arch()
    major, minor = torch.cuda.get_device_capability()
    if major * 100 + minor * 10 != arch:
        _state["why"] = (f"{path} holds kernels for sm_{arch // 10} ({info.get('arch')}) only; "
                         f"this GPU is sm_{major}{minor}")
        return None
    info["version"] = version
    _state["lib"], _state["info"] = lib, info
    return lib


def available():
    """(True, description) when the shim can run on this host's current GPU, else (False, why not)."""
    return (True, description()) if _load() is not None else (False, _state["why"])


def version():
    """FlashInfer's version that the kernels come from (the pinned wheel's)."""
    _lib()
    return _state["info"]["version"]


def description():
    """What runs, for a CSV note: 'flashinfer 0.7.4 kernels via shim (nvcc 13.0 sm_90a)'."""
    _lib()
    info = _state["info"]
    nvcc = info.get("nvcc", "?").split()[0]
    return f"flashinfer {info['version']} kernels via shim (nvcc {nvcc} {info.get('arch', '?')})"


def _lib():
    lib = _load()
    if lib is None:
        raise RuntimeError(f"flashinfer shim unavailable: {_state['why']}")
    return lib


def _check(status, what):
    if status != 0:
        raise RuntimeError(f"flashinfer shim: {what} failed: {_lib().fi_shim_error_string(status).decode()} ({status})")


def _check_input(torch, t, name):
    # csrc's CHECK_INPUT: a CUDA tensor, contiguous
    if not t.is_cuda:
        raise ValueError(f"{name} must be a CUDA tensor")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous")


def _index(torch, device):
    return device.index if device.index is not None else torch.cuda.current_device()


def _stream(torch, device):
    return torch.cuda.current_stream(device).cuda_stream


def _row_states_buffer(torch, device):
    """flashinfer/topk.py _get_row_states_buffer: under capture a fresh zeroed buffer from the graph's pool
    (its captured memset re-zeroes it on every replay), else the current stream's cached zeroed buffer."""
    if torch.cuda.is_current_stream_capturing():
        return torch.zeros(ROW_STATES_NBYTES, dtype=torch.uint8, device=device)
    key = (_index(torch, device), _stream(torch, device))
    buf = _row_states.get(key)
    if buf is None:
        buf = _row_states[key] = torch.zeros(ROW_STATES_NBYTES, dtype=torch.uint8, device=device)
    return buf


def _dtype_code(torch, dtype):
    codes = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
    if dtype not in codes:
        raise ValueError(f"Unsupported dtype {dtype}, expected float32, float16, or bfloat16")
    return codes[dtype]


def top_k(input, k, sorted=True, deterministic=False, tie_break=0):
    """flashinfer.top_k(input, k, sorted=True, deterministic, tie_break) as FlashInfer 0.7.4 runs it on SM90:
    (values in input's dtype, int64 indices), each batch x k, sorted best first."""
    import torch
    lib = _lib()
    if not sorted:
        raise NotImplementedError("sorted=False: FlashInfer serves it with CUB on SM90, which the shim lacks")
    if input.dim() != 2:
        raise ValueError("input must be 2-D (batch_size, d)")
    _check_input(torch, input, "input")
    code = _dtype_code(torch, input.dtype)
    batch_size, d = input.shape
    device = input.device
    row_states = _row_states_buffer(torch, device)
    output_values = torch.empty(batch_size, k, dtype=input.dtype, device=device)
    output_indices = torch.empty(batch_size, k, dtype=torch.int32, device=device)
    # For deterministic + sorted + k <= 2048: CUDA handles the stable value sort on device.
    sorted_cuda = sorted and deterministic and k <= 2048
    _check(lib.fi_radix_topk(_index(torch, device), _stream(torch, device), input.data_ptr(), code,
                             output_indices.data_ptr(), output_values.data_ptr(), row_states.data_ptr(),
                             batch_size, d, k, int(sorted_cuda), int(deterministic), int(tie_break), 0),
           "radix_topk")
    indices = output_indices.long()
    if sorted and not sorted_cuda:
        sorted_values, sort_indices = torch.sort(output_values, dim=-1, descending=True, stable=deterministic)
        return sorted_values, torch.gather(indices, dim=-1, index=sort_indices)
    return output_values, indices


def _seed_and_offset(torch, increment, generator, device):
    """flashinfer/sampling.py get_seed_and_offset: reserve increment (rounded up to 4) Philox offsets."""
    if generator is None:
        torch.cuda.init()
        generator = torch.cuda.default_generators[_index(torch, device)]
    state = generator.get_state()
    seed, offset = map(int, state.view(torch.int64))
    next_offset = offset + (increment + 3) // 4 * 4
    generator.set_state(torch.tensor([seed, next_offset], dtype=torch.int64, device=torch.device("cpu")).view(torch.uint8))
    return seed, offset


def _rng_arg(torch, value, name, device, batch_size):
    """(pointer or None, scalar, stride) of a seed or offset, with csrc's checks on a tensor."""
    if isinstance(value, torch.Tensor):
        if value.device != device or value.dtype not in (torch.int64, getattr(torch, "uint64", torch.int64)) \
                or value.ndim != 1 or value.size(0) not in (1, batch_size) or not value.is_contiguous():
            raise ValueError(f"{name} tensor must be a contiguous 1-D int64/uint64 tensor on {device} "
                             f"of length 1 or {batch_size}")
        return value.data_ptr(), 0, 1 if value.size(0) > 1 else 0
    return None, int(value) & (2**64 - 1), 0


def top_k_top_p_sampling_from_logits(logits, top_k, top_p, indices=None, filter_apply_order="top_k_first",
                                     deterministic=True, generator=None, check_nan=False, seed=None, offset=None):
    """flashinfer.sampling.top_k_top_p_sampling_from_logits, filter_apply_order="joint" only (FlashInfer's
    default is "top_k_first", a different path): int32 tokens, one per row."""
    import torch
    lib = _lib()
    if filter_apply_order != "joint":
        if filter_apply_order == "top_k_first":
            raise NotImplementedError('filter_apply_order="top_k_first" (radix top-k, then top-p sampling) is '
                                      'not in the shim; pass filter_apply_order="joint"')
        raise ValueError(f"Invalid filter_apply_order: {filter_apply_order}")
    if indices is not None:
        raise NotImplementedError("indices: not in the shim")
    # flashinfer/sampling.py, "joint": softmax in torch, then the probs sampler.
    probs = torch.softmax(logits, dim=-1)
    if check_nan and torch.any(torch.isnan(probs)):
        raise ValueError("Input probs contains NaN.")
    # get_sampling_module().top_k_top_p_sampling_from_probs
    device = probs.device
    probs = probs.float()
    if probs.dim() != 2:
        raise ValueError("logits must be 2-D (batch_size, num_classes)")
    _check_input(torch, probs, "probs")
    batch_size, vocab_size = probs.shape
    out_dtype = torch.int32
    top_k_arr, top_k_val = (top_k.to(out_dtype), 0) if isinstance(top_k, torch.Tensor) else (None, top_k)
    top_p_arr, top_p_val = (top_p.float(), 0) if isinstance(top_p, torch.Tensor) else (None, top_p)
    for name, arr in (("top_k", top_k_arr), ("top_p", top_p_arr)):
        if arr is not None and (arr.device != device or arr.numel() != batch_size or not arr.is_contiguous()):
            raise ValueError(f"{name} tensor must be contiguous, on {device}, with {batch_size} elements")
    samples = torch.empty(batch_size, dtype=out_dtype, device=device)
    valid = torch.empty(batch_size, dtype=torch.bool, device=device)
    if seed is None or offset is None:
        seed, offset = _seed_and_offset(torch, batch_size * 32, generator, device)
    if isinstance(seed, torch.Tensor) != isinstance(offset, torch.Tensor):
        raise ValueError("seed and offset must both be tensors or both be scalars")
    seed_arr, seed_val, seed_stride = _rng_arg(torch, seed, "seed", device, batch_size)
    offset_arr, offset_val, offset_stride = _rng_arg(torch, offset, "offset", device, batch_size)
    _check(lib.fi_top_k_top_p_sampling_from_probs(
        _index(torch, device), _stream(torch, device), probs.data_ptr(), samples.data_ptr(), valid.data_ptr(), None,
        None if top_k_arr is None else top_k_arr.data_ptr(), float(top_k_val),
        None if top_p_arr is None else top_p_arr.data_ptr(), float(top_p_val),
        batch_size, vocab_size, int(deterministic), seed_arr, seed_val, offset_arr, offset_val, seed_stride,
        offset_stride), "top_k_top_p_sampling_from_probs")
    return samples
