"""The wait for torch's CUDA stream before a call on CUDA data (topk._cuda): its decisions with a fake driver,
its fallbacks, and the order of a call (outputs allocated, then the wait, then libtopk), all without a GPU;
then, on a GPU only, that queued work on torch's stream is seen."""
import contextlib
import ctypes
import types

import pytest
from conftest import CUDA, logits, torch

import topk
from topk import _cuda, sampling, select
from topk._library import TOPK_DEVICE_POINTERS

SUCCESS, NOT_READY = _cuda.CUDA_SUCCESS, _cuda.CUDA_ERROR_NOT_READY


class FakeDriver:
    """Records every call; query answers from `answers` (default: idle), synchronize from `sync_answer`."""

    def __init__(self, stream=0x7f00, current=0, answers=(), sync_answer=SUCCESS, one_device=False, capture=False):
        self.stream, self.current, self.answers, self.sync_answer = stream, current, list(answers), sync_answer
        self.one_device, self.capture = one_device, capture
        self.log = []

    def raw_stream(self, device):
        self.log.append(("raw_stream", device))
        return self.stream

    def current_device(self):
        self.log.append(("current_device",))
        return self.current

    def query(self, stream):
        self.log.append(("query", stream))
        return self.answers.pop(0) if self.answers else SUCCESS

    def synchronize(self, stream):
        self.log.append(("synchronize", stream))
        return self.sync_answer

    def capturing(self, stream):
        self.log.append(("capturing", stream))
        return self.capture

    def fallback(self, device):
        self.log.append(("fallback", device))

    def waiter(self):
        return _cuda.make_waiter(self.raw_stream, self.current_device, self.query, self.synchronize, self.fallback,
                                 self.one_device, self.capturing)

    def calls(self):
        return [entry[0] for entry in self.log]


def test_idle_stream_is_only_queried():
    driver = FakeDriver()
    driver.waiter()(0)
    assert driver.log == [("raw_stream", 0), ("capturing", 0x7f00), ("query", 0x7f00)]


def test_capturing_stream_is_refused_untouched():
    """A query would invalidate the caller's CUDA graph capture: the wait raises before anything else."""
    driver = FakeDriver(capture=True)
    with pytest.raises(topk.TopkError) as error:
        driver.waiter()(0)
    assert error.value.status_name == "STREAM_CAPTURING" and "captur" in str(error.value)
    assert driver.calls() == ["raw_stream", "capturing"]


def test_busy_stream_is_synchronised():
    driver = FakeDriver(answers=[NOT_READY])
    driver.waiter()(0)
    assert driver.calls() == ["raw_stream", "capturing", "query", "synchronize"]
    assert driver.log[-1] == ("synchronize", 0x7f00)


@pytest.mark.parametrize("answers,sync_answer", [([700], SUCCESS), ([3], SUCCESS), ([NOT_READY], 700)])
def test_driver_errors_fall_back_to_torch(answers, sync_answer):
    driver = FakeDriver(answers=answers, sync_answer=sync_answer)
    driver.waiter()(1)
    assert driver.calls()[-1] == "fallback" and driver.log[-1] == ("fallback", 1)


@pytest.mark.parametrize("handle", [0, 1, 2])
def test_default_stream_needs_the_tensors_device_current(handle):
    same = FakeDriver(stream=handle, current=3)
    same.waiter()(3)
    assert same.calls() == ["raw_stream", "current_device", "capturing", "query"]
    other = FakeDriver(stream=handle, current=0)
    other.waiter()(3)
    assert other.calls() == ["raw_stream", "current_device", "fallback"]  # torch switches device, syncs


@pytest.mark.parametrize("handle", [0, 1, 2])
def test_one_device_needs_no_current_device_check(handle):
    """With one CUDA device in the process, the current context can only be that device's."""
    driver = FakeDriver(stream=handle, current=0, one_device=True)
    driver.waiter()(0)
    assert driver.calls() == ["raw_stream", "capturing", "query"]


def test_other_streams_are_queried_on_any_device():
    driver = FakeDriver(stream=0x5555, current=0)
    driver.waiter()(3)
    assert driver.calls() == ["raw_stream", "capturing", "query"]


