"""What the sampling peers (torch_sample.py, flashinfer_sample.py) share: their command line, the flags
that bench/sample_bench.c and ci/gpu-sample-check pass to each, and the CUDA graph capture (which
common.py's top-k peers use too). Kept apart from common.py, which needs
NumPy at import, so that a sampling peer still skips with its own message where NumPy or torch is missing.
"""
import argparse
import statistics
import sys


def sample_parser(device):
    """The sampling peers' flags, with --device defaulting to device ("cpu" or "cuda")."""
    a = argparse.ArgumentParser()
    for name, kind, default in [("batch", int, 32), ("vocab", int, 128256), ("temperature", float, 0.7),
                                ("top-k", int, 50), ("top-p", float, 0.9), ("min-p", float, 0.0), ("reps", int, 50)]:
        a.add_argument("--" + name, type=kind, default=default)
    a.add_argument("--dtype", default="fp32")
    a.add_argument("--device", default=device)
    return a


def capture_graph(torch, call):
    """A CUDA graph of one call, captured after warming up on a side stream as torch's docs ask; returns
    (graph, the captured call's result). torch is passed in, so that importing this needs no torch."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        result = call()
    return graph, result


def flashinfer_sampling():
    """(FlashInfer's sampling module, what it is): the flashinfer package where it imports, else its kernels
    through flashinfer_shim.py (the GPU host cannot install the package); (None, why) where neither runs."""
    try:
        import flashinfer
        import flashinfer.sampling as fs
        return fs, f"flashinfer {getattr(flashinfer, '__version__', 'unknown')} python package"
    except Exception as e:  # noqa: BLE001 - ImportError, or a package built for another torch/CUDA
        failed = f"{type(e).__name__}: {e}"
    import flashinfer_shim
    ok, what = flashinfer_shim.available()
    if ok:
        return flashinfer_shim, what
    return None, f"import failed ({failed}) and its shim cannot run: {what}"


def events_median_us(torch, run, reps):
    """The median over reps of run()'s time on the GPU, each call between two CUDA events and waited for."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return statistics.median(times)


def time_graphs(torch, runs, reps, check_ours, label):
    """Each call of runs (name -> call) captured in a CUDA graph, then timed replayed and eager
    (events_median_us); check_ours(the captured call's result after a replay, the call) checks "ours" before
    any timing. A peer that fails is reported on stderr and left out; ours failing raises. Returns
    (graph_us, eager_us), each by name."""
    graph_us, eager_us = {}, {}
    for name, run in runs.items():
        try:
            graph, result = capture_graph(torch, run)
            graph.replay()
            torch.cuda.synchronize()
            if name == "ours":
                check_ours(result, run)
            graph_us[name] = events_median_us(torch, graph.replay, reps)
            eager_us[name] = events_median_us(torch, run, reps)
        except Exception as e:  # noqa: BLE001 - a peer that cannot run a case is reported, not fatal
            if name == "ours":
                raise
            print(f"# {name} {label}: {type(e).__name__}: {e}", file=sys.stderr)
    return graph_us, eager_us


def us_cell(table, name, width):
    """table[name] (microseconds) right-aligned in width with one decimal, or "-" where name did not run."""
    return f"{table[name]:>{width}.1f}" if name in table else f"{'-':>{width}}"


def ratio_cell(table, name, width):
    """table[name] / table["ours"] (> 1: ours is faster) right-aligned in width, or "-" where name did not run."""
    return f"{table[name] / table['ours']:>{width}.2f}" if name in table else f"{'-':>{width}}"


def print_graph_us(name, torch, run, reps):
    """Times run() replayed as a CUDA graph (CUDA events, median of reps replays) and prints "NAME graph_us X":
    the GPU's time without Python's, which the synchronous median ("median_us") includes. Printed apart, so
    sample-bench's ratio stays the synchronous call's; a step that cannot be captured is said, not fatal."""
    try:
        graph, _ = capture_graph(torch, run)
        print(f"{name} graph_us {events_median_us(torch, graph.replay, reps):.1f} (CUDA graph replay, CUDA events)")
    except Exception as e:  # noqa: BLE001 - any capture failure is reported, not fatal
        print(f"{name} graph_us - (not capturable: {type(e).__name__}: {e})")
