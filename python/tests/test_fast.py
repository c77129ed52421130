"""topk._fast (python/topk/_fast.c), topk.topk's common call in C: bit for bit the Python path's results on
every shape, dtype, layout and out= it serves; None (the Python path) for anything else, so that every error
is the Python path's, type and message; and its steps on CUDA data (torch's current stream set on the
context when it changed, then the call, under topk._cuda's lock), step for step topk._cuda.call's, checked
here with fake streams and a fake libtopk, without a GPU."""
import ctypes
import os

import numpy as np
import pytest
from conftest import CUDA, assert_same_bits, logits, torch

import topk
from topk import _backends, _cuda, select
from topk._library import C, STATUSES, TOPK_DEVICE_POINTERS, raise_for

FAST = select._fast_topk
needs_fast = pytest.mark.skipif(FAST is None, reason="topk._fast is not built here, or TOPK_PY_FAST=0")


def test_the_setting_is_honoured():
    setting = os.environ.get("TOPK_PY_FAST", "")
    if setting == "0":
        assert FAST is None
    elif setting:
        assert FAST is not None  # 1 or a path: required


@needs_fast
def test_the_entry_is_topk():
    """topk.topk is the C entry, with the Python function's signature and docstring."""
    import inspect
    assert topk.topk is select.topk and topk.topk is not select._python_topk
    assert inspect.signature(topk.topk) == inspect.signature(select._python_topk)
    assert topk.topk.__doc__ == select._python_topk.__doc__


@needs_fast
@pytest.mark.parametrize("call", [
    lambda x: topk.topk(x, 2, -1, True, None),
    lambda x: topk.topk(x, 2, dim=-1, largest=False, backend="reference"),
    lambda x: topk.topk(x, 2, backend="cpu", copy=True, largest=True),
    lambda x: topk.topk(x, k=2),
    lambda x: topk.topk(x=x, k=2),
    lambda x: topk.topk(x, 2, **{"la" + "rgest": False}),  # a keyword name that is not interned
])
def test_the_entrys_arguments_are_the_python_functions(call):
    x = X.copy()
    assert_same_bits(call(x).values, python_path(lambda: call(x)).values)


@needs_fast
@pytest.mark.parametrize("call", [
    lambda x: topk.topk(x),
    lambda x: topk.topk(),
    lambda x: topk.topk(x, 2, -1, True, None, None),
    lambda x: topk.topk(x, 2, -1, dim=-1),
    lambda x: topk.topk(x, 2, largest=True, colour="red"),
    lambda x: topk.topk(x, 2, x=x),
])
def test_wrong_calls_raise_the_python_functions_error(call):
    x = X.copy()
    ours, theirs = outcome(lambda: call(x)), python_path(lambda: outcome(lambda: call(x)))
    assert ours[0] == theirs[0] == "error" and ours[1][0] is theirs[1][0] is TypeError


def python_path(call):
    """call() with the C path off: topk.topk the Python function."""
    saved, topk.topk = topk.topk, select._python_topk
    try:
        return call()
    finally:
        topk.topk = saved


def outcome(call):
    try:
        return "result", call()
    except Exception as error:  # compared by type and message
        return "error", (type(error), str(error))


def makers():
    found = [("numpy-float32", lambda a: a), ("numpy-float16", lambda a: a.astype(np.float16))]
    if torch is not None:
        for device in ["cpu"] + (["cuda"] if CUDA else []):
            for dtype in ("float32", "float16", "bfloat16"):
                found.append((f"torch-{device}-{dtype}",
                              lambda a, d=device, t=dtype: torch.from_numpy(a).to(device=d, dtype=getattr(torch, t))))
    return found


MAKERS = makers()
# (rows, vocab of the whole matrix, layout): the rows as they are, a column slice (row stride > vocab),
# every other row, one row of a slice (a row stride that is never read).
LAYOUTS = [(1, 1, "dense"), (1, 7, "dense"), (3, 50, "dense"), (5, 1000, "dense"), (0, 5, "dense"), (4, 0, "dense"),
           (6, 40, "columns"), (8, 30, "every other row"), (3, 30, "one row of a slice")]


