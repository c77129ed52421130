#!/usr/bin/env python3
"""Merges topk-bench's CSV with a peer's (bench/peers/torch_topk.py) into one markdown table.

usage: compare.py OURS.csv PEER.csv > table.md

Rows meet on (batch, vocab, k, dtype, order). speedup = peer median / our median, so above 1 means we
are faster. Shapes that only one side measured are listed under the table. Standard library only.
"""
import csv
import sys

KEY = ("batch", "vocab", "k", "dtype", "order")


def read_rows(path):
    with open(path, newline="") as f:
        return {tuple(row[c] for c in KEY): row for row in csv.DictReader(f)}


def shape_name(key):
    batch, vocab, k, dtype, order = key
    return f"{batch} x {vocab}, k {k}, {dtype}" + (", smallest" if order == "smallest" else "")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours, peer = read_rows(sys.argv[1]), read_rows(sys.argv[2])
    if not ours or not peer:
        sys.exit("compare.py: a CSV has no rows")
    first_ours, first_peer = next(iter(ours.values())), next(iter(peer.values()))
    with_graph = any(row["graph_median_us"] for row in peer.values())
    with_note = any(row["note"] for row in peer.values())

    peer_threads = f" ({first_peer['threads']} threads)" if first_peer["threads"] else ""
    print(f"ours: topk-bench, {first_ours['backend']} backend ({first_ours['threads']} threads); "
          f"peer: {first_peer['peer']}{peer_threads}\n")
    header = ["shape", "ours us", "peer us", "speedup", "our GB/s", "bw fraction", "indices equal"]
    header += ["peer graph us"] * with_graph + ["peer note"] * with_note
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * 5 + [":---:"] + ["---:"] * with_graph + ["---"] * with_note) + "|")
    for key, row in ours.items():
        match = peer.get(key)
        cells = [shape_name(key), row["median_us"], match["median_us"] if match else "-"]
        cells.append(f"{float(match['median_us']) / float(row['median_us']):.2f}x" if match else "-")
        cells += [row["gbps"], row["bw_fraction"] or "-", "yes" if row["indices_equal"] == "1" else "**NO**"]
        cells += [(match["graph_median_us"] if match else "-")] * with_graph
        cells += [(match["note"] if match else "")] * with_note
        print("| " + " | ".join(cells) + " |")

    only_peer = [shape_name(key) for key in peer if key not in ours]
    if only_peer:
        print("\nmeasured by the peer only: " + "; ".join(only_peer))


if __name__ == "__main__":
    main()
