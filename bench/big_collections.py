#!/usr/bin/env python3
"""Operations on one huge collection: DEL is O(1), windows read only what they return.

Starts a release Basalt (LSM engine) on a free port, builds a hash, a list and a sorted
set of N elements each (pipelined, 1,000 per round trip), then times single commands
against them (median of several calls, client round trip included) and reports the
server's RSS. Usage: bench/big_collections.py [--elements 1000000] [--calls 21]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import redis

from servers import ROOT, free_port


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def median_us(client, *cmd, calls=21, setup=None):
    times = []
    for _ in range(calls):
        if setup:
            setup()
        start = time.perf_counter()
        client.execute_command(*cmd)
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elements", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=21)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    data = tempfile.mkdtemp(prefix="basalt-big-")
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(ROOT, "target/release/basalt"), "--port", str(port), "--dir", data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = redis.Redis(port=port)
        for _ in range(100):
            try:
                c.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        n = a.elements
        start = time.time()
        for base in range(0, n, 1000):
            p = c.pipeline(transaction=False)
            ids = range(base, min(base + 1000, n))
            p.hset("h", mapping={f"f{i}": "v" for i in ids})
            p.rpush("l", *[f"e{i}" for i in ids])
            p.zadd("z", {f"m{i}": i for i in ids})
            p.execute()
        print(f"built hash, list and zset of {n} elements in {time.time() - start:.1f} s")
        mid = n // 2
        calls = a.calls
        rows = [
            ("ZCARD z", median_us(c, "ZCARD", "z", calls=calls)),
            ("ZSCORE z (middle)", median_us(c, "ZSCORE", "z", f"m{mid}", calls=calls)),
            ("ZRANGEBYSCORE z mid +inf LIMIT 0 10",
             median_us(c, "ZRANGEBYSCORE", "z", mid, "+inf", "LIMIT", 0, 10, calls=calls)),
            ("ZRANGE z 0 9", median_us(c, "ZRANGE", "z", 0, 9, calls=calls)),
            ("ZRANGE z -10 -1", median_us(c, "ZRANGE", "z", -10, -1, calls=calls)),
            ("ZRANK z (first)", median_us(c, "ZRANK", "z", "m0", calls=calls)),
            ("LRANGE l mid mid+9", median_us(c, "LRANGE", "l", mid, mid + 9, calls=calls)),
            ("HGET h (middle)", median_us(c, "HGET", "h", f"f{mid}", calls=calls)),
        ]
        rss = rss_mb(server.pid)
        for key in ["z", "h", "l"]:
            start = time.perf_counter()
            c.delete(key)
            rows.append((f"DEL {key} ({n} elements)", (time.perf_counter() - start) * 1e6))
        c.set("s", "x")
        rows.append(("DEL of a string", median_us(c, "DEL", "s", calls=calls,
                                                   setup=lambda: c.set("s", "x"))))
        print(f"\n| command | median µs |\n|---|---:|")
        for name, us in rows:
            print(f"| {name} | {us:.0f} |")
        print(f"\nRSS with the three collections: {rss:.0f} MB")
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