def layout(x, how):
    if how == "columns":
        return x[:, 3:29]
    if how == "every other row":
        return x[::2]
    if how == "one row of a slice":
        return x[1:2, 2:20]
    return x


def empty_like_output(x, k, dtype):
    rows = x.shape[0]
    if isinstance(x, np.ndarray):
        return np.full((rows, k), 7, dtype)
    return torch.full((rows, k), 7, dtype=dtype, device=x.device)


@needs_fast
@pytest.mark.parametrize("name,make", MAKERS, ids=[m[0] for m in MAKERS])
@pytest.mark.parametrize("rows,vocab,how", LAYOUTS)
def test_served_calls_equal_the_python_path(name, make, rows, vocab, how):
    x = layout(make(logits(rows, vocab, seed=rows * vocab + 1, special=True)), how)
    backend = "offload" if name.startswith("torch-cuda") else "cpu"
    width = x.shape[1]
    for k in sorted({0, 1, width // 2, width}):
        if k > width:
            continue
        for largest in (True, False):
            # the Python path first: it registers the kind and makes the context that the C path looks up
            what, expected = python_path(lambda: outcome(lambda: topk.topk(x, k, largest=largest, backend=backend)))
            served = FAST(x, k, -1, largest, backend, None)
            if what == "error":  # (NumPy gives some empty arrays zero strides, which the Python path refuses)
                assert served is None and outcome(lambda: topk.topk(x, k, largest=largest, backend=backend)) == \
                    (what, expected)
                continue
            if served is None:  # empty NumPy arrays too: their buffer's strides are not their own
                assert isinstance(x, np.ndarray) and x.size == 0, "the C path should serve this call"
                served = topk.topk(x, k, largest=largest, backend=backend)
            assert type(served) is topk.TopK
            assert_same_bits(served.values, expected.values)
            assert_same_bits(served.indices, expected.indices)
            for pack in (tuple, list):
                out = pack((empty_like_output(x, k, expected.values.dtype),
                            empty_like_output(x, k, expected.indices.dtype)))
                served = FAST(x, k, -1, largest, backend, out)
                if served is None:
                    assert isinstance(x, np.ndarray) and x.size == 0, "the C path should serve this call"
                    served = topk.topk(x, k, largest=largest, backend=backend, out=out)
                assert served.values is out[0] and served.indices is out[1]
                assert_same_bits(served.values, expected.values)
                assert_same_bits(served.indices, expected.indices)
            assert_same_bits(topk.topk(x, k, largest=largest, backend=backend).indices, expected.indices)


X = logits(3, 10, seed=5)


def inputs():
    found = [("numpy", X)]
    if torch is not None:
        found.append(("torch", torch.from_numpy(X)))
    return found


def out_pair(x, shape=(3, 2), dtype=None, index_dtype=None, dense=True):
    if isinstance(x, np.ndarray):
        values, indices = np.empty(shape, dtype or x.dtype), np.empty(shape, index_dtype or np.int64)
    else:
        values = torch.empty(shape, dtype=dtype or x.dtype)
        indices = torch.empty(shape, dtype=index_dtype or torch.int64)
    if not dense:
        values = values.T.copy().T if isinstance(x, np.ndarray) else values.T.contiguous().T
    return values, indices


def other(x, name):
    """The same data in the other library's array, or a float64 / int32 array of x's own library."""
    if name == "other kind":
        return x.numpy() if torch is not None and isinstance(x, torch.Tensor) else (
            torch.from_numpy(x) if torch is not None else x.tolist())
    return x.astype(np.float64) if isinstance(x, np.ndarray) else x.double()


# Each takes the input and returns the call; the C path must give what the Python path gives, error or not.
CALLS = {
    "k negative": lambda x: lambda: topk.topk(x, -1),
    "k above vocab": lambda x: lambda: topk.topk(x, 11),
    "k huge": lambda x: lambda: topk.topk(x, 1 << 70),
    "k a float": lambda x: lambda: topk.topk(x, 2.5),
    "k a string": lambda x: lambda: topk.topk(x, "3"),
    "k a numpy integer": lambda x: lambda: topk.topk(x, np.int64(2)),
    "k a bool": lambda x: lambda: topk.topk(x, True),
    "dim 0": lambda x: lambda: topk.topk(x, 2, dim=0, copy=True),
    "dim 0 without copy": lambda x: lambda: topk.topk(x, 2, dim=0),
    "dim 1": lambda x: lambda: topk.topk(x, 2, dim=1),
    "dim -1.0": lambda x: lambda: topk.topk(x, 2, dim=-1.0),
    "dim 2": lambda x: lambda: topk.topk(x, 2, dim=2),
    "dim 0 with out": lambda x: lambda: topk.topk(x, 2, dim=0, out=out_pair(x, (2, 10)), copy=True),
    "largest 0": lambda x: lambda: topk.topk(x, 2, largest=0),
    "unknown backend": lambda x: lambda: topk.topk(x, 2, backend="gpu"),
    "unknown backend, k 0": lambda x: lambda: topk.topk(x, 0, backend="gpu"),
    "unhashable backend": lambda x: lambda: topk.topk(x, 2, backend=["cpu"]),
    "float64": lambda x: lambda: topk.topk(other(x, "float64"), 2),
    "transposed": lambda x: lambda: topk.topk(x.T, 2),
    "transposed, copy": lambda x: lambda: topk.topk(x.T, 2, copy=True),
    "3-D": lambda x: lambda: topk.topk(x.reshape(3, 2, 5), 2),
    "1-D": lambda x: lambda: topk.topk(x[0], 2),
    "out wrong shape": lambda x: lambda: topk.topk(x, 2, out=out_pair(x, (3, 3))),
    "out wrong dtype": lambda x: lambda: topk.topk(x, 2, out=out_pair(x, dtype=other(x, "float64").dtype)),
    "out int32 indices": lambda x: lambda: topk.topk(x, 2, out=out_pair(x, index_dtype=(
        np.int32 if isinstance(x, np.ndarray) else torch.int32))),
    "out not dense": lambda x: lambda: topk.topk(x, 2, out=out_pair(x, dense=False)),
    "out of the other kind": lambda x: lambda: topk.topk(x, 2, out=out_pair(other(x, "other kind"))),
    "out of three": lambda x: lambda: topk.topk(x, 2, out=out_pair(x) + (None,)),
    "out not a sequence": lambda x: lambda: topk.topk(x, 2, out=5),
    "out a generator": lambda x: lambda: topk.topk(x, 2, out=iter(out_pair(x))),
    "out of lists": lambda x: lambda: topk.topk(x, 2, out=([0, 0], [0, 0])),
}


@needs_fast
@pytest.mark.parametrize("label,x", inputs(), ids=[i[0] for i in inputs()])
@pytest.mark.parametrize("what", list(CALLS))
def test_everything_else_is_the_python_paths(label, x, what):
    make = CALLS[what]
    ours, theirs = outcome(make(x)), python_path(lambda: outcome(make(x)))
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "error":
        assert ours[1] == theirs[1]
    else:
        for a, b in zip(ours[1], theirs[1]):
            assert_same_bits(a, b)


@needs_fast
def test_library_statuses_raise_as_in_python(monkeypatch):
    """A non-zero status of topk_select raises raise_for's exception (here: a fake library that answers
    BAD_STRIDE), with the message and status of the Python path."""
    status = 4
    fake = SELECT_FN(lambda *args: status)
    x = X.copy()
    topk.topk(x, 2, backend="reference")
    with fast_library(select=fake):
        with pytest.raises(topk.TopkArgumentError) as ours:
            topk.topk(x, 2, backend="reference")
    with pytest.raises(topk.TopkArgumentError) as theirs:
        raise_for(status)
    assert str(ours.value) == str(theirs.value) and ours.value.status_name == "BAD_STRIDE"


SELECT_FN = ctypes.CFUNCTYPE(ctypes.c_int, *([ctypes.c_void_p] * 10))
SET_STREAM_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
LAST_ERROR_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)  # the address of the message


def address(function):
    return ctypes.cast(function, ctypes.c_void_p).value


class fast_library:
    """topk._fast initialised with other libtopk functions (ctypes callbacks) for the duration."""

    def __init__(self, select=None, set_stream=None, last_error=None):
        self.functions = select, set_stream, last_error

    def __enter__(self):
        real = (C["topk_select"], C["topk_ctx_set_stream"], C["topk_ctx_last_error"])
        self.init(*(address(f if f is not None else r) for f, r in zip(self.functions, real)))

    def __exit__(self, *_):
        self.init(address(C["topk_select"]), address(C["topk_ctx_set_stream"]), address(C["topk_ctx_last_error"]))

    @staticmethod
    def init(*addresses):
        import sys
        from topk._arrays import fast_kind
        sys.modules["topk._fast"].init(*addresses, select.TopK, _backends._contexts, raise_for, fast_kind, _cuda,
                                       select._python_topk)


# ---- CUDA data in C, with fakes: a tensor type that says it is on CUDA device 0, fake streams, fake libtopk ----
LOG = []
NO_DEVICE, BAD_MEMORY, DEVICE_FAILURE = (STATUSES.index(name) for name in ("NO_DEVICE", "BAD_MEMORY",
                                                                           "DEVICE_FAILURE"))

if torch is not None:
    class FakeCuda(torch.Tensor):
        """A CPU tensor that reads as one on CUDA device 0, whose outputs are allocated on the CPU."""
        __torch_function__ = torch._C._disabled_torch_function_impl
        is_cuda = property(lambda self: True)
        is_cpu = property(lambda self: False)

        def get_device(self):
            return 0


def fake_empty_pair(shape, strides, dtype, cuda):
    LOG.append(("allocate", cuda))
    values, indices = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=torch.int64)
    return values, indices, values.data_ptr(), indices.data_ptr()


