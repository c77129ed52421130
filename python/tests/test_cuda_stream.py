"""Calls on CUDA data, enqueued on torch's current stream (topk._cuda): which stream is set on the context and
when, what raises, and the order of a call (outputs allocated, stream, libtopk), with a fake raw stream and a
recording fake topk_ctx_set_stream, without a GPU (the C path's same steps: test_fast.py). Then, on a GPU:
results on a side stream, calls captured in a CUDA graph and replayed, and no host wait."""
import sys
import time
import types

import pytest
from conftest import CUDA, assert_same_bits, logits, torch

import topk
from topk import _backends, _cuda, sampling, select
from topk._backends import context
from topk._library import C, STATUSES, TOPK_DEVICE_POINTERS

NO_DEVICE, BAD_MEMORY, DEVICE_FAILURE, BAD_K = (STATUSES.index(name) for name in ("NO_DEVICE", "BAD_MEMORY",
                                                                                  "DEVICE_FAILURE", "BAD_K"))


class FakeStreams:
    """torch's raw stream (one handle per device) and libtopk's topk_ctx_set_stream and topk_ctx_last_error,
    logging each call and whether topk._cuda's lock is held; `function` is a library call that does the same."""

    def __init__(self, handles=None, set_status=0, status=0, message=b""):
        self.handles = dict(handles or {0: 0x7f00})
        self.set_status, self.status, self.message = set_status, status, message
        self.log = []

    def raw_stream(self, device):
        self.log.append(("raw_stream", device))
        return self.handles[device]

    def set_stream(self, ctx, stream):
        self.log.append(("set_stream", ctx, stream, _cuda.lock.locked()))
        return self.set_status

    def last_error(self, ctx):
        self.log.append(("last_error", ctx, _cuda.lock.locked()))
        return self.message

    def function(self, ctx, *args):
        self.log.append(("call", ctx) + args + (_cuda.lock.locked(),))
        return self.status


@pytest.fixture
def fake(monkeypatch):
    """FakeStreams in topk._cuda, with an empty memo of streams (restored afterwards)."""
    streams = FakeStreams()
    for name in ("raw_stream", "set_stream", "last_error"):
        monkeypatch.setattr(_cuda, name, getattr(streams, name))
    saved = dict(_cuda.streams)
    _cuda.streams.clear()
    yield streams
    _cuda.streams.clear()
    live = set(_backends._contexts.values())  # not those that a reset() freed
    _cuda.streams.update({ctx: stream for ctx, stream in saved.items() if ctx in live})


def test_the_same_stream_is_set_once(fake):
    _cuda.call(0, fake.function, 101, "x")
    _cuda.call(0, fake.function, 101, "y")
    assert fake.log == [("raw_stream", 0), ("set_stream", 101, 0x7f00, True), ("call", 101, "x", True),
                        ("raw_stream", 0), ("call", 101, "y", True)]
    assert _cuda.streams == {101: 0x7f00} and not _cuda.lock.locked()


def test_torchs_default_stream_is_the_legacy_stream(fake):
    """torch's handle 0 is the legacy default stream; libtopk would read NULL as "synchronous"."""
    fake.handles[0] = 0
    _cuda.call(0, fake.function, 101)
    _cuda.call(0, fake.function, 101)
    assert [entry for entry in fake.log if entry[0] == "set_stream"] == [("set_stream", 101, 1, True)]
    assert _cuda.CU_STREAM_LEGACY == 1


def test_a_new_stream_is_set_again(fake):
    sets = []
    for handle in (0x7f00, 0x8000, 0x8000, 2, 0x7f00):  # 2: CU_STREAM_PER_THREAD, passed as it is
        fake.handles[0] = handle
        fake.log.clear()
        _cuda.call(0, fake.function, 101)
        sets.append(next((entry[2] for entry in fake.log if entry[0] == "set_stream"), None))
    assert sets == [0x7f00, 0x8000, None, 2, 0x7f00]


def test_each_device_has_its_context_and_its_stream(fake):
    """Contexts are per device (topk._backends); each gets its device's current stream, once."""
    fake.handles = {0: 0x7f00, 1: 0x9100}
    for device, ctx in ((0, 101), (1, 102), (0, 101), (1, 102)):
        _cuda.call(device, fake.function, ctx)
    assert fake.log == [("raw_stream", 0), ("set_stream", 101, 0x7f00, True), ("call", 101, True),
                        ("raw_stream", 1), ("set_stream", 102, 0x9100, True), ("call", 102, True),
                        ("raw_stream", 0), ("call", 101, True), ("raw_stream", 1), ("call", 102, True)]
    assert _cuda.streams == {101: 0x7f00, 102: 0x9100}


