#!/usr/bin/env python3
"""The HTTP port under load, and what the metrics cost.

1. HTTP key API: wrk (Debian package wrk) drives `GET /key/k` and `PUT /key/k<random>`
   against one node (and, with --nodes 3, node 0 of a local 3-node cluster, which forwards
   what it does not lead), next to redis-benchmark GET/SET at P1 with as many connections.
2. The cost of the metrics: redis-benchmark SET/GET at P16 against a node whose HTTP port
   is closed, and against one whose /metrics is scraped every second meanwhile.

Medians of several runs; Basalt with its defaults (appendfsync everysec).

Usage: bench/http_bench.py [--runs 3] [--seconds 10] [--connections 50] [--nodes 1|3]
"""
import argparse
import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

from servers import ROOT, free_port, machine_line, start_basalt, stop

PUT_SCRIPT = """
wrk.method = "PUT"
wrk.body = "value-0123456789"
request = function()
  return wrk.format(nil, "/key/k" .. math.random(100000))
end
"""


def wrk(url, seconds, connections, script=None):
    """(requests/s, p99 ms) of a wrk run."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        args[1:1] = ["-s", script]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def benchmark(port, tests, requests, pipeline, connections):
    """{test: (requests/s, p99 ms)} of redis-benchmark."""
    args = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(connections),
            "-r", "100000", "-P", str(pipeline), "-t", tests, "--csv"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = {}
    for row in csv.DictReader(io.StringIO(out[out.index('"test"'):])):
        rows[row["test"].split(" ")[0]] = (float(row["rps"]), float(row["p99_latency_ms"]))
    return rows


def scrape_every_second(http_port, stop_event):
    while not stop_event.wait(1.0):
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics") as r:
            r.read()


def start_cluster(nodes, http_base):
    env = dict(os.environ, BASALT_HTTP_BASE_PORT=str(http_base),
               BASALT_CLUSTER_DIR=tempfile.mkdtemp(prefix="basalt-http-cluster-"))
    subprocess.run(["scripts/cluster.sh", "start", str(nodes)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--requests", type=int, default=300_000)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt"], cwd=ROOT, check=True)
    script = os.path.join(tempfile.mkdtemp(prefix="basalt-wrk-"), "put.lua")
    with open(script, "w") as f:
        f.write(PUT_SCRIPT)

    # 1. The key API next to RESP.
    http = free_port()
    if args.nodes == 1:
        port = free_port()
        node = start_basalt(port, tempfile.mkdtemp(prefix="basalt-http-"),
                            ["--http-port", str(http)])
        cluster_env = None
    else:
        cluster_env = start_cluster(args.nodes, http)
        port = 7001
        node = None
    subprocess.run(["redis-cli", "-p", str(port), "SET", "k", "value-0123456789"],
                   check=True, capture_output=True)
    rows = {"HTTP GET": [], "HTTP PUT": [], "RESP GET": [], "RESP SET": []}
    try:
        for _ in range(args.runs):
            rows["HTTP GET"].append(wrk(f"http://127.0.0.1:{http}/key/k", args.seconds,
                                        args.connections))
            rows["HTTP PUT"].append(wrk(f"http://127.0.0.1:{http}", args.seconds,
                                        args.connections, script))
            resp = benchmark(port, "get,set", args.requests, 1, args.connections)
            rows["RESP GET"].append(resp["GET"])
            rows["RESP SET"].append(resp["SET"])
    finally:
        if node:
            stop([node])
        if cluster_env:
            subprocess.run(["scripts/cluster.sh", "stop", str(args.nodes)], cwd=ROOT,
                           env=cluster_env, capture_output=True)

    # 2. The metrics' cost (one node).
    cost = {"closed": [], "scraped": []}
    for _ in range(args.runs):
        for setup in ("closed", "scraped"):
            port, http = free_port(), free_port()
            flags = ["--http-port", str(http)] if setup == "scraped" else []
            proc = start_basalt(port, tempfile.mkdtemp(prefix="basalt-metrics-"), flags)
            done = threading.Event()
            scraper = None
            if setup == "scraped":
                scraper = threading.Thread(target=scrape_every_second, args=(http, done))
                scraper.start()
            try:
                cost[setup].append(benchmark(port, "set,get", args.requests * 3, 16,
                                             args.connections))
            finally:
                done.set()
                if scraper:
                    scraper.join()
                stop([proc])

    print(machine_line())
    print(f"{args.nodes} node(s); wrk -t2 -c{args.connections} -d{args.seconds}s and "
          f"redis-benchmark -c {args.connections} -P 1; median of {args.runs}\n")
    print("| request | ops/s | p99 ms |")
    print("|---|---:|---:|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(v[0] for v in values):,.0f} "
              f"| {statistics.median(v[1] for v in values):.2f} |")
    print(f"\nMetrics cost: redis-benchmark -t set,get -P 16 -c {args.connections} "
          f"-n {args.requests * 3}, one node, median of {args.runs}\n")
    print("| test | HTTP port closed | /metrics scraped every second | ratio |")
    print("|---|---:|---:|---:|")
    for test in ("SET", "GET"):
        closed = statistics.median(r[test][0] for r in cost["closed"])
        scraped = statistics.median(r[test][0] for r in cost["scraped"])
        print(f"| {test} P16 | {closed:,.0f} | {scraped:,.0f} | {scraped / closed:.2f} |")


if __name__ == "__main__":
    main()