class FakeLibrary:
    """torch's raw stream (`handle`) and libtopk's topk_ctx_set_stream, topk_select and topk_ctx_last_error as
    logging fakes, the last three as C functions (ctypes callbacks) as libtopk's are, answering the statuses
    and the message given. Each logs whether topk._cuda's lock is held."""

    def __init__(self, handle=0x7f00, set_status=0, select_status=0, message=b""):
        self.handle, self.set_status, self.select_status = handle, set_status, select_status
        self.message = ctypes.create_string_buffer(message)
        self.set_stream = SET_STREAM_FN(self._set_stream)
        self.select = SELECT_FN(self._select)
        self.last_error = LAST_ERROR_FN(self._last_error)

    def raw_stream(self, device):
        LOG.append(("raw_stream", device))
        if isinstance(self.handle, Exception):
            raise self.handle
        return self.handle

    def _set_stream(self, ctx, stream):
        LOG.append(("set_stream", ctx, stream or 0, _cuda.lock.locked()))
        return self.set_status

    def _select(self, ctx, x, dtype, batch, vocab, stride, k, flags, values, indices):
        LOG.append(("topk_select", (flags or 0) & TOPK_DEVICE_POINTERS, _cuda.lock.locked()))
        return self.select_status

    def _last_error(self, ctx):
        LOG.append(("last_error", _cuda.lock.locked()))
        return ctypes.addressof(self.message)

    def python_last_error(self, ctx):  # topk._cuda.last_error's: ctypes gives the message as bytes
        LOG.append(("last_error", _cuda.lock.locked()))
        return self.message.value