def test_a_context_without_a_gpu_makes_the_call(fake):
    """cpu and reference contexts take no stream (NO_DEVICE): their call refuses device pointers itself."""
    fake.set_status, fake.status = NO_DEVICE, BAD_MEMORY
    for _ in range(2):
        with pytest.raises(topk.TopkArgumentError) as error:
            _cuda.call(0, fake.function, 101)
        assert error.value.status_name == "BAD_MEMORY" and "device pointers" in str(error.value)
    assert [entry[0] for entry in fake.log] == ["raw_stream", "set_stream", "call"] * 2  # nothing remembered
    assert _cuda.streams == {} and not _cuda.lock.locked()


@pytest.mark.parametrize("set_status,status", [(0, DEVICE_FAILURE), (DEVICE_FAILURE, 0)])
def test_device_failures_carry_the_drivers_message(fake, set_status, status):
    """From the call (a launch the driver refused) or from setting the stream (kernels that do not load): the
    message of topk_ctx_last_error, read under the lock, follows the library's."""
    fake.set_status, fake.status = set_status, status
    fake.message = b"cuLaunchKernel: CUDA_ERROR_INVALID_HANDLE (invalid resource handle)"
    with pytest.raises(topk.TopkError) as error:
        _cuda.call(0, fake.function, 101)
    assert error.value.status_name == "DEVICE_FAILURE"
    assert str(error.value) == ("libtopk: the GPU runtime reported a failure: cuLaunchKernel: "
                                "CUDA_ERROR_INVALID_HANDLE (invalid resource handle)")
    assert fake.log[-1] == ("last_error", 101, True) and not _cuda.lock.locked()
    assert [entry[0] for entry in fake.log].count("call") == (set_status == 0)
    assert _cuda.streams == ({101: 0x7f00} if set_status == 0 else {})


def test_an_empty_driver_message_adds_nothing(fake):
    fake.status = DEVICE_FAILURE
    with pytest.raises(topk.TopkError) as error:
        _cuda.call(0, fake.function, 101)
    assert str(error.value) == "libtopk: the GPU runtime reported a failure"


def test_other_statuses_read_no_driver_message(fake):
    fake.status = BAD_K
    with pytest.raises(topk.TopkArgumentError) as error:
        _cuda.call(0, fake.function, 101)
    assert error.value.status_name == "BAD_K" and all(entry[0] != "last_error" for entry in fake.log)


def test_reset_forgets_the_streams(fake):
    _cuda.call(0, fake.function, 101)
    assert _cuda.streams
    topk.reset()
    assert _cuda.streams == {}


def fake_torch(raw):
    class Stream:
        def __init__(self, device):
            self.cuda_stream = 0x1000 + device

    c = types.SimpleNamespace()
    if raw:
        c._cuda_getCurrentRawStream = lambda device: 0x2000 + device
    return types.SimpleNamespace(_C=c, cuda=types.SimpleNamespace(current_stream=Stream))


@pytest.mark.parametrize("raw", [True, False])
def test_torchs_raw_stream_or_current_stream(raw):
    """torch._C._cuda_getCurrentRawStream, else (an older torch) torch.cuda.current_stream(device).cuda_stream."""
    assert _cuda.raw_stream_function(fake_torch(raw))(3) == (0x2003 if raw else 0x1003)


def test_raw_stream_is_found_on_first_use(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(True))
    monkeypatch.setattr(_cuda, "raw_stream", _cuda._first_raw_stream)
    assert _cuda.raw_stream(1) == 0x2001
    assert _cuda.raw_stream is not _cuda._first_raw_stream and _cuda.raw_stream(2) == 0x2002


def test_host_contexts_take_no_stream():
    """What call() relies on, from this libtopk: cpu and reference contexts answer NO_DEVICE to a stream, take
    NULL, and have no driver message."""
    for backend in ("cpu", "reference"):
        ctx = context(backend, None)
        assert C["topk_ctx_set_stream"](ctx, _cuda.CU_STREAM_LEGACY) == NO_DEVICE
        assert C["topk_ctx_set_stream"](ctx, None) == 0
        assert C["topk_ctx_last_error"](ctx) == b""


