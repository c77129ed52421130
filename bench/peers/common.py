"""What every peer of topk-bench shares: the shapes, the input bits, the timing policy, the check and the CSV.

A peer times another library's top-k on the very matrix topk-bench times:
  - the named matrices of bench/cases.c (MATRICES below; `python3 common.py --list NAME` prints them
    as `topk-bench --matrix NAME --list` does, and bench/cpu-matrix and bench/gpu-bench compare the two);
  - the input rebuilt bit for bit by bench/matrix_data.c's recipe (make_matrix; check it with
    `topk-bench --dump A ...` against a peer's `--dump B ...` and `cmp A B`);
  - topk-bench's timing policy: warmup calls, then each call timed on its own until --iters calls and
    --min-time seconds, or --max-time; median and minimum reported.
      cpu:  time.perf_counter around each call.
      cuda: CUDA events around each of back-to-back calls, and the same for replays of a CUDA graph of one
            call. Where the host launches slower than the GPU runs, the first figure includes launch gaps;
            the graph figure (graph_median_us) is the GPU's own time.
  - the last timed call's values must equal the k best of each row as NumPy sorts them (ties make
    indices ambiguous between libraries, so only topk-bench checks indices, against our reference).
  - CSV: peer,batch,vocab,k,dtype,order,threads,samples,median_us,min_us,graph_median_us,note
Needs numpy; torch where a peer times (Debian: /usr/bin/python3 with python3-torch).
"""
import argparse
import os
import sys
import time

import numpy as np
from sample_common import capture_graph

try:  # only the peers' timing needs torch; --list and --dump do not
    import torch
except ImportError:
    torch = None

# The same table as bench/cases.c: each grid stands for every combination of its lists; a shape that
# two grids share runs once; "all" is every matrix in this order.
FOUNDATION = [
    ([1], [50304], [50], ["bf16"]), ([1], [50304], [200], ["bf16"]),
    ([4], [50304], [5], ["fp16"]), ([4], [50304], [128], ["fp16"]),
    ([32], [32000], [40], ["fp32"]), ([32], [50304], [50], ["bf16"]),
    ([4096], [4096], [64], ["fp32"]), ([1], [128256], [50], ["fp32"]),
    ([64], [151936], [1024], ["fp32"]), ([256], [151936], [50], ["bf16"]),
    ([1], [16777216], [2048], ["fp32"]),
]
MATRICES = {
    "seeds": [([1, 2, 4, 8, 16, 32], [50304], [50, 100, 200], ["bf16"])] + FOUNDATION,
    "llm": [([1, 4, 16, 64, 256], [32000, 50304, 128256, 151936, 262144], [50], ["bf16"])],
    "small-vocab": [([4096], [1024, 2048, 4096], [50], ["fp32", "bf16"])],
    "foundation": FOUNDATION,
    "decode": [([1, 4, 32], [32000, 50304, 128256, 151936], [50, 200], ["bf16", "fp32"])],
}
FEWEST_SAMPLES = 3


def matrix_cases(name):
    """(batch, vocab, k, dtype) of a named matrix, each shape once, in topk-bench's order."""
    names = list(MATRICES) if name == "all" else [name]
    cases = []
    for matrix in names:
        for batches, vocabs, ks, dtypes in MATRICES[matrix]:
            for case in [(b, v, k, d) for b in batches for v in vocabs for k in ks for d in dtypes]:
                if case not in cases:
                    cases.append(case)
    return cases


# --- The input matrix: bench/matrix_data.c's recipe, step for step, in uint64/double NumPy arithmetic.
GAMMA = np.uint64(0x9E3779B97F4A7C15)
SQRT_HALF = float.fromhex("0x1.6a09e667f3bcdp-1")
LN2 = float.fromhex("0x1.62e42fefa39efp-1")


def splitmix64_mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit_interval(x):
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def log_series(x):
    m, e = np.frexp(x)
    low = m < SQRT_HALF
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e)
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    series = np.zeros_like(x)
    for n in range(11, -1, -1):
        series = series * t2 + 1.0 / (2 * n + 1)
    return e * LN2 + 2.0 * t * series


def normals(seed, first, count):
    """Values number first .. first+count-1 (step 1 of the recipe numbers them), as doubles."""
    j = np.arange(first, first + count, dtype=np.uint64)
    state = splitmix64_mix(np.uint64(seed) + j * GAMMA + GAMMA)  # each element's own stream
    out = np.empty(count)
    todo = np.arange(count)
    while todo.size:  # the polar method's retries, for the elements that still need one
        s = state[todo] + GAMMA
        u = 2.0 * unit_interval(splitmix64_mix(s)) - 1.0
        s = s + GAMMA
        v = 2.0 * unit_interval(splitmix64_mix(s)) - 1.0
        state[todo] = s
        s2 = u * u + v * v
        ok = (s2 < 1.0) & (s2 != 0.0)
        out[todo[ok]] = u[ok] * np.sqrt(-2.0 * log_series(s2[ok]) / s2[ok])
        todo = todo[~ok]
    return out


def bf16_from_f32(bits):
    return ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


