"""wait(device): returns once the work queued on torch's current CUDA stream of that device has finished.

libtopk's offload backend runs on libomptarget's own stream and returns when its work is done, so before
a call on CUDA data the binding waits for torch's current stream: the kernels that made the input, and any
that still use the memory just given to the outputs, have then finished. torch's own way,
torch.cuda.current_stream(d).synchronize(), costs microseconds of Python per call (a Stream object, then
cudaStreamSynchronize even on an idle stream). wait(d) gives the same guarantee through the CUDA driver
(libcuda.so.1 through ctypes) and torch's raw stream handle (torch._C._cuda_getCurrentRawStream):

  cuStreamQuery(stream)        CUDA_SUCCESS: everything queued on it has completed, nothing more to do;
  cuStreamSynchronize(stream)  only when the query answered CUDA_ERROR_NOT_READY.

Any other answer (a failed stream, a driver not initialised, no current context, ...) and a driver that
cannot be loaded fall back to torch's call, which also raises torch's own error for a failed stream.
The default stream's handle is 0, which the driver (like the runtime) reads in the calling thread's
current context; torch's call first makes the tensor's device current when it is not. So for the handles
0, 1 and 2 (default, legacy, per-thread) wait() takes the driver's way only when torch's current device is
the tensor's (torch._C._cuda_getDevice), where torch's call would not switch either, and else falls back;
in a process that sees one CUDA device the two are the same device, and that check (0.2 us) is skipped.
Other handles name their stream whatever the current context.

A stream that is capturing a CUDA graph is refused before anything touches it: a query or a
synchronisation there would invalidate the caller's capture, and libtopk's GPU calls run on a stream of
their own, which no capture records. cuStreamIsCapturing (which a capture allows) asks first, and a
capturing (or invalidated) stream raises TopkError with status STREAM_CAPTURING; torch's own wait asks
torch.cuda.is_current_stream_capturing() instead.
"""
import ctypes
import sys

CUDA_SUCCESS = 0
CUDA_ERROR_NOT_READY = 600
CU_STREAM_CAPTURE_STATUS_NONE = 0


def refuse_capture():
    """Raises libtopk's STREAM_CAPTURING error: the caller's stream is capturing a CUDA graph."""
    from ._library import STATUSES, raise_for
    raise_for(STATUSES.index("STREAM_CAPTURING"))


def make_waiter(raw_stream, current_device, query, synchronize, fallback, one_device=False, capturing=None):
    """wait(device) made of these functions (driver_waiter passes the real ones, tests pass fakes):
      raw_stream(device)  the handle (an int) of torch's current stream on the device
      current_device()    torch's current CUDA device (not called when one_device: the process sees one)
      query(handle)       cuStreamQuery's CUresult; synchronize(handle): cuStreamSynchronize's
      fallback(device)    torch's own synchronisation of its current stream on the device
      capturing(handle)   whether the stream is capturing a graph (cuStreamIsCapturing), or None"""
    def wait(device):
        stream = raw_stream(device)
        if stream <= 2 and not one_device and current_device() != device:  # read in the current context
            return fallback(device)
        if capturing is not None and capturing(stream):
            refuse_capture()
        status = query(stream)
        if status == CUDA_SUCCESS:
            return None
        if status == CUDA_ERROR_NOT_READY and synchronize(stream) == CUDA_SUCCESS:
            return None
        return fallback(device)
    wait.how = "driver (cuStreamQuery; cuStreamSynchronize while busy)"
    return wait


def torch_wait(torch):
    """torch's own synchronisation, as wait(device): the fallback, and all of it on hosts without libcuda."""
    def wait(device):
        with torch.cuda.device(device):
            if torch.cuda.is_current_stream_capturing():
                refuse_capture()
        torch.cuda.current_stream(device).synchronize()
    wait.how = "torch (torch.cuda.current_stream(device).synchronize())"
    return wait


def _load_driver():
    return ctypes.CDLL("libcuda.so.1")


def driver_waiter(torch, load=_load_driver):
    """The driver's wait(device) when libcuda.so.1 loads and exports what it needs, else torch_wait(torch)."""
    fallback = torch_wait(torch)
    raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw_stream is None:  # an older torch
        def raw_stream(device):
            return torch.cuda.current_stream(device).cuda_stream
    current_device = getattr(torch._C, "_cuda_getDevice", None) or torch.cuda.current_device
    try:
        driver = load()
        query, synchronize = driver.cuStreamQuery, driver.cuStreamSynchronize
        is_capturing = driver.cuStreamIsCapturing
    except (OSError, AttributeError):
        return fallback
    query.argtypes = synchronize.argtypes = [ctypes.c_void_p]
    query.restype = synchronize.restype = ctypes.c_int
    is_capturing.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    is_capturing.restype = ctypes.c_int

    def capturing(stream):
        """Capturing or invalidated; a stream the driver cannot answer for goes on to the query, whose
        error sends the wait to torch's."""
        capture_status = ctypes.c_int()  # one per call: ctypes lets go of the GIL during the call
        return (is_capturing(stream, ctypes.byref(capture_status)) == CUDA_SUCCESS and
                capture_status.value != CU_STREAM_CAPTURE_STATUS_NONE)
    one_device = torch.cuda.device_count() == 1  # fixed for the life of the process (CUDA_VISIBLE_DEVICES)
    wait = make_waiter(raw_stream, current_device, query, synchronize, fallback, one_device, capturing)
    if all(isinstance(f, ctypes._CFuncPtr) for f in (query, synchronize, is_capturing)):
        # the same wait, step for step, in topk._fast (C) when that is in use: the driver's addresses
        address = tuple(ctypes.cast(f, ctypes.c_void_p).value for f in (query, synchronize, is_capturing))
        wait.c_parts = (raw_stream, current_device) + address + (fallback, one_device)
    return wait


def ensure():
    """The wait() in use, made now if it was not yet; its .how says which way it waits."""
    global wait
    if wait is _first_wait:
        wait = driver_waiter(sys.modules["torch"])
    return wait


def _first_wait(device):
    """wait() is made on first use (CUDA data means torch is loaded and has initialised CUDA) and then
    replaces this function: callers look it up as _cuda.wait on each call."""
    return ensure()(device)


wait = _first_wait