def test_call_order_on_cuda_data(monkeypatch, fake):
    """Outputs allocated, torch's current stream set (once), then libtopk with device pointers: topk's Python
    path and the sampling calls (the C path's order: test_fast.py)."""
    from topk import _arrays
    if torch is None:
        pytest.skip("torch is not installed")
    kind = _arrays.kind_of(torch.zeros(1, 1))[0]
    real_rows2d, real_empty_pair, real_empty = kind.rows2d, kind.empty_pair, kind.empty

    def rows2d(a):  # a CPU tensor made to look like one on CUDA device 0
        described = real_rows2d(a)
        return None if described is None else described[:2] + (0,) + described[3:]

    def empty_pair(shape, strides, dtype, cuda):
        fake.log.append(("allocate", cuda))
        return real_empty_pair(shape, strides, dtype, None)

    def empty(shape, strides, dtype, cuda):
        fake.log.append(("allocate", cuda))
        return real_empty(shape, strides, dtype, None)

    def library_call(name):
        outputs = 1 if name == "topk_softmax" else 2  # the flags come just before the outputs

        def call(ctx, ptr, *rest):
            fake.log.append((name, rest[-1 - outputs] & TOPK_DEVICE_POINTERS, _cuda.lock.locked()))
            return 0
        return call

    monkeypatch.setattr(topk, "topk", select._python_topk)
    monkeypatch.setattr(kind, "rows2d", rows2d)
    monkeypatch.setattr(kind, "empty_pair", empty_pair)
    monkeypatch.setattr(kind, "empty", empty)
    monkeypatch.setattr(select, "_select", library_call("topk_select"))
    monkeypatch.setattr(select, "context", lambda backend, cuda: 1)
    monkeypatch.setattr(sampling, "_softmax", library_call("topk_softmax"))
    monkeypatch.setattr(sampling, "_sample", library_call("topk_sample"))
    monkeypatch.setattr(sampling, "context", lambda backend, cuda: 1)
    x = torch.from_numpy(logits(2, 100))
    topk.topk(x, 5)
    assert fake.log == [("allocate", 0), ("raw_stream", 0), ("set_stream", 1, 0x7f00, True),
                        ("topk_select", TOPK_DEVICE_POINTERS, True)]
    fake.log.clear()
    topk.softmax(x)
    topk.sample(x, temperature=0.7, top_k=5, seed=1)
    assert fake.log == [("allocate", 0), ("raw_stream", 0), ("topk_softmax", TOPK_DEVICE_POINTERS, True),
                        ("allocate", 0), ("raw_stream", 0), ("topk_sample", TOPK_DEVICE_POINTERS, True)]


def test_host_data_uses_no_stream(monkeypatch):
    def fail(*_):
        pytest.fail("a CUDA stream was looked at for host data")
    monkeypatch.setattr(_cuda, "raw_stream", fail)
    monkeypatch.setattr(_cuda, "set_stream", fail)
    x = logits(2, 100)
    topk.topk(x, 5)
    topk.softmax(x)
    if torch is not None:
        topk.topk(torch.from_numpy(x), 5)


# ---- On a GPU --------------------------------------------------------------------------------------------
gpu = pytest.mark.skipif(not CUDA, reason="no CUDA device")
SAMPLING = dict(temperature=0.7, top_k=50, top_p=0.9, return_probs=True, backend="offload")


def same_bits(ours, theirs):
    assert_same_bits(ours.cpu(), theirs.cpu())


@gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gpu_side_stream_results(dtype):
    """Input made, selected and sampled on a torch stream that is not the default one: bit for bit torch.topk's
    values, and the cpu backend's indices, tokens and probabilities."""
    side = torch.cuda.Stream()
    data = torch.from_numpy(logits(8, 50304, seed=31)).to(getattr(torch, dtype))
    with torch.cuda.stream(side):
        x = data.to("cuda")
        x.mul_(-1)  # a kernel on the side stream writes the input
        ours = topk.topk(x, 50, backend="offload")
        theirs = torch.topk(x, 50)
        tokens, probs = topk.sample(x, seed=5, **SAMPLING)
    assert _cuda.streams[context("offload", x.get_device())] == side.cuda_stream
    side.synchronize()
    host = x.cpu()
    same_bits(ours.values, theirs.values)
    same_bits(ours.indices, topk.topk(host, 50, backend="cpu").indices)
    host_tokens, host_probs = topk.sample(host, seed=5, **dict(SAMPLING, backend="cpu"))
    same_bits(tokens, host_tokens)
    same_bits(probs, host_probs)


