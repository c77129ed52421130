"""topk._fast (python/topk/_fast.c), topk.topk's common call in C: bit for bit the Python path's results on
every shape, dtype, layout and out= it serves; None (the Python path) for anything else, so that every error
is the Python path's, type and message; and its wait for torch's stream on CUDA data, step for step
topk._cuda's, checked here with a fake driver and a fake libtopk, without a GPU."""
import ctypes
import os

import numpy as np
import pytest
from conftest import CUDA, assert_same_bits, logits, torch

import topk
from topk import _backends, _cuda, select
from topk._library import C, TOPK_DEVICE_POINTERS, raise_for

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
    fake = ctypes.CFUNCTYPE(ctypes.c_int, *([ctypes.c_void_p] * 10))(lambda *args: status)
    x = X.copy()
    topk.topk(x, 2, backend="reference")
    with fast_library(fake):
        with pytest.raises(topk.TopkArgumentError) as ours:
            topk.topk(x, 2, backend="reference")
    with pytest.raises(topk.TopkArgumentError) as theirs:
        raise_for(status)
    assert str(ours.value) == str(theirs.value) and ours.value.status_name == "BAD_STRIDE"


class fast_library:
    """topk._fast initialised with another topk_select (a ctypes callback) for the duration."""

    def __init__(self, function):
        self.function = function

    def __enter__(self):
        self.module().init(ctypes.cast(self.function, ctypes.c_void_p).value, *self.rest())

    def __exit__(self, *_):
        self.module().init(ctypes.cast(C["topk_select"], ctypes.c_void_p).value, *self.rest())

    @staticmethod
    def module():
        import sys
        return sys.modules["topk._fast"]

    @staticmethod
    def rest():
        from topk._arrays import fast_kind
        return select.TopK, _backends._contexts, raise_for, fast_kind, _cuda, select._python_topk


# ---- The stream wait in C, with a fake driver: a tensor type that says it is on CUDA device 0 -----------
SUCCESS, NOT_READY = _cuda.CUDA_SUCCESS, _cuda.CUDA_ERROR_NOT_READY
LOG = []
STREAM_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
CAPTURE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int))

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


class FakeDriver:
    """The parts of a driver wait (topk._cuda.driver_waiter's c_parts) as logging fakes; query and synchronize
    are C functions (ctypes callbacks), as libcuda's are."""

    def __init__(self, stream=0x7f00, current=0, answers=(), sync_answer=SUCCESS, one_device=False, capture=0):
        self.stream, self.current, self.answers, self.sync_answer = stream, current, list(answers), sync_answer
        self.one_device, self.capture = one_device, capture
        self.query = STREAM_FN(self._query)
        self.synchronize = STREAM_FN(self._synchronize)
        self.capturing = CAPTURE_FN(self._capturing)

    def _capturing(self, stream, status):
        LOG.append(("capturing", stream or 0))
        status[0] = self.capture
        return SUCCESS

    def _query(self, stream):
        LOG.append(("query", stream or 0))
        return self.answers.pop(0) if self.answers else SUCCESS

    def _synchronize(self, stream):
        LOG.append(("synchronize", stream or 0))
        return self.sync_answer

    def wait(self):
        def python_wait(device):
            LOG.append(("python wait", device))
            if self.capture:
                _cuda.refuse_capture()

        def raw_stream(device):
            LOG.append(("raw_stream", device))
            return self.stream

        def current_device():
            LOG.append(("current_device",))
            return self.current

        python_wait.c_parts = (raw_stream, current_device, ctypes.cast(self.query, ctypes.c_void_p).value,
                               ctypes.cast(self.synchronize, ctypes.c_void_p).value,
                               ctypes.cast(self.capturing, ctypes.c_void_p).value,
                               lambda device: LOG.append(("fallback", device)), self.one_device)
        return python_wait


def fake_select(ctx, x, dtype, batch, vocab, stride, k, flags, values, indices):
    LOG.append(("topk_select", flags & TOPK_DEVICE_POINTERS))
    return 0


