#!/usr/bin/env python3
"""SCAN over a keyspace most of whose keys were deleted, Basalt and redis-server.

Writes N keys (MSET, 1,000 per command), deletes 90% of them (DEL, 1,000 per command), and
times full SCAN iterations (COUNT 1000) right after the deletes and again once the server
is idle, against a fresh keyspace that only ever held the surviving 10% (what a scan would
cost with no deletes to step over). Deleted keys are tombstones in an LSM until compaction
drops them: the ratio says what stepping over them costs. Medians of several iterations.
Basalt runs with its defaults (appendfsync everysec), redis-server with AOF everysec.

Usage: bench/scan_deleted.py [--keys 1000000] [--runs 5]
"""
import argparse
import statistics
import subprocess
import time

import redis

from servers import ROOT, machine_line, start_side_by_side, stop

BATCH = 1000


def write(client, keys):
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(keys), BATCH):
        chunk = keys[start:start + BATCH]
        pipe.mset({k: "v" for k in chunk})
        if len(pipe) >= 50:
            pipe.execute()
    pipe.execute()


def delete(client, keys):
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(keys), BATCH):
        pipe.delete(*keys[start:start + BATCH])
        if len(pipe) >= 50:
            pipe.execute()
    pipe.execute()


def full_scan_seconds(client, expect):
    started = time.perf_counter()
    seen = sum(1 for _ in client.scan_iter(count=BATCH))
    elapsed = time.perf_counter() - started
    if seen < expect:
        raise SystemExit(f"SCAN returned {seen} keys, expected {expect}")
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--basalt-args", default="--appendfsync everysec")
    ap.add_argument("--redis-args", default="--save '' --appendonly yes --appendfsync everysec")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt"], cwd=ROOT, check=True)
    keys = [f"key:{i:09d}" for i in range(args.keys)]
    doomed = [k for i, k in enumerate(keys) if i % 10]
    kept = [k for i, k in enumerate(keys) if i % 10 == 0]
    rows = []
    servers = start_side_by_side("basalt-scan-", args.redis_args, args.basalt_args)
    try:
        for name, port, _ in servers:
            client = redis.Redis(port=port)
            write(client, kept)
            fresh = statistics.median(full_scan_seconds(client, len(kept))
                                      for _ in range(args.runs))
            client.flushall()
            write(client, keys)
            delete(client, doomed)
            right_after = statistics.median(full_scan_seconds(client, len(kept))
                                            for _ in range(args.runs))
            time.sleep(10)
            settled = statistics.median(full_scan_seconds(client, len(kept))
                                        for _ in range(args.runs))
            rows.append((name, fresh, right_after, settled))
    finally:
        stop([p for _, _, p in servers])
    print(machine_line())
    print(f"{args.keys:,} keys written, 90% deleted; full SCAN COUNT {BATCH} of the "
          f"{len(kept):,} left (redis-py), median of {args.runs}\n")
    print("| server | fresh keyspace of the survivors | right after the deletes | ratio "
          "| 10 s later | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, fresh, after, settled in rows:
        print(f"| {name} | {fresh * 1000:,.0f} ms | {after * 1000:,.0f} ms "
              f"| {after / fresh:.2f} | {settled * 1000:,.0f} ms | {settled / fresh:.2f} |")


if __name__ == "__main__":
    main()