@gpu
def test_gpu_graph_capture_and_replay():
    """topk.topk and topk.sample captured in torch.cuda.graph (after a warm-up on the capturing stream, as
    torch's docs do), then new data copied into the captured input and the graph replayed: each replay gives
    the results of fresh eager calls, bit for bit."""
    x = torch.from_numpy(logits(4, 50304, seed=40)).cuda()
    capture = torch.cuda.Stream()
    capture.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(capture):
        for _ in range(2):
            topk.topk(x, 50, backend="offload")
            topk.sample(x, seed=7, **SAMPLING)
    torch.cuda.current_stream().wait_stream(capture)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=capture):
        captured = topk.topk(x, 50, backend="offload")
        tokens, probs = topk.sample(x, seed=7, **SAMPLING)
    for replay in range(5):
        x.copy_(torch.from_numpy(logits(4, 50304, seed=41 + replay)))
        graph.replay()
        eager = topk.topk(x, 50, backend="offload")
        eager_tokens, eager_probs = topk.sample(x, seed=7, **SAMPLING)
        same_bits(captured.values, eager.values)
        same_bits(captured.indices, eager.indices)
        same_bits(captured.values, torch.topk(x, 50).values)
        same_bits(tokens, eager_tokens)
        same_bits(probs, eager_probs)


@gpu
def test_gpu_host_per_row_parameters_are_refused_in_a_capture():
    """Per-row values in host memory would have to be copied in, which a graph cannot hold: STREAM_CAPTURING,
    and the capture of the rest stays valid."""
    x = torch.from_numpy(logits(4, 50304, seed=50)).cuda()
    capture = torch.cuda.Stream()
    capture.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(capture):
        topk.topk(x, 50, backend="offload")
        topk.sample(x, temperature=0.7, top_k=50, seed=1, backend="offload")
    torch.cuda.current_stream().wait_stream(capture)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=capture):
        y = x * 2
        captured = topk.topk(x, 50, backend="offload")
        with pytest.raises(topk.TopkError) as error:
            topk.sample(x, temperature=[0.7, 0.8, 0.9, 1.0], top_k=50, seed=1, backend="offload")
        assert error.value.status_name == "STREAM_CAPTURING"
    x.copy_(torch.from_numpy(logits(4, 50304, seed=51)))
    graph.replay()
    same_bits(y, x * 2)
    same_bits(captured.values, torch.topk(x, 50).values)


PER_ROW = dict(temperature=[0.0, 0.7, 1.0, 1.3, 0.5, 0.9], top_k=[0, 50, 1, 2000, 5, 40],
               top_p=[1.0, 0.9, 0.8, 1.0, 0.95, 0.7], min_p=[0.0, 0.0, 0.05, 0.1, 0.0, 0.02])


def per_row_tensors(values):
    return {name: torch.tensor(v, dtype=torch.int64 if name == "top_k" else torch.float32, device="cuda")
            for name, v in values.items()}


@gpu
@pytest.mark.parametrize("max_top_k", [None, 40, 2000])
def test_gpu_per_row_tensors_are_read_by_the_kernel(max_top_k):
    """Per-row parameters as CUDA tensors (read by the kernel: topk_sampling's arrays in device memory) draw
    what the same values in host memory draw on the cpu backend, whatever max_top_k says."""
    x = logits(6, 50304, seed=52)
    seeds = torch.tensor([3, 1, 4, 1, 5, 9], dtype=torch.int64)
    want = topk.sample(torch.from_numpy(x), seed=seeds, return_probs=True, backend="cpu", **PER_ROW)
    got = topk.sample(torch.from_numpy(x).cuda(), seed=seeds.cuda(), return_probs=True, backend="offload",
                      max_top_k=max_top_k, **per_row_tensors(PER_ROW))
    same_bits(got[0].cpu(), want[0])
    same_bits(got[1].cpu(), want[1])
    host_lists = topk.sample(torch.from_numpy(x).cuda(), seed=seeds.cuda(), return_probs=True, backend="offload",
                             **PER_ROW)  # copied to the device by the binding
    same_bits(host_lists[0].cpu(), want[0])


