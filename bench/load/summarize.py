#!/usr/bin/env python3
"""Summarises the samples of bench/load/run.sh.

    python3 summarize.py RESULTS.tsv [MORE.tsv ...] [--ref baseline]

Per scenario and server: how many valid samples (verified, no error), the
server CPU time per request (median and min..max), requests/s (median and
min..max), p99 latency and peak RSS (medians). Then, per scenario, each
server's CPU per request over the reference's:

- ratio of medians: median of the server / median of the reference (the
  headline figure);
- paired: the ratio within each rep (the two ran next to each other), as median and min..max: how much one rep alone can say.

Samples marked invalid (ok=0) are counted and left out.
"""
import argparse
import csv
import statistics
from collections import defaultdict


def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}..{fmt.format(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--ref", default="baseline", help="the reference server (default: baseline)")
    args = ap.parse_args()

    samples = defaultdict(list)  # (scenario, server) -> rows
    scenarios, servers, invalid = [], [], 0
    for path in args.files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                row["_file"] = path
                if row["ok"] != "1":
                    invalid += 1
                    continue
                samples[(row["scenario"], row["server"])].append(row)
                if row["scenario"] not in scenarios:
                    scenarios.append(row["scenario"])
                if row["server"] not in servers:
                    servers.append(row["server"])

    def col(rows, key):
        return [float(r[key]) for r in rows]

    print("| scenario | server | n | server CPU µs/request, median (min..max) | requests/s, median (min..max) | p99 ms | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for sc in scenarios:
        for sv in servers:
            rows = samples.get((sc, sv))
            if not rows:
                continue
            print(f"| {sc} | {sv} | {len(rows)} | {spread(col(rows, 'cpu_us_per_req'), '{:.2f}')} | "
                  f"{spread(col(rows, 'rps'), '{:,.0f}')} | {statistics.median(col(rows, 'p99_ms')):.2f} | "
                  f"{statistics.median(col(rows, 'rss_peak_kb')) / 1024:.1f} |")

    others = [sv for sv in servers if sv != args.ref]
    if args.ref in servers and others:
        print()
        print(f"| scenario | server | CPU per request ÷ {args.ref}: ratio of medians | paired by rep, median (min..max) | reps paired |")
        print("|---|---|---|---|---|")
        for sc in scenarios:
            ref = samples.get((sc, args.ref))
            if not ref:
                continue
            ref_by_rep = {(r.get("_file"), r["rep"]): float(r["cpu_us_per_req"]) for r in ref}
            for sv in others:
                rows = samples.get((sc, sv))
                if not rows:
                    continue
                ratio = statistics.median(col(rows, "cpu_us_per_req")) / statistics.median(col(ref, "cpu_us_per_req"))
                paired = [float(r["cpu_us_per_req"]) / ref_by_rep[(r.get("_file"), r["rep"])]
                          for r in rows if (r.get("_file"), r["rep"]) in ref_by_rep]
                paired_txt = spread(paired, "{:.2f}") if paired else "-"
                print(f"| {sc} | {sv} | {ratio:.2f}× | {paired_txt} | {len(paired)} |")
    if invalid:
        print(f"\n{invalid} invalid sample(s) (verification failed, errors under load, or no figures) left out.")


if __name__ == "__main__":
    main()
