#!/usr/bin/env python3
"""Writes keys through redis-py's RedisCluster for a while, riding out node failures with
the client's own retries, and records every write the cluster acknowledged.

Usage: redis_py_cluster_writer.py SECONDS ACKED_FILE PORT [PORT ...]
Writes `w:<i>` = `v<i>`; appends each acknowledged i to ACKED_FILE (one per line).
Prints `acked=<n> failed=<n>`.
"""
import sys
import time

import redis
from redis.cluster import ClusterNode, RedisCluster


def main():
    seconds, acked_path = float(sys.argv[1]), sys.argv[2]
    nodes = [ClusterNode("127.0.0.1", int(p)) for p in sys.argv[3:]]
    rc = RedisCluster(startup_nodes=nodes, cluster_error_retry_attempts=10,
                      socket_timeout=5, socket_connect_timeout=1)
    acked = failed = 0
    deadline = time.monotonic() + seconds
    i = 0
    with open(acked_path, "w") as out:
        while time.monotonic() < deadline:
            try:
                if rc.set(f"w:{i}", f"v{i}"):
                    out.write(f"{i}\n")
                    out.flush()
                    acked += 1
            except (redis.exceptions.RedisError, OSError):
                failed += 1
                time.sleep(0.05)
            i += 1
    print(f"acked={acked} failed={failed}")


if __name__ == "__main__":
    main()