@gpu
def test_gpu_graph_replays_new_per_row_tensors():
    """A graph captured with per-row CUDA tensors replays with whatever they hold: new temperatures, top_k and
    seeds between replays give the draws of eager calls with those values."""
    x = torch.from_numpy(logits(6, 32000, seed=53)).cuda()
    params = per_row_tensors(PER_ROW)
    seeds = torch.arange(6, dtype=torch.int64, device="cuda")
    capture = torch.cuda.Stream()
    capture.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(capture):
        topk.sample(x, seed=seeds, backend="offload", max_top_k=2000, **params)  # warm-up: the workspace
    torch.cuda.current_stream().wait_stream(capture)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=capture):
        tokens, probs = topk.sample(x, seed=seeds, return_probs=True, backend="offload", max_top_k=2000, **params)
    for replay in range(3):
        values = {name: [v[(i + replay) % 6] for i in range(6)] for name, v in PER_ROW.items()}
        for name, tensor in per_row_tensors(values).items():
            params[name].copy_(tensor)
        seeds.add_(100)
        graph.replay()
        want = topk.sample(x.cpu(), seed=seeds.cpu(), return_probs=True, backend="cpu", **values)
        same_bits(tokens.cpu(), want[0])
        same_bits(probs.cpu(), want[1])


@gpu
def test_gpu_out_of_range_per_row_tensor_gives_token_minus_one():
    """A value the host cannot check (a CUDA tensor) that is out of range gives its row token -1 and
    probability NaN, and the other rows their usual draws."""
    x = torch.from_numpy(logits(3, 4096, seed=54)).cuda()
    temperature = torch.tensor([0.7, -1.0, 0.7], device="cuda")
    tokens, probs = topk.sample(x, temperature=temperature, top_k=50, seed=2, return_probs=True, backend="offload")
    want = topk.sample(x.cpu(), temperature=0.7, top_k=50, seed=2, return_probs=True, backend="cpu")
    assert tokens[1].item() == -1 and torch.isnan(probs[1]).item()
    assert tokens[0].item() == want[0][0].item() and tokens[2].item() == want[0][2].item()


def sleep_cycles(seconds):
    """torch.cuda._sleep's argument for about `seconds` of GPU time on this GPU (measured with events)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(10_000_000)
    end.record()
    end.synchronize()
    return int(10_000_000 * seconds * 1e3 / start.elapsed_time(end))


@gpu
@pytest.mark.parametrize("side_stream", [False, True])
def test_gpu_calls_do_not_wait_for_the_stream(side_stream):
    """~50 ms of GPU spinning queued on torch's current stream (the legacy default one, or a created one):
    topk.topk and topk.sample return well before it ends, leaving their work queued behind it."""
    stream = torch.cuda.Stream() if side_stream else torch.cuda.current_stream()
    with torch.cuda.stream(stream):
        x = torch.randn(8, 50304, device="cuda")
        calls = {"topk": lambda: topk.topk(x, 50, backend="offload"),
                 "sample": lambda: topk.sample(x, temperature=0.7, top_k=50, seed=1, backend="offload")}
        for call in calls.values():  # warm-up: kernels loaded, workspace and outputs' memory cached
            call()
        cycles = sleep_cycles(0.05)
        for name, call in calls.items():
            stream.synchronize()
            torch.cuda._sleep(cycles)
            start = time.perf_counter()
            result = call()
            elapsed = time.perf_counter() - start
            busy = not stream.query()
            stream.synchronize()
            assert elapsed < 0.010, f"{name} took {elapsed * 1e3:.1f} ms: it waited for the stream"
            assert busy, f"{name}: the stream was idle when the call returned"
            expected = torch.topk(x, 50).values if name == "topk" else calls["sample"]()
            same_bits(result.values if name == "topk" else result, expected)


@gpu
@pytest.mark.skipif(not CUDA or torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_gpu_tensor_on_another_device_than_the_current():
    """x is written on device 1's default stream behind ~50 ms of spinning while device 0 is current: the call
    is enqueued on device 1's stream (CU_STREAM_LEGACY in device 1's context), after the write."""
    source = torch.from_numpy(logits(4, 50304, seed=22)).to("cuda:1")
    with torch.cuda.device(1):
        x = torch.zeros_like(source)
        torch.cuda._sleep(sleep_cycles(0.05))
        x.copy_(source)
    with torch.cuda.device(0):
        ours = topk.topk(x, 50, backend="offload")
    assert _cuda.streams[context("offload", 1)] == _cuda.CU_STREAM_LEGACY
    torch.cuda.synchronize(1)
    same_bits(ours.values, torch.topk(source, 50).values)

