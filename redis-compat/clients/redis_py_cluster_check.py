#!/usr/bin/env python3
"""redis-py's RedisCluster against a Basalt cluster: discovery, keys over every slot,
pipelines across nodes, hash tags, mget_nonatomic, and how many commands were forwarded.

Usage: redis_py_cluster_check.py PORT [PORT ...]   (client ports of the cluster's nodes)
Exits non-zero with a message on the first mismatch. Prints `forwarded=<n>`: the commands
the nodes forwarded to another node while it ran (a cluster client should need none).
"""
import sys

import redis
from redis.cluster import ClusterNode, RedisCluster


def forwarded(ports):
    total = 0
    for port in ports:
        info = redis.Redis(port=port).info("stats")
        total += int(info.get("forwarded_commands", 0))
    return total


def main():
    ports = [int(p) for p in sys.argv[1:]]
    before = forwarded(ports)
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", ports[0])],
                      decode_responses=True)
    slots = rc.cluster_slots()
    covered = sum(end - start + 1 for (start, end) in slots)
    assert covered == 16384, f"slots covered: {covered}"
    masters = {n.port for n in rc.get_primaries()}
    assert masters <= set(ports), f"masters {masters} are not the cluster's ports {ports}"

    n = 10_000
    for i in range(n):
        rc.set(f"key:{i}", f"v{i}")
    for i in range(0, n, 97):
        assert rc.get(f"key:{i}") == f"v{i}", f"key:{i}"
    slots_used = {rc.keyslot(f"key:{i}") for i in range(n)}
    assert len(slots_used) > 5000, f"only {len(slots_used)} slots used"

    # Pipelines whose commands go to several nodes.
    pipe = rc.pipeline()
    for i in range(n):
        pipe.incr(f"counter:{i % 500}")
    pipe.execute()
    pipe = rc.pipeline()
    for i in range(500):
        pipe.get(f"counter:{i}")
    assert pipe.execute() == ["20"] * 500

    # Hash tags keep multi-key commands on one slot.
    rc.mset({"{user:1}:name": "ann", "{user:1}:mail": "a@x"})
    assert rc.mget("{user:1}:name", "{user:1}:mail") == ["ann", "a@x"]
    rc.rpush("{q}:a", 1, 2, 3)
    assert rc.lmove("{q}:a", "{q}:b") == "1"
    try:
        rc.execute_command("MSET", "a", "1", "b", "2")
        raise AssertionError("MSET across slots should answer CROSSSLOT")
    except redis.exceptions.RedisClusterException:
        pass
    except redis.exceptions.ResponseError as e:
        assert "CROSSSLOT" in str(e), e

    # Keys spread over every node, read back in one call.
    keys = [f"key:{i}" for i in range(0, n, 13)]
    assert rc.mget_nonatomic(keys) == [f"v{i}" for i in range(0, n, 13)]
    assert rc.delete(*[f"counter:{i}" for i in range(500)]) == 500

    print(f"forwarded={forwarded(ports) - before}")


if __name__ == "__main__":
    main()