def f16_from_f32(bits):
    sign = (bits >> np.uint32(16)) & np.uint32(0x8000)
    magnitude = bits & np.uint32(0x7FFFFFFF)
    rebiased = magnitude - np.uint32(0x38000000)
    normal = (rebiased + np.uint32(0xFFF) + ((rebiased >> np.uint32(13)) & np.uint32(1))) >> np.uint32(13)
    exponent = magnitude >> np.uint32(23)
    shift = np.clip(126 - exponent.astype(np.int64), 14, 24).astype(np.uint32)
    mantissa = (magnitude & np.uint32(0x7FFFFF)) | np.uint32(0x800000)
    sub = mantissa >> shift
    rest = mantissa & ((np.uint32(1) << shift) - np.uint32(1))
    half = np.uint32(1) << (shift - np.uint32(1))
    sub = sub + ((rest > half) | ((rest == half) & ((sub & np.uint32(1)) == 1))).astype(np.uint32)
    result = np.where(magnitude >= 0x477FF000, np.uint32(0x7C00),
                      np.where(magnitude >= 0x38800000, normal, np.where(exponent < 102, np.uint32(0), sub)))
    return (sign | result).astype(np.uint16)


BITS = {"fp32": (np.uint32, 0x7FC00000, 0xFF800000), "fp16": (np.uint16, 0x7E00, 0xFC00),
        "bf16": (np.uint16, 0x7FC0, 0xFF80)}


def make_matrix(seed, batch, vocab, stride, dtype):
    """batch x stride element bits; columns past vocab alternate NaN and -inf (step 5)."""
    bits_type, nan_bits, minus_inf_bits = BITS[dtype]
    matrix = np.empty((batch, stride), dtype=bits_type)
    matrix[:, vocab::2] = nan_bits
    matrix[:, vocab + 1::2] = minus_inf_bits
    chunk = 1 << 22
    for first in range(0, batch * vocab, chunk):
        count = min(chunk, batch * vocab - first)
        bits = normals(seed, first, count).astype(np.float32).view(np.uint32)
        if dtype == "fp16":
            bits = f16_from_f32(bits)
        elif dtype == "bf16":
            bits = bf16_from_f32(bits)
        j = np.arange(first, first + count)
        matrix[j // vocab, j % vocab] = bits
    return matrix


def as_tensor(matrix, dtype, vocab):
    """The first vocab columns of the matrix as a torch tensor of dtype (a strided view when padded)."""
    if dtype == "fp32":
        full = torch.from_numpy(matrix.view(np.float32))
    elif dtype == "fp16":
        full = torch.from_numpy(matrix.view(np.float16))
    else:  # NumPy has no bfloat16: carry the bits as int16 and reinterpret them
        full = torch.from_numpy(matrix.view(np.int16)).view(torch.bfloat16)
    return full[:, :vocab]


def decoded(matrix, dtype, vocab):
    """The first vocab columns as float32 values, for the check."""
    rows = matrix[:, :vocab]
    if dtype == "bf16":
        return (rows.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return rows.view(np.float16 if dtype == "fp16" else np.float32).astype(np.float32)


# --- Timing, with topk-bench's policy (bench/timing.c).
def more_samples(n, spent, policy):
    out_of_time = policy.max_time > 0 and spent >= policy.max_time
    return n < FEWEST_SAMPLES or ((n < policy.iters or spent < policy.min_time) and not out_of_time)


def time_on_cpu(call, policy):
    started = time.perf_counter()
    for _ in range(policy.warmup):
        if policy.max_time > 0 and time.perf_counter() - started >= policy.max_time:
            break
        call()
    samples, spent = [], 0.0
    while more_samples(len(samples), spent, policy):
        t0 = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - t0)
        spent += samples[-1]
    return samples, result


def time_on_cuda(call, policy):
    """CUDA events around each call; calls go back to back, and the host waits only after each round."""
    for _ in range(policy.warmup):
        call()
    torch.cuda.synchronize()
    samples = []
    while more_samples(len(samples), sum(samples), policy):  # one sum per round of --iters calls
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(max(policy.iters, FEWEST_SAMPLES))]
        for start, end in events:
            start.record()
            result = call()
            end.record()
        torch.cuda.synchronize()
        samples += [start.elapsed_time(end) / 1e3 for start, end in events]
    return samples, result


def graph_of(call):
    """A CUDA graph of one call and its result (sample_common.capture_graph with this module's torch)."""
    return capture_graph(torch, call)


def cached_matrix(args, batch, vocab, dtype):
    """make_matrix(args.seed, batch, vocab, vocab, dtype), kept in --cache DIR as .npy so that the next
    peer of the same run does not rebuild it (NumPy makes ~2-5 M elements a second)."""
    if not args.cache:
        return make_matrix(args.seed, batch, vocab, vocab, dtype)
    path = os.path.join(args.cache, f"seed{args.seed}-{batch}x{vocab}-{dtype}.npy")
    if os.path.exists(path):
        return np.load(path)
    matrix = make_matrix(args.seed, batch, vocab, vocab, dtype)
    os.makedirs(args.cache, exist_ok=True)
    np.save(path + ".part.npy", matrix)
    os.replace(path + ".part.npy", path)
    return matrix


