"""Sampling over rows of logits: libtopk's topk_sample and its building blocks, plus the calls of the old
module (sample_logits) and of nanochat (sample_next_token) on top of them.

Every parameter that libtopk takes per row (temperature, top_k, top_p, min_p) is either one number for
the call or a sequence / 1-D array / tensor of one value per row. On host data the values are read on the
host; on CUDA data they are a tensor on the logits' device read by the kernel alone (a CUDA tensor is used
as it is; host values are copied there first). The CUDA calls are enqueued on torch's current stream
(topk._cuda) with no host wait and can be captured in a CUDA graph, which then replays with whatever the
per-row tensors hold; per-row values in host memory cannot be captured (STREAM_CAPTURING).
Draws are Philox-4x32-10 under (seed, offset): the same seed, offset and logits give the same tokens on
every backend; advance offset between the steps of a decode loop, or let seed=None draw a fresh seed.
seed and offset may also be given per row (one uint64 per row: a request's own generator, so that its
token does not depend on its place in the batch). On CUDA data they are then an int64 tensor on the
logits' device, read by the kernel: a captured CUDA graph replays with whatever they hold then.
"""
import collections
import ctypes
import operator

from . import _cuda
from ._arrays import Matrix
from ._backends import context
from ._library import C, DTYPES, TOPK_DEVICE_POINTERS, Logprobs, TopkArgumentError, TopkTypeError, raise_for

_U64 = (1 << 64) - 1
_F32 = DTYPES["float32"]
_sample, _sampling_default, _softmax = C["topk_sample"], C["topk_sampling_default"], C["topk_softmax"]
_sample_logprobs = C["topk_sample_logprobs"]
TOP_LOGPROBS_MAX = 20  # topk.h's TOPK_TOP_LOGPROBS_MAX

Sampled = collections.namedtuple("Sampled", "tokens probs logprobs processed_logprobs top_tokens top_logprobs")
Sampled.__doc__ = """topk.sample's result with return_logprobs or top_logprobs (topk.h, topk_sample_logprobs):
tokens (int64) and probs (float32) as without them; logprobs, each chosen token's float32 log-probability
under the raw distribution, log_softmax(logits / temperature) over the whole row (temperature 0: under 1);
processed_logprobs, log(probs), under the filtered, renormalised distribution; top_tokens (int64) and
top_logprobs (float32), shaped (..., top_logprobs), each row's best tokens (NaN ranking as -inf, ties to
the smaller index) with their raw log-probabilities, or None when top_logprobs is 0."""
_top_k_renorm, _top_p_renorm, _top_k_mask = (C["topk_top_k_renorm_probs"], C["topk_top_p_renorm_probs"],
                                             C["topk_top_k_mask_logits"])
_c_float, _c_int64, _byref = ctypes.c_float, ctypes.c_int64, ctypes.byref


def _generator_state(m, value, name):
    """seed or offset: (scalar, None, None) for one number; (0, address, owner) per row: batch uint64 in host
    memory for host logits, an int64 tensor on the logits' device for CUDA logits (its bits are the uint64s)."""
    if isinstance(value, int) or getattr(value, "ndim", None) == 0:
        return operator.index(value) & _U64, None, None
    if m.cuda is not None:
        if (getattr(value, "is_cuda", False) is not True or value.device.index != m.cuda or str(value.dtype) != "torch.int64"
                or tuple(value.shape) != (m.batch,) or not value.is_contiguous()):
            raise TopkArgumentError(f"{name} per row for CUDA logits must be a contiguous int64 tensor of {m.batch} "
                                    f"values on cuda:{m.cuda}")
        return 0, value.data_ptr(), value
    if getattr(value, "is_cuda", False):
        raise TopkArgumentError(f"{name} per row is on a CUDA device but the logits are not")
    values = value.tolist() if hasattr(value, "tolist") else list(value)
    if len(values) != m.batch:
        raise TopkArgumentError(f"{name} per row must hold one value per row ({m.batch}), got {len(values)}")
    array = (ctypes.c_uint64 * m.batch)(*[operator.index(v) & _U64 for v in values])
    return 0, ctypes.addressof(array), array


def _call(m, backend, function, args, outputs):
    """function(ctx, m's data, *args, flags, *outputs) on the context for m's device (CUDA data: enqueued on
    torch's current stream, topk._cuda); raises on a bad status."""
    ctx = context(backend, m.cuda)
    if m.cuda is None:
        status = function(ctx, m.ptr, *args, 0, *outputs)
        if status:
            raise_for(status)
    else:
        _cuda.call(m.cuda, function, ctx, m.ptr, *args, TOPK_DEVICE_POINTERS, *outputs)


