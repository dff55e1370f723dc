#!/usr/bin/env python3
"""Transactions and pub/sub, Basalt beside redis-server at equal durability.

Over one redis-py connection (latency-bound, as most application code is): a MULTI block of
INCR, INCR, GET (redis-py's `pipeline(transaction=True)`), and the optimistic-increment
pattern WATCH, GET, MULTI, SET, EXEC. Then `redis-benchmark PUBLISH` with 50 clients.
Medians of --runs runs; ratio = Basalt / redis.

Usage: bench/transactions.py [--runs 3] [--ops 3000]
       [--redis-args "--appendonly yes --appendfsync everysec"]
       [--basalt-args "--appendfsync everysec"]
"""
import argparse
import re
import statistics
import subprocess
import time

import redis

from servers import machine_line, start_side_by_side, stop


def multi_block(port, ops):
    r = redis.Redis(port=port)
    started = time.perf_counter()
    for _ in range(ops):
        p = r.pipeline(transaction=True)
        p.incr("{t}a").incr("{t}b").get("{t}a")
        p.execute()
    return ops / (time.perf_counter() - started)


def watch_increment(port, ops):
    r = redis.Redis(port=port)
    started = time.perf_counter()
    for _ in range(ops):
        with r.pipeline() as p:
            p.watch("{t}c")
            value = int(p.get("{t}c") or 0)
            p.multi()
            p.set("{t}c", value + 1)
            p.execute()
    return ops / (time.perf_counter() - started)


def publish(port, ops):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(ops * 50), "-c", "50",
                          "-q", "PUBLISH", "ch", "hello"], capture_output=True, text=True).stdout
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ops", type=int, default=3000)
    ap.add_argument("--redis-args", default="--save '' --appendonly yes --appendfsync everysec")
    ap.add_argument("--basalt-args", default="--appendfsync everysec")
    args = ap.parse_args()
    servers = start_side_by_side("basalt-txn-", args.redis_args, args.basalt_args)
    try:
        print(machine_line())
        print(f"{'workload':<34} {'redis':>10} {'basalt':>10} {'ratio':>6}")
        for name, run in [("MULTI INCR INCR GET EXEC", multi_block),
                          ("WATCH GET MULTI SET EXEC", watch_increment),
                          ("PUBLISH (50 clients)", publish)]:
            rates = {n: [] for n, _, _ in servers}
            for _ in range(args.runs):
                for n, port, _ in servers:
                    rates[n].append(run(port, args.ops))
            r, b = statistics.median(rates["redis"]), statistics.median(rates["basalt"])
            print(f"{name:<34} {r:>10.0f} {b:>10.0f} {b / r:>6.2f}")
    finally:
        stop([p for _, _, p in servers])


if __name__ == "__main__":
    main()
