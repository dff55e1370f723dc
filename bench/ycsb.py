#!/usr/bin/env python3
"""YCSB-style workloads against redis-server and Basalt side by side, one table.

Builds the load generator (`bench/ycsb/`, over the `redis` client crate) and a release
Basalt, starts redis-server (`appendonly yes`, `appendfsync everysec` by default) and Basalt
(`appendfsync everysec`) on free ports, loads the same records into both, then runs each
workload on both in alternation, several times, and prints the median throughput and
latency percentiles of each and their ratio. Workloads run in YCSB's recommended order
(A, B, C, F, D, E: the last two insert), so both servers see the same history.

Usage: bench/ycsb.py [--records 100000] [--workloads abcfde] [--runs 3] [--seconds 10]
                     [--clients 32] [--basalt-args "..."] [--redis-args "..."]
                     [--generator-args "--read-fields 3"]
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess

from servers import ROOT, machine_line, start_side_by_side, stop

GENERATOR = os.path.join(ROOT, "target", "release", "examples", "ycsb")


def generate(port, args, extra):
    cmd = [GENERATOR, "--port", str(port), "--json", "--records", str(args.records),
           "--clients", str(args.clients)] + extra + shlex.split(args.generator_args)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"load generator failed on port {port}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--workloads", default="abcfde")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--basalt-args", default="--appendfsync everysec")
    ap.add_argument("--redis-args", default="--save '' --appendonly yes --appendfsync everysec")
    ap.add_argument("--generator-args", default="")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt", "--example", "ycsb"],
                   cwd=ROOT, check=True)
    servers = start_side_by_side("basalt-ycsb-", args.redis_args, args.basalt_args)
    results = {}  # (phase, server) -> [report]
    try:
        for name, port, _ in servers:
            results[("load", name)] = [generate(port, args, ["--phase", "load"])]
        for w in args.workloads:
            for _ in range(args.runs):
                for name, port, _ in servers:
                    report = generate(port, args, ["--phase", "run", "--workload", w,
                                                   "--seconds", str(args.seconds)])
                    results.setdefault((f"run-{w}", name), []).append(report)
    finally:
        stop([p for _, _, p in servers])

    print(machine_line())
    print(f"{args.records:,} records of 10 x 100-byte fields, {args.clients} clients, no pipelining; "
          f"runs of {args.seconds:g} s, median of {args.runs} (load: one run)")
    print(f"Basalt: `{args.basalt_args}`; redis-server: `{args.redis_args}`"
          + (f"; generator: `{args.generator_args}`" if args.generator_args else "") + "\n")
    print("| workload | redis ops/s | Basalt ops/s | ratio | redis p50 / p99 / p99.9 us "
          "| Basalt p50 / p99 / p99.9 us | p99 ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    phases = ["load"] + [f"run-{w}" for w in args.workloads]
    for phase in phases:
        row = {}
        for name in ("redis", "basalt"):
            reports = results[(phase, name)]
            row[name] = (statistics.median(r["throughput"] for r in reports),
                         *(statistics.median(r["all"][q] for r in reports)
                           for q in ("p50_us", "p99_us", "p999_us")))
        r, b = row["redis"], row["basalt"]
        label = "load" if phase == "load" else phase[4:].upper()
        print(f"| {label} | {r[0]:,.0f} | {b[0]:,.0f} | {b[0] / r[0]:.2f} "
              f"| {r[1]:.0f} / {r[2]:.0f} / {r[3]:.0f} | {b[1]:.0f} / {b[2]:.0f} / {b[3]:.0f} "
              f"| {b[2] / r[2]:.2f} |")


if __name__ == "__main__":
    main()
