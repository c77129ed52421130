#!/usr/bin/env python3
"""The PNG of `topk-bench --plot FILE.png --from CSV...` drawn with matplotlib, for hosts without gnuplot
(the GPU host has matplotlib and no gnuplot): median us per call against batch and against vocab, one line
per backend or peer and (dtype, k, and the other dimension), log scales, as bench/plot.c draws it.
Reads topk-bench's CSV (column `backend`) and the peers' (column `peer`) with bench/compare.py's reader.

    python3 bench/plot.py OUT.png ours.csv torch.csv [flashinfer.csv ...]
Exit status 0 when the PNG was written, 1 otherwise (with the reason on stderr).
"""
import sys
from collections import defaultdict

from compare import read_rows  # the same CSV reading: banner, progress lines, repeated headers


def points(path):
    rows = read_rows(path)
    found = []
    for row in rows:
        try:
            found.append((row.get("backend") or row.get("peer"), row["dtype"], int(row["k"]), int(row["batch"]),
                          int(row["vocab"]), float(row["median_us"])))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def panel(ax, data, along, title):
    """Lines of the points that share everything but `along` (0: batch, 1: vocab); lone points as marks."""
    groups = defaultdict(list)
    for label, dtype, k, batch, vocab, us in data:
        other = vocab if along == 0 else batch
        groups[(label, dtype, k, other)].append(((batch, vocab)[along], us))
    # one colour per backend or peer, so that "who is fastest" reads at a glance; a marker per group
    labels = sorted({key[0] for key in groups})
    markers = "os^vD<>px*h"
    for n, ((label, dtype, k, other), pts) in enumerate(sorted(groups.items())):
        pts.sort()
        name = f"{label} {dtype} k{k} {'V' if along == 0 else 'B'}={other}"
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        style = dict(color=f"C{labels.index(label) % 10}", marker=markers[n % len(markers)], label=name)
        if len(pts) > 1:
            ax.plot(xs, ys, markersize=4, linewidth=1, alpha=0.8, **style)
        else:
            ax.scatter(xs, ys, s=16, **style)
    ax.set_xscale("log", base=2 if along == 0 else 10)
    ax.set_yscale("log")
    ax.set_xlabel("batch (rows, log 2)" if along == 0 else "vocab (columns, log 10)")
    ax.set_ylabel("median us per call (log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 1
    png, paths = argv[1], argv[2:]
    data = [p for path in paths for p in points(path)]
    if not data:
        print(f"plot.py: nothing to plot in {' '.join(paths)}", file=sys.stderr)
        return 1
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot.py: matplotlib is not installed ({e})", file=sys.stderr)
        return 1
    fig, axes = plt.subplots(1, 2, figsize=(18, 9))
    fig.suptitle("topk: median us per call")
    panel(axes[0], data, 0, "time against batch")
    panel(axes[1], data, 1, "time against vocab")
    handles, labels = axes[1].get_legend_handles_labels()
    for h, l in zip(*axes[0].get_legend_handles_labels()):
        if l not in labels:
            handles.append(h)
            labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=6)
    fig.tight_layout(rect=(0, 0.22, 1, 0.96))
    fig.savefig(png, dpi=100)
    print(f"plot.py: drew {len(data)} points into {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
