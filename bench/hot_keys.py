#!/usr/bin/env python3
"""Range reads of hot keys before and after 100,000 overwrites, Basalt and redis-server.

For a 10-field hash (HSET of one field, read with HGETALL), a 4-element list (LSET, read
with LRANGE 0 -1) and a 50-member leaderboard (ZINCRBY, read with ZREVRANGE 0 9 WITHSCORES),
measures the read with redis-benchmark (P1), overwrites the key 100,000 times (pipelined),
and measures again. Prints each server's read rate before and after and the after/before
ratio (redis-server shows ~1.0: its structures hold no old versions), medians of several
runs. Basalt runs with its defaults (appendfsync everysec), redis-server with AOF everysec.

Usage: bench/hot_keys.py [--overwrites 100000] [--runs 3] [--requests 50000]
"""
import argparse
import csv
import io
import statistics
import subprocess

from servers import ROOT, machine_line, start_side_by_side, stop

MEMBERS = [f"m{i:012d}" for i in range(50)]

CASES = [
    # name, setup commands, overwrite (redis-benchmark args), read command
    ("hash field -> HGETALL",
     [["HSET", "hv"] + [x for i in range(10) for x in (f"f{i}", chr(97 + i))]],
     ["HSET", "hv", "f3", "__rand_int__"], ["HGETALL", "hv"]),
    ("list element -> LRANGE 0 -1",
     [["RPUSH", "lv", "a", "b", "c", "d"]],
     ["LSET", "lv", "1", "__rand_int__"], ["LRANGE", "lv", "0", "-1"]),
    ("sorted-set scores -> ZREVRANGE 0 9",
     [["ZADD", "lb"] + [x for i, m in enumerate(MEMBERS) for x in (str(i * 100), m)]],
     ["ZINCRBY", "lb", "1", "m__rand_int__"], ["ZREVRANGE", "lb", "0", "9", "WITHSCORES"]),
]


def rate(port, cmd, requests, pipeline=1, rand=None):
    args = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", "10",
            "-P", str(pipeline), "--csv"]
    if rand:
        args += ["-r", str(rand)]
    out = subprocess.run(args + cmd, capture_output=True, text=True, check=True).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if len(r) >= 2 and r[0] != "test"]
    return float(rows[-1][1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--overwrites", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--basalt-args", default="--appendfsync everysec")
    ap.add_argument("--redis-args", default="--save '' --appendonly yes --appendfsync everysec")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt"], cwd=ROOT, check=True)
    servers = start_side_by_side("basalt-hot-", args.redis_args, args.basalt_args)
    rows = []
    try:
        for name, setup, overwrite, read in CASES:
            row = [name]
            for _, port, _ in servers:
                for cmd in setup:
                    subprocess.run(["redis-cli", "-p", str(port)] + cmd, check=True,
                                   capture_output=True)
                before = statistics.median(rate(port, read, args.requests)
                                           for _ in range(args.runs))
                rand = 50 if overwrite[0] == "ZINCRBY" else 1_000_000
                rate(port, overwrite, args.overwrites, pipeline=16, rand=rand)
                after = statistics.median(rate(port, read, args.requests)
                                          for _ in range(args.runs))
                row += [before, after]
            rows.append(row)
    finally:
        stop([p for _, _, p in servers])
    print(machine_line())
    print(f"{args.overwrites:,} overwrites (redis-benchmark -P 16), reads with redis-benchmark "
          f"-c 10 -n {args.requests}, median of {args.runs}")
    print(f"Basalt: `{args.basalt_args}`; redis-server: `{args.redis_args}`\n")
    print("| read after overwrites | redis before | redis after | redis after/before "
          "| Basalt before | Basalt after | Basalt after/before |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rb, ra, bb, ba in rows:
        print(f"| {name} | {rb:,.0f} | {ra:,.0f} | {ra / rb:.2f} | {bb:,.0f} | {ba:,.0f} "
              f"| {ba / bb:.2f} |")


if __name__ == "__main__":
    main()