# --- The check, the cases of a run, the flags and the loop.
def check(got_values, matrix, shape, largest, peer):
    """got_values (batch x k float32) must be the row's k best, in order."""
    batch, vocab, k, dtype = shape
    rows = np.sort(decoded(matrix, dtype, vocab), axis=1)
    expected = rows[:, ::-1][:, :k] if largest else rows[:, :k]
    if not np.array_equal(got_values, expected):
        sys.exit(f"{peer}: {batch} x {vocab}, k {k}, {dtype}: the values returned are not the k best")


def cases_of(args):
    if args.matrix:
        return matrix_cases(args.matrix)
    return [(args.batch, args.vocab, args.top_k, args.dtype)]


def parser(description, devices, default_device):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    shape = p.add_argument_group("one shape (or --matrix)")
    shape.add_argument("--batch", type=int, default=1)
    shape.add_argument("--vocab", type=int, default=50304)
    shape.add_argument("--top-k", type=int, default=50)
    shape.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    shape.add_argument("--stride", type=int, help="elements from row to row, for --dump (default vocab)")
    p.add_argument("--matrix", choices=sorted(MATRICES) + ["all"], help="a named matrix of shapes, as topk-bench's")
    p.add_argument("--list", action="store_true", help="print the cases (batch vocab k dtype) and stop")
    p.add_argument("--largest", dest="smallest", action="store_false", help="the k largest (the default)")
    p.add_argument("--smallest", action="store_true", help="the k smallest instead of the k largest")
    p.set_defaults(smallest=False)  # --largest's store_false would otherwise make True the default
    p.add_argument("--seed", type=int, default=1, help="seed of the input, as topk-bench's (default 1)")
    p.add_argument("--dump", metavar="FILE", help="write the raw input (batch x stride elements) and stop")
    p.add_argument("--cache", metavar="DIR", help="keep the inputs made here as .npy in DIR, for the next peer")
    p.add_argument("--device", choices=devices, default=default_device)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on the cpu (default 2)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=50, help="at least this many timed calls ...")
    p.add_argument("--min-time", type=float, default=0.5, help="... and at least this many seconds of them ...")
    p.add_argument("--max-time", type=float, default=10, help="... unless this many pass first (0: no limit)")
    return p


def checked_args(p):
    args = p.parse_args()
    if args.matrix and (args.dump or args.stride):
        p.error("--matrix goes with neither --dump nor --stride")
    if not 1 <= args.top_k <= args.vocab or args.batch < 1 or (args.stride or args.vocab) < args.vocab:
        p.error("need batch >= 1, 1 <= top-k <= vocab and stride >= vocab")
    return args


CSV_HEADER = "peer,batch,vocab,k,dtype,order,threads,samples,median_us,min_us,graph_median_us,note"


def csv_row(peer, shape, args, samples, graph_samples, note):
    batch, vocab, k, dtype = shape
    samples = sorted(samples)
    graph_median = f"{np.median(graph_samples) * 1e6:.3f}" if graph_samples else ""
    threads = args.threads if args.device == "cpu" else ""
    order = "smallest" if args.smallest else "largest"
    return (f"{peer},{batch},{vocab},{k},{dtype},{order},{threads},{len(samples)},"
            f"{np.median(samples) * 1e6:.3f},{samples[0] * 1e6:.3f},{graph_median},{note}")


def early_exits(args):
    """--list and --dump: print or write, and say whether the run stops here."""
    if args.list:
        for batch, vocab, k, dtype in cases_of(args):
            print(f"{batch} {vocab} {k} {dtype}")
        return True
    if args.dump:
        make_matrix(args.seed, args.batch, args.vocab, args.stride or args.vocab, args.dtype).tofile(args.dump)
        return True
    return False


def run_all(peer, args, run_case):
    """Prints the CSV: run_case(shape) returns (samples, graph_samples or None, note) for one shape, or None for
    a shape the peer cannot run (it says why on stderr; the shape gets no row)."""
    cases = cases_of(args)
    print(CSV_HEADER, flush=True)
    started = time.perf_counter()
    for i, shape in enumerate(cases):
        if time.perf_counter() - started > 1:  # progress, once the run is long enough to want it
            print(f"{peer}: [{i + 1}/{len(cases)}] {shape[0]} x {shape[1]}, k {shape[2]}, {shape[3]}",
                  file=sys.stderr, flush=True)
        result = run_case(shape)
        if result is None:
            continue
        samples, graph_samples, note = result
        print(csv_row(peer_name(peer, args), shape, args, samples, graph_samples, note), flush=True)


def peer_name(peer, args):
    return f"{peer}-{args.device}"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="prints a matrix's cases as topk-bench --list does")
    p.add_argument("--list", metavar="MATRIX", required=True, choices=sorted(MATRICES) + ["all"])
    for b, v, k, d in matrix_cases(p.parse_args().list):
        print(f"{b} {v} {k} {d}")
