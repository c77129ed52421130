#!/usr/bin/env python3
"""Merges topk-bench's CSV with any number of peers' CSVs (bench/peers/*.py) into one markdown table.

usage: compare.py [--csv MERGED.csv] OURS.csv PEER.csv [PEER.csv ...] > table.md

Rows meet on (batch, vocab, k, dtype, order); one table row per shape and libtopk backend. For each
peer: its median us and the ratio peer / ours (above 1: we are faster), the same ratio of the two
minima (what each side does when nothing gets in its way: the figure to trust on a busy machine), and
where the peer has one, its CUDA-graph median and that ratio too. A peer CSV with no rows (a skipped peer) is named and left
out. Shapes that only a peer measured are listed under the table. --csv also writes the merged rows
as CSV. Standard library only.
"""
import csv
import sys

KEY = ("batch", "vocab", "k", "dtype", "order")


def read_rows(path):
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip()]
    # tolerate a banner before the header (a file made with 2>&1), progress lines, and the header again
    # where several runs were appended to one file
    start = next((i for i, line in enumerate(lines) if line.startswith(("backend,", "peer,"))), None)
    if start is None:
        return []
    header = lines[start]
    first = header.split(",", 1)[0] + ","
    rows = [line for line in lines[start + 1:] if line != header and "," in line and not line.startswith(first)
            and line.count(",") == header.count(",")]
    return list(csv.DictReader([header] + rows))


def shape_name(key):
    batch, vocab, k, dtype, order = key
    return f"{batch} x {vocab}, k {k}, {dtype}" + (", smallest" if order == "smallest" else "")


def ratio(theirs, ours):
    return f"{float(theirs) / float(ours):.2f}x" if theirs and ours else "-"


def main():
    args = sys.argv[1:]
    merged_csv = None
    if args[:1] == ["--csv"] and len(args) > 1:
        merged_csv, args = args[1], args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    ours = read_rows(args[0])
    if not ours:
        sys.exit(f"compare.py: {args[0]} has no rows")
    peers = []  # (name, {key: row}, has graph)
    for path in args[1:]:
        rows = read_rows(path)
        if not rows:
            print(f"(no rows in {path}: that peer was skipped or failed; its log says why)\n")
            continue
        by_key = {tuple(r[c] for c in KEY): r for r in rows}
        peers.append((rows[0]["peer"], by_key, any(r.get("graph_median_us") for r in rows)))

    backends = sorted({r["backend"] for r in ours})
    names = ", ".join(f"{name}" + (f" ({rows[next(iter(rows))]['threads']} threads)"
                                   if rows[next(iter(rows))]["threads"] else "") for name, rows, _ in peers)
    print(f"ours: topk-bench, {', '.join(backends)} backend ({ours[0]['threads']} threads); peers: {names or 'none'}\n")
    header = ["shape", "backend", "ours us", "ours min us", "our GB/s", "indices equal"]
    for name, _, graph in peers:
        header += [f"{name} us", "ratio", "min ratio"] + ([f"{name} graph us", "graph ratio"] if graph else [])
    align = ["---", "---", "---:", "---:", "---:", ":---:"] + ["---:"] * (len(header) - 6)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(align) + "|")
    merged = []
    for row in ours:
        key = tuple(row[c] for c in KEY)
        cells = [shape_name(key), row["backend"], row["median_us"], row["min_us"], row["gbps"],
                 "yes" if row["indices_equal"] == "1" and row.get("values_equal", "1") == "1" else "**NO**"]
        out = {c: row[c] for c in KEY} | {"backend": row["backend"], "ours_us": row["median_us"],
                                          "indices_equal": row["indices_equal"]}
        for name, rows, graph in peers:
            match = rows.get(key, {})
            cells += [match.get("median_us") or "-", ratio(match.get("median_us"), row["median_us"]),
                      ratio(match.get("min_us"), row["min_us"])]
            out[f"{name}_us"] = match.get("median_us", "")
            out[f"{name}_ratio"] = ratio(match.get("median_us"), row["median_us"]).rstrip("x").replace("-", "")
            out[f"{name}_min_ratio"] = ratio(match.get("min_us"), row["min_us"]).rstrip("x").replace("-", "")
            if graph:
                cells += [match.get("graph_median_us") or "-", ratio(match.get("graph_median_us"), row["median_us"])]
                out[f"{name}_graph_us"] = match.get("graph_median_us", "")
                out[f"{name}_graph_ratio"] = ratio(match.get("graph_median_us"), row["median_us"]).rstrip("x").replace("-", "")
        print("| " + " | ".join(cells) + " |")
        merged.append(out)
    notes = sorted({(name, r["note"]) for name, rows, _ in peers for r in rows.values() if r.get("note")})
    for name, note in notes:
        print(f"\n{name}: {note}")
    our_keys = {tuple(r[c] for c in KEY) for r in ours}
    only_peer = [shape_name(key) for _, rows, _ in peers for key in rows if key not in our_keys]
    if only_peer:
        print("\nmeasured by a peer only: " + "; ".join(dict.fromkeys(only_peer)))
    if merged_csv:
        with open(merged_csv, "w", newline="") as f:
            fields = list(dict.fromkeys(k for row in merged for k in row))
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(merged)


if __name__ == "__main__":
    main()