@pytest.fixture
def fake_cuda(monkeypatch):
    """A function run(library, path) that makes one call topk(x, 5) on a FakeCuda tensor (context 1 of the
    backend "fake" on device 0) with the fakes of `library`, through the C path (path "C": topk._fast.topk,
    which must serve it), topk.topk ("entry") or the Python path ("Python"), and returns ("result", log),
    ("not served", log) or ("error", (type, message), log). topk._cuda.streams starts empty; the paths share it."""
    if torch is None:
        pytest.skip("torch is not installed")
    for _ in range(2):  # torch.Tensor's kind is known to the C path before the allocator is replaced
        topk.topk(torch.zeros(1, 1), 1)
    kind = select._by_type[torch.Tensor]
    monkeypatch.setattr(kind, "empty_pair", fake_empty_pair)
    # torch 2's direct CUDA allocator would bypass the fake one (the C path reads it when it first meets
    # FakeCuda, and keeps what it read): fakes always allocate through empty_pair
    monkeypatch.setattr(kind, "empty_cuda", None)
    select._by_type.setdefault(FakeCuda, kind)
    monkeypatch.setitem(_backends._contexts, ("fake", 0), 1)
    saved = dict(_cuda.streams)
    _cuda.streams.clear()
    x = torch.from_numpy(logits(2, 100)).as_subclass(FakeCuda)

    def run(library, path):
        monkeypatch.setattr(_cuda, "raw_stream", library.raw_stream)
        monkeypatch.setattr(_cuda, "set_stream", library.set_stream)
        monkeypatch.setattr(_cuda, "last_error", library.python_last_error)
        monkeypatch.setattr(select, "_select", library.select)
        LOG.clear()
        calls = {"C": lambda: FAST(x, 5, -1, True, "fake", None), "entry": lambda: topk.topk(x, 5, backend="fake"),
                 "Python": lambda: select._python_topk(x, 5, backend="fake")}
        with fast_library(library.select, library.set_stream, library.last_error):
            what, result = outcome(calls[path])
        assert not _cuda.lock.locked()
        if what == "error":
            return what, result, list(LOG)
        if result is None:
            return "not served", list(LOG)
        assert result.values.shape == (2, 5)
        return what, list(LOG)
    yield run
    _cuda.streams.clear()
    live = set(_backends._contexts.values())  # not those that a reset() freed
    _cuda.streams.update({ctx: stream for ctx, stream in saved.items() if ctx in live})


