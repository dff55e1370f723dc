#!/usr/bin/env python3
"""A redis-py RedisCluster client whose slot map goes stale: it learns the layout, reads
every key once, then (after the caller moves the leaders and sends a line on stdin) reads
them all again with the same client and per-node connections.

Usage: redis_py_cluster_stale.py KEYS PORT [PORT ...]
Prints `ready` after the first pass and `done moved=<n>` after the second, where n counts
the MOVED redirects the client followed (its map converging).
"""
import sys

from redis.cluster import ClusterNode, RedisCluster


def main():
    keys = int(sys.argv[1])
    nodes = [ClusterNode("127.0.0.1", int(p)) for p in sys.argv[2:]]
    rc = RedisCluster(startup_nodes=nodes)
    for i in range(keys):
        rc.set(f"s:{i}", i)
    for i in range(keys):
        assert rc.get(f"s:{i}") == str(i).encode()
    print("ready", flush=True)
    sys.stdin.readline()
    # redis-py counts the MOVED redirects it follows in `reinitialize_counter`.
    before = rc.reinitialize_counter
    for i in range(keys):
        assert rc.get(f"s:{i}") == str(i).encode()
    print(f"done moved={rc.reinitialize_counter - before}", flush=True)


if __name__ == "__main__":
    main()