def fake_torch(raw=True, capturing=False):
    log = []

    class Stream:
        def __init__(self, device):
            self.device, self.cuda_stream = device, 0x1234

        def synchronize(self):
            log.append(("torch synchronize", self.device))

    cuda = types.SimpleNamespace(current_stream=Stream, current_device=lambda: 0, device_count=lambda: 2,
                                 device=lambda device: contextlib.nullcontext(),
                                 is_current_stream_capturing=lambda: capturing)
    c = types.SimpleNamespace(_cuda_getDevice=lambda: 0)
    if raw:
        c._cuda_getCurrentRawStream = lambda device: 0x4321
    return types.SimpleNamespace(cuda=cuda, _C=c), log


def test_no_driver_means_torchs_own_synchronisation():
    fake, log = fake_torch()

    def missing():
        raise OSError("libcuda.so.1: cannot open shared object file")

    wait = _cuda.driver_waiter(fake, load=missing)
    assert wait.how.startswith("torch")
    wait(0)
    assert log == [("torch synchronize", 0)]
    wait = _cuda.driver_waiter(fake, load=lambda: types.SimpleNamespace())  # a driver without the functions
    assert wait.how.startswith("torch")


def test_torchs_own_wait_refuses_a_capturing_stream():
    fake, log = fake_torch(capturing=True)
    with pytest.raises(topk.TopkError) as error:
        _cuda.torch_wait(fake)(0)
    assert error.value.status_name == "STREAM_CAPTURING" and log == []


class FakeFunction:
    """A ctypes function: argtypes and restype are set on it, and it is called with the raw handle."""

    def __init__(self, name, log, answer=SUCCESS):
        self.name, self.log, self.answer = name, log, answer

    def __call__(self, stream, *status):
        self.log.append((self.name, stream))
        if status:  # cuStreamIsCapturing(stream, &status): not capturing
            ctypes.cast(status[0], ctypes.POINTER(ctypes.c_int))[0] = 0
        return self.answer


def fake_driver(log, query_answer=SUCCESS):
    return types.SimpleNamespace(cuStreamQuery=FakeFunction("query", log, query_answer),
                                 cuStreamSynchronize=FakeFunction("synchronize", log),
                                 cuStreamIsCapturing=FakeFunction("capturing", log))


@pytest.mark.parametrize("raw", [True, False])
def test_driver_waiter_uses_torchs_raw_stream(raw):
    fake, log = fake_torch(raw)
    driver = fake_driver(log, NOT_READY)
    wait = _cuda.driver_waiter(fake, load=lambda: driver)
    assert wait.how.startswith("driver")
    assert driver.cuStreamQuery.restype is not None and driver.cuStreamQuery.argtypes
    wait(0)
    handle = 0x4321 if raw else 0x1234  # else: torch.cuda.current_stream(device).cuda_stream
    assert log == [("capturing", handle), ("query", handle), ("synchronize", handle)]


@pytest.mark.parametrize("count", [1, 2])
def test_driver_waiter_knows_a_single_device(count):
    fake, log = fake_torch()
    fake.cuda.device_count = lambda: count
    driver = fake_driver(log)
    fake._C._cuda_getCurrentRawStream = lambda device: 0  # the default stream
    fake._C._cuda_getDevice = lambda: log.append(("current_device",)) or 0
    _cuda.driver_waiter(fake, load=lambda: driver)(0)
    assert log == ([] if count == 1 else [("current_device",)]) + [("capturing", 0), ("query", 0)]