def _max_top_k(bound, top_k, m):
    """topk_sampling.max_top_k for per-row top_k: the caller's bound, else for values the host holds their
    largest; for a CUDA tensor without a bound 0 ("unknown": exact, but rows past a top-k list are sampled
    the slower whole-row way; reading the tensor's largest would wait for the GPU)."""
    if bound is not None:
        return operator.index(bound)
    if m.cuda is not None and getattr(top_k, "is_cuda", False):
        return 0
    values = top_k.tolist() if hasattr(top_k, "tolist") else list(top_k)
    return max(values, default=0)


def sample(logits, temperature=1.0, top_k=None, top_p=None, min_p=None, *, seed=0, offset=0, return_probs=False,
           backend=None, copy=False, max_top_k=None, return_logprobs=False, top_logprobs=0):
    """One token per row of logits (..., V), drawn from softmax(logits / temperature) restricted to the
    top_k best logits, then the smallest best-first prefix of mass >= top_p, then the tokens with
    p >= min_p * p_max (None: off). temperature 0 is greedy: the row's best logit, ties to the smaller index.
    Returns int64 tokens shaped logits.shape[:-1] (and, with return_probs, each chosen token's float32
    probability under the filtered, renormalised distribution), of the input's kind and device.
    max_top_k: with top_k per row as a CUDA tensor, no row's top_k is above it (a speed hint, see topk.h).
    return_logprobs, top_logprobs (0..20, the OpenAI API's): return a Sampled tuple instead, with the chosen
    tokens' raw and processed log-probabilities and each row's top_logprobs best tokens with theirs, from
    the same call (the tokens are the same as without them)."""
    m = Matrix(logits, -1, copy, "logits")
    # per_row: the arrays that params points to, alive until the call returns
    params, per_row = sampling_params(m, temperature, top_k, top_p, min_p, seed, offset, max_top_k)
    tokens = m.empty(None, "int64")
    if return_logprobs or top_logprobs:
        return _sample_with_logprobs(m, backend, params, tokens, top_logprobs)
    probs = m.empty(None, "float32") if return_probs else None
    if m.batch:
        _call(m, backend, _sample, (m.code, m.batch, m.vocab, m.stride, _byref(params)),
              (m.pointer(tokens), None if probs is None else m.pointer(probs)))
    return (tokens, probs) if return_probs else tokens


def _sample_with_logprobs(m, backend, params, tokens, top_n):
    """sample's call through topk_sample_logprobs, every output asked for: a Sampled tuple."""
    top_n = operator.index(top_n)
    if not 0 <= top_n <= TOP_LOGPROBS_MAX:
        raise TopkArgumentError(f"top_logprobs must be in [0, {TOP_LOGPROBS_MAX}], got {top_n}")
    probs, raw, processed = (m.empty(None, "float32") for _ in range(3))
    top_tokens = m.empty(top_n, "int64") if top_n else None
    top_logprobs = m.empty(top_n, "float32") if top_n else None
    if m.batch:
        request = Logprobs(m.pointer(raw), m.pointer(processed), top_n,
                           m.pointer(top_tokens) if top_n else None, m.pointer(top_logprobs) if top_n else None)
        _call(m, backend, _sample_logprobs, (m.code, m.batch, m.vocab, m.stride, _byref(params)),
              (m.pointer(tokens), m.pointer(probs), _byref(request)))
    return Sampled(tokens, probs, raw, processed, top_tokens, top_logprobs)


def sampling_params(m, temperature, top_k, top_p, min_p, seed, offset, max_top_k=None):
    """sample()'s arguments for the rows of m as a topk_sampling, and the per-row values it points to (the
    caller keeps them alive until the C call returns: host arrays, or tensors on the data's CUDA device)."""
    params = _sampling_default()
    params.temperature, params.temperatures, temperatures = m.per_row(temperature, 1.0, _c_float, "temperature")
    params.top_k, params.top_ks, top_ks = m.per_row(top_k, 0, _c_int64, "top_k")
    params.top_p, params.top_ps, top_ps = m.per_row(top_p, 1.0, _c_float, "top_p")
    params.min_p, params.min_ps, min_ps = m.per_row(min_p, 0.0, _c_float, "min_p")
    if top_ks is not None:
        params.max_top_k = _max_top_k(max_top_k, top_k, m)
    params.seed, params.seeds, seeds = _generator_state(m, seed, "seed")
    params.offset, params.offsets, offsets = _generator_state(m, offset, "offset")
    return params, [temperatures, top_ks, top_ps, min_ps, seeds, offsets]