def both_paths(run, library):
    """run() through the C path, then through the Python path from the same memo of streams: both outcomes."""
    memo = dict(_cuda.streams)
    ours = run(library, "C")
    _cuda.streams.clear()
    _cuda.streams.update(memo)
    theirs = run(library, "Python")
    return ours, theirs


SET_AND_CALL = [("allocate", 0), ("raw_stream", 0), ("set_stream", 1, 0x7f00, True),
                ("topk_select", TOPK_DEVICE_POINTERS, True)]
CALL_ONLY = [("allocate", 0), ("raw_stream", 0), ("topk_select", TOPK_DEVICE_POINTERS, True)]


@needs_fast
def test_the_stream_is_set_once_then_the_call_is_one_c_call(fake_cuda):
    library = FakeLibrary()
    for path in ("C", "Python"):
        _cuda.streams.clear()
        assert fake_cuda(library, path) == ("result", SET_AND_CALL)
        assert fake_cuda(library, path) == ("result", CALL_ONLY)
        assert _cuda.streams == {1: 0x7f00}


@needs_fast
def test_the_paths_share_what_was_set(fake_cuda):
    library = FakeLibrary()
    assert fake_cuda(library, "Python") == ("result", SET_AND_CALL)
    assert fake_cuda(library, "C") == ("result", CALL_ONLY)
    library.handle = 0x8000
    assert fake_cuda(library, "C")[1][2] == ("set_stream", 1, 0x8000, True)
    assert fake_cuda(library, "Python") == ("result", CALL_ONLY)


