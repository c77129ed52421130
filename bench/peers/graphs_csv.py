#!/usr/bin/env python3
"""Turns graphs.py's table into a peer CSV that `topk-bench --plot FILE.png --from CSV` draws.

One row per (peer, shape): median_us is the eager call, graph_median_us the CUDA graph replay, both
copied from the table as graphs.py printed them. --vocab keeps only those vocabularies, so that a plot
against batch has one line per peer and mode rather than one per vocabulary too.

    python3 bench/peers/graphs_csv.py bench/results/h100-2026-12-07-s7/graphs-llm.txt --vocab 151936 > llm.csv
    topk-bench --plot llm.png --from llm.csv
"""
import argparse
import sys

PEERS = (("libtopk", "ours"), ("torch.topk", "torch"), ("flashinfer", "fi"))


def rows(lines):
    """The table's rows as dicts of its header's columns (comment lines and others skipped)."""
    header = None
    for line in lines:
        fields = line.split()
        if not fields or line.startswith("#"):
            continue
        if fields[0] == "batch":
            header = fields
        elif header and len(fields) == len(header):
            yield dict(zip(header, fields))


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("table", help="graphs.py's output")
    a.add_argument("--vocab", type=int, nargs="*", default=None, help="keep only these vocabularies")
    o = a.parse_args()
    with open(o.table) as f:
        table = list(rows(f))
    if not table:
        sys.exit(f"graphs_csv: no table in {o.table}")
    print("peer,batch,vocab,k,dtype,median_us,graph_median_us")
    for peer, prefix in PEERS:
        for r in table:
            if o.vocab and int(r["vocab"]) not in o.vocab:
                continue
            eager, graph = r[f"{prefix}_eager"], r[f"{prefix}_graph"]
            if eager == "-" and graph == "-":
                continue
            eager, graph = ("" if v == "-" else v for v in (eager, graph))
            print(f"{peer},{r['batch']},{r['vocab']},{r['k']},{r['dtype']},{eager},{graph}")


if __name__ == "__main__":
    main()
