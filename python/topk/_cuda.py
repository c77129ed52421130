"""call(device, function, ctx, ...): a libtopk call on CUDA data, enqueued on torch's current stream.

A libtopk context with a CUDA stream set (topk_ctx_set_stream) enqueues each call on device pointers on
that stream and returns without waiting (include/topk.h, "CUDA streams and graphs"). Before each call on
CUDA data the binding makes torch's current stream of the input's device the context's stream, so that
the call is ordered like a torch op on that stream: after the kernels that made its input, before the
work that reads its outputs, and the host never waits (no query, no synchronisation). A call made while
the stream captures a CUDA graph (torch.cuda.graph) is captured with the rest and runs at each replay;
only per-row sampling parameters given in host memory cannot be captured (STREAM_CAPTURING: give one
value for the call).

The stream: raw_stream(device), torch._C._cuda_getCurrentRawStream (torch.cuda.current_stream(device).
cuda_stream on an older torch), found on first use. Handle 0 is torch's default stream, the legacy
default stream; libtopk reads NULL as "synchronous", so 0 is passed as CU_STREAM_LEGACY (1), which the
library reads in the primary context of the context's device. `streams` remembers the stream last set on
each context (contexts are per backend and device, topk._backends), so that a call on the same stream as
the last one costs no extra C call.

Memory: torch's caching allocator gives the outputs memory of the current stream of their device, which
is the stream the kernel runs on, so they need no record_stream. The input follows torch's usual rule for
any op: made on the current stream, or synchronised with it by the caller.

Threads: torch's current stream is per thread while a context is shared by all threads, so setting the
stream and making the call happen under `lock` (include/topk.h asks callers sharing a context for one);
calls only enqueue, so it is held for microseconds. topk._fast takes the same lock for the same steps.

Errors: a non-zero status raises through topk._library.raise_for; DEVICE_FAILURE carries the driver's
message (topk_ctx_last_error), read under the lock, before another call can replace it. A context that
takes no stream (cpu and reference: set_stream answers NO_DEVICE) makes the call as it is, whose status
says what is wrong (BAD_MEMORY: device pointers given to a backend that reads host memory).
"""
import sys
import threading

from ._library import C, STATUSES, raise_for

CU_STREAM_LEGACY = 1
NO_DEVICE, DEVICE_FAILURE = STATUSES.index("NO_DEVICE"), STATUSES.index("DEVICE_FAILURE")

set_stream, last_error = C["topk_ctx_set_stream"], C["topk_ctx_last_error"]
streams = {}  # context -> the stream last set on it; topk._backends.reset() forgets them with the contexts
lock = threading.Lock()


def raw_stream_function(torch):
    """torch's raw_stream(device): the handle (an int) of its current stream on that CUDA device."""
    raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw_stream is not None:
        return raw_stream

    def current_stream_handle(device):  # an older torch
        return torch.cuda.current_stream(device).cuda_stream
    return current_stream_handle


def _first_raw_stream(device):
    """raw_stream is found on first use (CUDA data means torch is loaded) and then replaces this function:
    callers (topk._fast too) look it up as _cuda.raw_stream on each call."""
    global raw_stream
    raw_stream = raw_stream_function(sys.modules["torch"])
    return raw_stream(device)


raw_stream = _first_raw_stream


def call(device, function, ctx, *args):
    """function(ctx, *args), a libtopk call on the device pointers of CUDA device `device`, enqueued on torch's
    current stream there (see the module's docstring); raises for a non-zero status."""
    stream = raw_stream(device) or CU_STREAM_LEGACY
    with lock:
        status = 0
        if streams.get(ctx) != stream:
            status = set_stream(ctx, stream)
            if status == 0:
                streams[ctx] = stream
            elif status == NO_DEVICE:  # a host backend: its call refuses device pointers, and says so
                status = 0
        if status == 0:
            status = function(ctx, *args)
        detail = (last_error(ctx) or b"").decode(errors="replace") if status == DEVICE_FAILURE else None
    if status:
        raise_for(status, detail)