def softmax(logits, temperature=1.0, *, backend=None, copy=False):
    """softmax(logits / temperature) over the last axis, as float32 (temperature: a number or one per row)."""
    m = Matrix(logits, -1, copy, "logits")
    scalar, per_row, owner = m.per_row(temperature, 1.0, _c_float, "temperature")
    probs = m.empty(m.vocab, "float32")
    if m.batch:
        _call(m, backend, _softmax, (m.code, m.batch, m.vocab, m.stride, scalar, per_row),
              (m.pointer(probs),))
    return probs


def _renorm(function, probs, value, default, ctype, name, backend, copy):
    """top_k_renorm_probs and top_p_renorm_probs: function(ctx, probs, batch, vocab, stride, scalar, per_row,
    flags, out) on float32 probs, into a new float32 array of their shape."""
    m = Matrix(probs, -1, copy, "probs")
    if m.code != _F32:
        raise TopkTypeError(f"probs must be float32, not {m.dtype}")
    scalar, per_row, owner = m.per_row(value, default, ctype, name)
    out = m.empty(m.vocab, "float32")
    if m.batch:
        _call(m, backend, function, (m.batch, m.vocab, m.stride, scalar, per_row), (m.pointer(out),))
    return out


def top_k_renorm_probs(probs, top_k, *, backend=None, copy=False):
    """probs (float32) with all but the top_k largest of each row zeroed, renormalised to sum 1."""
    return _renorm(_top_k_renorm, probs, top_k, 0, _c_int64, "top_k", backend, copy)


def top_p_renorm_probs(probs, top_p, *, backend=None, copy=False):
    """probs (float32) cut to the smallest best-first prefix of each row with mass >= top_p, renormalised."""
    return _renorm(_top_p_renorm, probs, top_p, 1.0, _c_float, "top_p", backend, copy)


def top_k_mask_logits(logits, top_k, *, backend=None, copy=False):
    """A copy of logits with every entry outside its row's top_k set to -inf (same dtype)."""
    m = Matrix(logits, -1, copy, "logits")
    scalar, per_row, owner = m.per_row(top_k, 0, _c_int64, "top_k")
    out = m.empty(m.vocab)
    if m.batch:
        _call(m, backend, _top_k_mask, (m.code, m.batch, m.vocab, m.stride, scalar, per_row),
              (m.pointer(out),))
    return out


def _fresh_seed(logits, generator):
    """A seed drawn from a torch.Generator, else from torch's default generator for tensors and NumPy's
    global one for arrays: torch.manual_seed / numpy.random.seed make seed=None runs repeatable."""
    if generator is not None or type(logits).__module__ != "numpy":
        import torch
        device = generator.device if generator is not None else "cpu"
        return torch.randint(-(1 << 63), (1 << 63) - 1, (), generator=generator, device=device).item()
    import numpy
    return int(numpy.random.randint(-(1 << 63), (1 << 63) - 1, dtype=numpy.int64))


def sample_logits(logits, temperature=1.0, top_k=None, top_p=None, min_p=None, seed=None, generator=None, offset=0,
                  return_probs=False, backend=None):
    """The old module's call: next-token ids from logits (..., V), as sample() draws them.

    temperature 0 (or None) is greedy; top_k None or 0, top_p None or 1 and min_p None or 0 are off;
    each may be one number or one value per row. seed None draws a fresh seed (from `generator`, a
    torch.Generator, when given; see _fresh_seed), so two calls differ; a fixed seed gives the same
    tokens for the same logits, so advance `offset` between steps. The implementation comes from
    `backend`, else TOPK_BACKEND, else the old AIKF_TOPK_IMPL names (torch/auto -> auto, cuda/triton/gpu
    -> offload, cpu -> cpu, naive/reference -> reference). Returns int64 ids shaped logits.shape[:-1]
    (and their probabilities with return_probs), of the input's kind and device; non-contiguous logits
    are copied once."""
    if seed is None:
        seed = _fresh_seed(logits, generator)
    return sample(logits, 0.0 if temperature is None else temperature, top_k, top_p, min_p, seed=seed, offset=offset,
                  return_probs=return_probs, backend=backend, copy=True)


def sample_next_token(logits, rng=None, temperature=1.0, top_k=None, *, backend=None):
    """nanochat's sample_next_token: one token per row of logits (B, V) as a (B, 1) int64 array.

    rng: a torch.Generator (its state advances by one draw per call), an int seed, or None (the global
    generator: torch's, or NumPy's for arrays). temperature 0 is argmax; top_k None or <= 0 is off, and is
    capped at V."""
    if temperature < 0:
        raise TopkArgumentError("temperature must be non-negative")
    if top_k is not None:
        top_k = min(top_k, logits.shape[-1]) if top_k > 0 else None
    seed = rng if isinstance(rng, int) else _fresh_seed(logits, rng)
    tokens = sample(logits, temperature, top_k, seed=seed, backend=backend, copy=True)
    return tokens.reshape(tokens.shape + (1,))
