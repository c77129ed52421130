"""What the sampling peers (torch_sample.py, flashinfer_sample.py) share: their command line, the flags
that bench/sample_bench.c and ci/gpu-sample-check pass to each. Kept apart from common.py, which needs
NumPy at import, so that a sampling peer still skips with its own message where NumPy or torch is missing.
"""
import argparse


def sample_parser(device):
    """The sampling peers' flags, with --device defaulting to device ("cpu" or "cuda")."""
    a = argparse.ArgumentParser()
    for name, kind, default in [("batch", int, 32), ("vocab", int, 128256), ("temperature", float, 0.7),
                                ("top-k", int, 50), ("top-p", float, 0.9), ("min-p", float, 0.0), ("reps", int, 50)]:
        a.add_argument("--" + name, type=kind, default=default)
    a.add_argument("--dtype", default="fp32")
    a.add_argument("--device", default=device)
    return a