@needs_fast
@pytest.mark.parametrize("handles,expected", [
    ([0, 0], [1, None]),  # torch's default stream is CU_STREAM_LEGACY
    ([0x7f00, 0x8000, 0x8000, 0x7f00], [0x7f00, 0x8000, None, 0x7f00]),
    ([2, 0, 2], [2, 1, 2]),  # CU_STREAM_PER_THREAD as it is
])
def test_streams_set_as_in_python(fake_cuda, handles, expected):
    """The stream each call sets (None: none), the C path's the Python path's."""
    for path in ("C", "Python"):
        _cuda.streams.clear()
        library, sets = FakeLibrary(), []
        for handle in handles:
            library.handle = handle
            what, log = fake_cuda(library, path)
            sets.append(next((entry[2] for entry in log if entry[0] == "set_stream"), None))
            assert what == "result" and log[-1] == ("topk_select", TOPK_DEVICE_POINTERS, True)
        assert sets == expected, path


@needs_fast
@pytest.mark.parametrize("set_status,select_status,message", [
    (0, DEVICE_FAILURE, b"cuLaunchKernel: CUDA_ERROR_INVALID_HANDLE (invalid resource handle)"),
    (0, DEVICE_FAILURE, b""),
    (DEVICE_FAILURE, 0, b"cuModuleLoadData: CUDA_ERROR_NO_BINARY_FOR_GPU (no kernel image is available)"),
    (NO_DEVICE, BAD_MEMORY, b""),  # a host backend's context: the call says what is wrong
    (0, 3, b"not read"),  # BAD_K: no driver message
])
def test_failures_raise_as_in_python(fake_cuda, set_status, select_status, message):
    ours, theirs = both_paths(fake_cuda, FakeLibrary(set_status=set_status, select_status=select_status,
                                                     message=message))
    assert ours == theirs and ours[0] == "error"
    text = ours[1][1]
    status = set_status if set_status not in (0, NO_DEVICE) else select_status
    assert text.startswith(f"libtopk: {C['topk_strerror'](status).decode()}")
    assert (("last_error", True) in ours[2]) == (status == DEVICE_FAILURE)  # read under the lock, that status only
    if status == DEVICE_FAILURE and message:
        assert text == f"libtopk: {C['topk_strerror'](status).decode()}: {message.decode()}"
    else:
        assert text == str(outcome(lambda: raise_for(status))[1][1])
    assert (("topk_select", TOPK_DEVICE_POINTERS, True) in ours[2]) == (set_status in (0, NO_DEVICE))
    assert _cuda.streams == ({1: 0x7f00} if set_status == 0 else {})  # only a stream that was set


@needs_fast
def test_raw_stream_errors_raise_as_in_python(fake_cuda):
    ours, theirs = both_paths(fake_cuda, FakeLibrary(handle=RuntimeError("no CUDA context")))
    assert ours == theirs == ("error", (RuntimeError, "no CUDA context"), [("allocate", 0), ("raw_stream", 0)])


@needs_fast
def test_a_handle_that_is_not_an_int_is_the_python_paths(fake_cuda):
    """The C path leaves it to Python before it calls the library; Python hands it to ctypes, which refuses it."""
    library = FakeLibrary(handle=1.5)
    assert fake_cuda(library, "C") == ("not served", [("allocate", 0), ("raw_stream", 0)])
    ours, theirs = fake_cuda(library, "entry"), fake_cuda(library, "Python")
    assert ours[:2] == theirs[:2] and ours[0] == "error" and ours[1][0] is ctypes.ArgumentError


@needs_fast
def test_without_topk_ctx_set_stream_cuda_data_is_the_python_paths(fake_cuda, monkeypatch):
    """A libtopk without topk_ctx_set_stream (init() given 0 for it): the C path does not serve CUDA data."""
    library = FakeLibrary()
    monkeypatch.setattr(fast_library, "__enter__", lambda self: fast_library.init(address(library.select), 0,
                                                                                  address(library.last_error)))
    assert fake_cuda(library, "C") == ("not served", [])
