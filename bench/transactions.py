#!/usr/bin/env python3
"""Transactions and pub/sub, Basalt beside redis-server at equal durability.

Over one redis-py connection (latency-bound, as most application code is): MULTI with 10
SETs then EXEC, one transaction per round trip (P1) and 16 per round trip (P16); a MULTI
block of INCR, INCR, GET; the optimistic-increment pattern WATCH, GET, MULTI, SET, EXEC.
Then `redis-benchmark PUBLISH` with 50 clients at P1 and P16 while 1 or 100 subscribers
(spread over the nodes) read every message. Medians of --runs runs; ratio = Basalt / redis.

With --cluster the Basalt side is a 3-node cluster on this machine (scripts/cluster.sh,
RF 3, `--cross-shard-transactions yes`), clients on node 0; redis-server is one process.
There the MULTI INCR INCR GET block also runs over two keys of different shards (a
cross-shard transaction in Basalt; a plain one in the single redis-server).

Usage: bench/transactions.py [--runs 3] [--ops 2000] [--cluster]
       [--redis-args "--appendonly yes --appendfsync everysec"]
       [--basalt-args "--appendfsync everysec"]
"""
import argparse
import os
import re
import shlex
import socket
import statistics
import subprocess
import tempfile
import threading
import time

import redis

from servers import ROOT, free_port, machine_line, start_redis, start_side_by_side, stop


def multi_sets(pipeline):
    def run(ports, ops):
        r = redis.Redis(port=ports[0])
        rounds = max(1, ops // pipeline)
        started = time.perf_counter()
        for i in range(rounds):
            p = r.pipeline(transaction=False)
            for t in range(pipeline):
                p.execute_command("MULTI")
                for k in range(10):
                    p.set(f"{{t}}k{k}", i)
                p.execute_command("EXEC")
            p.execute()
        return rounds * pipeline / (time.perf_counter() - started)
    return run


def multi_block(ports, ops):
    r = redis.Redis(port=ports[0])
    started = time.perf_counter()
    for _ in range(ops):
        p = r.pipeline(transaction=True)
        p.incr("{t}a").incr("{t}b").get("{t}a")
        p.execute()
    return ops / (time.perf_counter() - started)


def crc16(data):
    """CRC16-XMODEM, Redis Cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def keys_of_two_shards(shards=16):
    """Two keys whose slots fall in different shards (of `shards` even slot ranges)."""
    shard = lambda k: (crc16(k.encode()) % 16384) * shards // 16384
    first = "acct0"
    return first, next(k for k in (f"acct{i}" for i in range(1, 100)) if shard(k) != shard(first))


def multi_block_across(ports, ops):
    a, b = keys_of_two_shards()
    r = redis.Redis(port=ports[0])
    started = time.perf_counter()
    for _ in range(ops):
        p = r.pipeline(transaction=True)
        p.incr(a).incr(b).get(a)
        p.execute()
    return ops / (time.perf_counter() - started)


def watch_increment(ports, ops):
    r = redis.Redis(port=ports[0])
    started = time.perf_counter()
    for _ in range(ops):
        with r.pipeline() as p:
            p.watch("{t}c")
            value = int(p.get("{t}c") or 0)
            p.multi()
            p.set("{t}c", value + 1)
            p.execute()
    return ops / (time.perf_counter() - started)


class Subscriber(threading.Thread):
    """A raw connection subscribed to `ch`, reading (and dropping) all it is sent."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        self.received = 0
        self.start()

    def run(self):
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                self.received += data.count(b"message")
        except OSError:
            return


def publish(subscribers, pipeline):
    def run(ports, ops):
        subs = [Subscriber(ports[i % len(ports)]) for i in range(subscribers)]
        time.sleep(0.3)
        out = subprocess.run(["redis-benchmark", "-p", str(ports[0]), "-n", str(ops * 25),
                              "-c", "50", "-P", str(pipeline), "-q", "PUBLISH", "ch", "hello"],
                             capture_output=True, text=True).stdout
        for s in subs:
            s.sock.close()
        return float(re.findall(r"([\d.]+) requests per second", out)[-1])
    return run


def start_cluster(basalt_args):
    tmp = tempfile.mkdtemp(prefix="basalt-txn-cluster-")
    base = free_port() // 10 * 10 % 20000 + 30000
    env = dict(os.environ, BASALT_CLUSTER_DIR=os.path.join(tmp, "cluster"),
               BASALT_BASE_PORT=str(base), BASALT_FLAGS=basalt_args)
    script = os.path.join(ROOT, "scripts", "cluster.sh")
    subprocess.run([script, "start", "3"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    time.sleep(5)  # the shards' leaderships spread over the nodes first
    return [base, base + 1, base + 2], lambda: subprocess.run([script, "stop", "3"], env=env,
                                                             cwd=ROOT, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--redis-args", default="--save '' --appendonly yes --appendfsync everysec")
    ap.add_argument("--basalt-args", default="--appendfsync everysec")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "basalt"], cwd=ROOT, check=True)
    if args.cluster:
        rport = free_port()
        tmp = tempfile.mkdtemp(prefix="basalt-txn-redis-")
        redis_proc = start_redis(rport, tmp, shlex.split(args.redis_args))
        bports, stop_cluster = start_cluster(args.basalt_args + " --cross-shard-transactions yes")
        sides = [("redis", [rport]), ("basalt", bports)]
        cleanup = lambda: (stop([redis_proc]), stop_cluster())
    else:
        servers = start_side_by_side("basalt-txn-", args.redis_args, args.basalt_args)
        sides = [(n, [port]) for n, port, _ in servers]
        cleanup = lambda: stop([p for _, _, p in servers])
    try:
        print(machine_line())
        shape = "3-node Basalt cluster (RF 3)" if args.cluster else "one Basalt node"
        print(f"{shape}: `{args.basalt_args}`; redis-server: `{args.redis_args}`; "
              f"median of {args.runs} runs\n")
        print("| workload | redis ops/s | Basalt ops/s | ratio |")
        print("|---|---:|---:|---:|")
        across = [("MULTI INCR INCR GET EXEC, 2 shards", multi_block_across)] if args.cluster else []
        for name, run in [("MULTI 10×SET EXEC, P1", multi_sets(1)),
                          ("MULTI 10×SET EXEC, P16", multi_sets(16)),
                          ("MULTI INCR INCR GET EXEC", multi_block),
                          ("WATCH GET MULTI SET EXEC", watch_increment),
                          ("PUBLISH, 1 subscriber, P1", publish(1, 1)),
                          ("PUBLISH, 1 subscriber, P16", publish(1, 16)),
                          ("PUBLISH, 100 subscribers, P1", publish(100, 1)),
                          ("PUBLISH, 100 subscribers, P16", publish(100, 16))] + across:
            rates = {n: [] for n, _ in sides}
            for _ in range(args.runs):
                for n, ports in sides:
                    rates[n].append(run(ports, args.ops))
            r, b = statistics.median(rates["redis"]), statistics.median(rates["basalt"])
            print(f"| {name} | {r:,.0f} | {b:,.0f} | {b / r:.2f} |", flush=True)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