FAKE_SELECT = ctypes.CFUNCTYPE(ctypes.c_int, *([ctypes.c_void_p] * 10))(fake_select)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Calls on FakeCuda tensors reach the C path (kind registered with the fake allocator, a context for the
    backend "fake" on device 0) and run the fake libtopk; returns a function that runs one call."""
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
    x = torch.from_numpy(logits(2, 100)).as_subclass(FakeCuda)

    def call(driver):
        monkeypatch.setattr(_cuda, "wait", driver.wait())
        LOG.clear()
        with fast_library(FAKE_SELECT):
            result = topk.topk(x, 5, backend="fake")
        assert result is not None and result.values.shape == (2, 5)
        return list(LOG)
    return call


@needs_fast
def test_idle_stream_is_only_queried(fake_cuda):
    assert fake_cuda(FakeDriver()) == [("allocate", 0), ("raw_stream", 0), ("capturing", 0x7f00), ("query", 0x7f00),
                                        ("topk_select", TOPK_DEVICE_POINTERS)]


@needs_fast
@pytest.mark.parametrize("status", [1, 2])  # capturing, invalidated
def test_capturing_stream_raises_as_in_python(fake_cuda, status):
    """No query (it would break the capture) and no call: the Python wait raises STREAM_CAPTURING."""
    with pytest.raises(topk.TopkError) as error:
        fake_cuda(FakeDriver(capture=status))
    assert error.value.status_name == "STREAM_CAPTURING"
    assert LOG == [("allocate", 0), ("raw_stream", 0), ("capturing", 0x7f00), ("python wait", 0)]


@needs_fast
def test_busy_stream_is_synchronised(fake_cuda):
    assert fake_cuda(FakeDriver(answers=[NOT_READY])) == [("allocate", 0), ("raw_stream", 0), ("capturing", 0x7f00),
                                                          ("query", 0x7f00),
                                                          ("synchronize", 0x7f00),
                                                          ("topk_select", TOPK_DEVICE_POINTERS)]


@needs_fast
@pytest.mark.parametrize("answers,sync_answer", [([700], SUCCESS), ([3], SUCCESS), ([NOT_READY], 700)])
def test_driver_errors_fall_back_to_torch(fake_cuda, answers, sync_answer):
    log = fake_cuda(FakeDriver(answers=answers, sync_answer=sync_answer))
    assert log[-2:] == [("fallback", 0), ("topk_select", TOPK_DEVICE_POINTERS)]


@needs_fast
@pytest.mark.parametrize("handle", [0, 1, 2])
def test_default_stream_needs_the_tensors_device_current(fake_cuda, handle):
    same = fake_cuda(FakeDriver(stream=handle, current=0))
    assert [entry[0] for entry in same] == ["allocate", "raw_stream", "current_device", "capturing", "query",
                                            "topk_select"]
    other = fake_cuda(FakeDriver(stream=handle, current=1))
    assert [entry[0] for entry in other] == ["allocate", "raw_stream", "current_device", "fallback", "topk_select"]


@needs_fast
@pytest.mark.parametrize("handle", [0, 1, 2])
def test_one_device_needs_no_current_device_check(fake_cuda, handle):
    log = fake_cuda(FakeDriver(stream=handle, current=0, one_device=True))
    assert [entry[0] for entry in log] == ["allocate", "raw_stream", "capturing", "query", "topk_select"]


@needs_fast
def test_other_streams_are_queried_on_any_device(fake_cuda):
    log = fake_cuda(FakeDriver(stream=0x5555, current=3))
    assert [entry[0] for entry in log] == ["allocate", "raw_stream", "capturing", "query", "topk_select"]


@needs_fast
def test_a_wait_without_driver_parts_is_called(fake_cuda, monkeypatch):
    """torch's own wait, the first call's _first_wait, a test's replacement: the Python function itself."""
    driver = FakeDriver()
    plain = driver.wait()
    del plain.c_parts
    driver.wait = lambda: plain
    assert fake_cuda(driver) == [("allocate", 0), ("python wait", 0), ("topk_select", TOPK_DEVICE_POINTERS)]
