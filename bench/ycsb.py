#!/usr/bin/env python3
"""YCSB-style workloads against redis-server and Basalt side by side, one table.

Builds the load generator (`bench/ycsb/`, over the `redis` client crate) and a release
Basalt, starts redis-server (`appendonly yes`, `appendfsync everysec` by default) and Basalt
(`appendfsync everysec`) on free ports, loads the same records into both, then runs each
workload on both in alternation, several times, and prints the median throughput and
latency percentiles of each and their ratio. Workloads run in YCSB's recommended order
(A, B, C, F, D, E: the last two insert), so both servers see the same history. Workload
M is memtier_benchmark's default mix (1 SET : 10 GET of strings; no load phase when it runs
alone). With --nodes 3 the Basalt side is a local 3-node cluster (scripts/cluster.sh, RF 3)
and the generator talks to node 0, which forwards what it does not lead.

Usage: bench/ycsb.py [--records 100000] [--workloads abcfde] [--runs 3] [--seconds 10]
                     [--clients 32] [--basalt-args "..."] [--redis-args "..."]
                     [--generator-args "--read-fields 3"] [--nodes 3]
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import tempfile
import time

from servers import ROOT, free_port, machine_line, start_redis, start_side_by_side, stop

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
    ap.add_argument("--nodes", type=int, default=1)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt", "--example", "ycsb"],
                   cwd=ROOT, check=True)
    cluster = None
    if args.nodes > 1:
        servers, cluster = start_with_cluster(args)
    else:
        servers = start_side_by_side("basalt-ycsb-", args.redis_args, args.basalt_args)
    load = set(args.workloads.lower()) != {"m"}
    results = {}  # (phase, server) -> [report]
    try:
        for name, port, _ in servers:
            if load:
                results[("load", name)] = [generate(port, args, ["--phase", "load"])]
        for w in args.workloads:
            for _ in range(args.runs):
                for name, port, _ in servers:
                    report = generate(port, args, ["--phase", "run", "--workload", w,
                                                   "--seconds", str(args.seconds)])
                    results.setdefault((f"run-{w}", name), []).append(report)
    finally:
        stop([p for _, _, p in servers if p is not None])
        if cluster is not None:
            subprocess.run(cluster[0] + ["stop", str(args.nodes)], env=cluster[1], cwd=ROOT)

    print(machine_line())
    shape = (f"{args.records:,} records of 10 x 100-byte fields" if load
             else f"SET:GET 1:10 over {args.records:,} string keys")
    print(f"{shape}, {args.clients} clients, no pipelining; "
          f"runs of {args.seconds:g} s, median of {args.runs}" + (" (load: one run)" if load else ""))
    nodes = f"{args.nodes} nodes (RF {min(args.nodes, 3)}, client on node 0), " if args.nodes > 1 else ""
    print(f"Basalt: {nodes}`{args.basalt_args}`; redis-server: `{args.redis_args}`"
          + (f"; generator: `{args.generator_args}`" if args.generator_args else "") + "\n")
    print("| workload | redis ops/s | Basalt ops/s | ratio | redis p50 / p99 / p99.9 us "
          "| Basalt p50 / p99 / p99.9 us | p99 ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    phases = (["load"] if load else []) + [f"run-{w}" for w in args.workloads]
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


def start_with_cluster(args):
    """A redis-server and a local Basalt cluster of `args.nodes` nodes: the servers list
    (the cluster's entry has no process: scripts/cluster.sh stops it) and the script's
    command and environment."""
    tmp = tempfile.mkdtemp(prefix="basalt-ycsb-cluster-")
    base = 7501  # node i: client port base + i, cluster port 10000 above it
    env = dict(os.environ, BASALT_CLUSTER_DIR=os.path.join(tmp, "cluster"),
               BASALT_BASE_PORT=str(base), BASALT_FLAGS=args.basalt_args)
    script = [os.path.join(ROOT, "scripts", "cluster.sh")]
    rport = free_port()
    redis = start_redis(rport, os.path.join(tmp, "redis"), shlex.split(args.redis_args))
    subprocess.run(script + ["start", str(args.nodes)], env=env, check=True, cwd=ROOT)
    time.sleep(5)  # the leader spreading settles (every 2 s)
    return [("redis", rport, redis), ("basalt", base, None)], (script, env)


if __name__ == "__main__":
    main()
