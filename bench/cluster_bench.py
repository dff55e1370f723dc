#!/usr/bin/env python3
"""A 3-node Basalt cluster on this machine against redis-server, side by side.

Starts a local 3-node cluster (scripts/cluster.sh) and a redis-server, both with
`appendfsync always`, runs redis-benchmark (`-t set,get -c 50`) against node 0 and
against redis-server in alternation, several runs, and prints a Markdown table of median
ops/s and p50/p99 latency with the Basalt/Redis throughput ratio.

With --cluster-client, redis-benchmark talks to Basalt in cluster mode (`--cluster`: it
reads CLUSTER NODES and sends each key to its shard's leader) instead of through node 0,
which forwards what it does not lead.

Usage: bench/cluster_bench.py [--runs 3] [--requests 50000] [--pipelines 1,16]
                              [--basalt-flags "--shards 16"] [--cluster-client]
"""
import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from servers import ROOT, free_port


def bench(port, tests, requests, pipeline, cluster=False):
    cmd = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", "50", "-r", "100000",
           "-P", str(pipeline), "-t", tests, "--csv"] + (["--cluster"] if cluster else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    # In cluster mode the layout it found comes first.
    out = out[out.index('"test"'):]
    rows = {}
    for row in csv.DictReader(io.StringIO(out)):
        rows[row["test"].split(" ")[0]] = (float(row["rps"]), float(row["p50_latency_ms"]),
                                           float(row["p99_latency_ms"]))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--basalt-flags", default="")
    ap.add_argument("--cluster-client", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="basalt-cluster-bench-")
    base = 7401
    env = dict(os.environ, BASALT_CLUSTER_DIR=os.path.join(tmp, "cluster"),
               BASALT_BASE_PORT=str(base),
               BASALT_FLAGS=("--appendfsync always " + args.basalt_flags).strip())
    script = os.path.join(ROOT, "scripts", "cluster.sh")
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--dir", tmp, "--save", "", "--appendonly", "yes",
                              "--appendfsync", "always"], stdout=subprocess.DEVNULL)
    try:
        subprocess.run([script, "start", "3"], env=env, check=True, cwd=ROOT)
        time.sleep(5)  # the leader spreading settles (every 2 s)
        results = {}
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            for _ in range(args.runs):
                for name, port in (("redis", rport), ("basalt", base)):
                    cluster = args.cluster_client and name == "basalt"
                    rows = bench(port, "set,get", args.requests, pipeline, cluster)
                    for test, values in rows.items():
                        results.setdefault((pipeline, test, name), []).append(values)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                    if l.startswith("model name")), "?")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
        print(f"Machine: {os.cpu_count()} cores, {cpu}; commit {commit}; median of {args.runs} runs")
        client = "a cluster client (redis-benchmark --cluster)" if args.cluster_client \
            else "client on node 0"
        print(f"Basalt: 3 nodes on this machine, appendfsync always, {client} "
              f"`{env['BASALT_FLAGS']}`; redis-server: appendonly yes, appendfsync always\n")
        print("| test | P | redis ops/s | redis p50/p99 ms | Basalt ops/s | Basalt p50/p99 ms | ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for (pipeline, test) in sorted({(p, t) for (p, t, _) in results}):
            def med(name, i):
                return statistics.median(v[i] for v in results[(pipeline, test, name)])
            r, b = med("redis", 0), med("basalt", 0)
            print(f"| {test} | {pipeline} | {r:,.0f} | {med('redis', 1):.3f}/{med('redis', 2):.3f} "
                  f"| {b:,.0f} | {med('basalt', 1):.3f}/{med('basalt', 2):.3f} | {b / r:.2f} |")
    finally:
        subprocess.run([script, "stop", "3"], env=env, cwd=ROOT)
        redis.terminate()
        redis.wait()
        time.sleep(1)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