def test_call_order_on_cuda_data(monkeypatch):
    """allocate the outputs, wait for torch's stream, then call libtopk with device pointers (topk._arrays:
    the wait also covers kernels still using the memory the outputs were just given)."""
    from topk import _arrays
    if torch is None:
        pytest.skip("torch is not installed")
    log = []
    kind = _arrays.kind_of(torch.zeros(1, 1))[0]
    real_rows2d, real_empty_pair, real_empty = kind.rows2d, kind.empty_pair, kind.empty

    def rows2d(a):  # a CPU tensor made to look like one on CUDA device 0
        described = real_rows2d(a)
        return None if described is None else described[:2] + (0,) + described[3:]

    def empty_pair(shape, strides, dtype, cuda):
        log.append(("allocate", cuda))
        return real_empty_pair(shape, strides, dtype, None)

    def empty(shape, strides, dtype, cuda):
        log.append(("allocate", cuda))
        return real_empty(shape, strides, dtype, None)

    def select_call(ctx, ptr, code, batch, vocab, stride, k, flags, values, indices):
        log.append(("topk_select", flags & TOPK_DEVICE_POINTERS))
        return 0

    def sample_call(ctx, ptr, *rest):
        log.append(("topk_softmax", rest[-2] & TOPK_DEVICE_POINTERS))
        return 0

    monkeypatch.setattr(topk, "topk", select._python_topk)  # the C path's own order: test_fast.py
    monkeypatch.setattr(kind, "rows2d", rows2d)
    monkeypatch.setattr(kind, "empty_pair", empty_pair)
    monkeypatch.setattr(kind, "empty", empty)
    monkeypatch.setattr(_cuda, "wait", lambda device: log.append(("wait", device)))
    monkeypatch.setattr(select, "_select", select_call)
    monkeypatch.setattr(select, "context", lambda backend, cuda: 1)
    monkeypatch.setattr(sampling, "_softmax", sample_call)
    monkeypatch.setattr(sampling, "context", lambda backend, cuda: 1)
    x = torch.from_numpy(logits(2, 100))
    topk.topk(x, 5)
    assert log == [("allocate", 0), ("wait", 0), ("topk_select", TOPK_DEVICE_POINTERS)]
    log.clear()
    topk.softmax(x)
    assert log == [("allocate", 0), ("wait", 0), ("topk_softmax", TOPK_DEVICE_POINTERS)]


def test_host_data_does_not_wait(monkeypatch):
    monkeypatch.setattr(_cuda, "wait", lambda device: pytest.fail("waited for a CUDA stream on host data"))
    x = logits(2, 100)
    topk.topk(x, 5)
    topk.softmax(x)
    if torch is not None:
        topk.topk(torch.from_numpy(x), 5)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_gpu_uses_the_driver():
    torch.zeros(1, device="cuda")
    assert _cuda.ensure().how.startswith("driver"), "libcuda.so.1 should load where torch runs on CUDA"


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
@pytest.mark.parametrize("side_stream", [False, True])
def test_gpu_queued_work_is_seen(side_stream):
    """The input is written by a copy queued behind ~50 ms of GPU spinning on torch's current stream: the
    call must wait for it (the stream is busy: cuStreamQuery says not ready, cuStreamSynchronize waits)."""
    source = torch.from_numpy(logits(4, 50304, seed=21)).cuda()
    expected = torch.topk(source, 50).values
    stream = torch.cuda.Stream() if side_stream else torch.cuda.current_stream()
    with torch.cuda.stream(stream):
        x = torch.zeros_like(source)
        torch.cuda._sleep(100_000_000)
        x.copy_(source)
        ours = topk.topk(x, 50, backend="offload")
        assert stream.query()  # nothing left on the stream once the call has returned
        assert torch.equal(ours.values, expected)


@pytest.mark.skipif(not CUDA or torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_gpu_tensor_on_another_device_than_the_current():
    """x is written on device 1's default stream (handle 0, which the driver reads in the current context)
    while device 0 is current: the wait must still be for device 1's stream."""
    source = torch.from_numpy(logits(4, 50304, seed=22)).to("cuda:1")
    with torch.cuda.device(1):
        x = torch.zeros_like(source)
        torch.cuda._sleep(100_000_000)
        x.copy_(source)
    with torch.cuda.device(0):
        ours = topk.topk(x, 50, backend="offload")
    assert torch.equal(ours.values, torch.topk(source, 50).values)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_gpu_capture_gets_a_status_and_the_capture_survives():
    """Inside torch.cuda.graph, a call on CUDA data raises STREAM_CAPTURING before it touches the stream;
    the caller's capture stays valid, so the graph still completes and replays (issue 14)."""
    x = torch.from_numpy(logits(4, 50304, seed=23)).cuda()
    y = torch.empty_like(x)
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        y.copy_(x * 2)
        for call in (lambda: topk.topk(x, 50, backend="offload"),
                     lambda: topk.sample(x, temperature=0.7, top_k=50, seed=1, backend="offload")):
            with pytest.raises(topk.TopkError) as error:
                call()
            assert error.value.status_name == "STREAM_CAPTURING"
    y.zero_()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, x * 2)
    assert torch.equal(topk.topk(x, 50, backend="offload").values, torch.topk(x, 50).values)  # usable after
