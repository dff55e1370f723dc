"""redis-py against Basalt: connect (HELLO, CLIENT SETINFO), strings, keys, pipelines, RESP3."""
import sys

import redis

port = int(sys.argv[1])

for protocol in (2, 3):
    r = redis.Redis(port=port, protocol=protocol, decode_responses=True)
    r.flushall()
    assert r.ping() is True
    assert r.set("s", "v") is True
    assert r.get("s") == "v"
    assert r.set("s", "w", nx=True) is None
    assert r.set("e", "1", ex=100) is True
    assert 0 < r.ttl("e") <= 100
    assert r.incr("n") == 1 and r.incrby("n", 5) == 6 and r.decr("n") == 5
    assert r.incrbyfloat("f", 0.1) == 0.1
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "missing") == ["1", "2", None]
    assert r.append("s", "xyz") == 4 and r.strlen("s") == 4
    assert r.getrange("s", 1, 2) == "xy"
    assert r.exists("a", "b", "zz") == 2
    assert r.type("a") == "string"
    assert r.rename("a", "a2") is True
    assert r.expire("a2", 50) is True and r.persist("a2") is True
    assert sorted(r.keys("*")) == sorted(["s", "e", "n", "f", "a2", "b"])
    cursor, found = 0, set()
    while True:
        cursor, keys = r.scan(cursor=cursor, count=2)
        found.update(keys)
        if cursor == 0:
            break
    assert found == {"s", "e", "n", "f", "a2", "b"}, found
    assert r.dbsize() == 6
    assert r.delete("s", "zz") == 1
    assert r.copy("b", "b2") is True and r.get("b2") == "2"
    assert r.getdel("b2") == "2"
    assert r.lcs("a2", "b") == ""
    r.client_setname("py")
    assert r.client_getname() == "py"
    info = r.info()
    assert info["redis_version"] == "7.0.15", info["redis_version"]
    with r.pipeline(transaction=False) as p:
        for i in range(100):
            p.set(f"p{i}", i)
            p.incr(f"c{i % 10}")
        results = p.execute()
    assert results[:2] == [True, 1] and len(results) == 200
    assert r.get("c0") == "10"
    dumped = r.dump("p7")
    r.restore("p7copy", 0, dumped)
    assert r.get("p7copy") == "7"
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    assert "get" in r.command()
    # Scripts: redis-py's Script objects send EVALSHA and load on NOSCRIPT.
    limiter = r.register_script(
        "local n = redis.call('INCR', KEYS[1]) "
        "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
        "return n"
    )
    assert [limiter(keys=["rate"], args=[60000]) for _ in range(3)] == [1, 2, 3]
    assert 0 < r.pttl("rate") <= 60000
    r.script_flush()
    assert r.script_exists(limiter.sha) == [False]
    assert limiter(keys=["rate"], args=[60000]) == 4
    assert r.script_exists(limiter.sha) == [True]
    with r.pipeline() as p:
        limiter(keys=["rate"], args=[60000], client=p)
        p.get("rate")
        assert p.execute() == [5, "5"]
    assert r.eval("return {KEYS[1], ARGV[1]}", 1, "k", "v") == ["k", "v"]
    # Functions: redis-py's function_load / fcall / function_list.
    assert r.function_load(
        "#!lua name=pylib\n"
        "redis.register_function('pyincr', function(keys, args) "
        "return redis.call('INCRBY', keys[1], args[1]) end)"
    ) == "pylib"
    assert r.fcall("pyincr", 1, "fcounter", 3) == 3
    assert r.fcall("pyincr", 1, "fcounter", 4) == 7
    libraries = r.function_list()
    assert len(libraries) == 1 and "pylib" in str(libraries), libraries
    r.function_delete("pylib")
    assert r.function_list() == []
    try:
        r.eval("return redis.call('INCR', KEYS[1])", 1, "s2")
        r.set("s2", "x")
        r.eval("return redis.call('INCR', KEYS[1])", 1, "s2")
        raise AssertionError("INCR of a string did not fail")
    except redis.ResponseError as e:
        assert "not an integer" in str(e), e
    r.close()

print("redis-py ok")
