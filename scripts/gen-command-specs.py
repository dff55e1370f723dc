#!/usr/bin/env python3
"""Generate src/commands/specs.rs: the Redis 7 metadata of every command Basalt implements.

The metadata (arity, flags, key positions and key specs, ACL categories, tips, and the
documentation that COMMAND DOCS returns) is read from a real redis-server with COMMAND INFO
and COMMAND DOCS, so Basalt's COMMAND replies match redis-server's for the same commands.
The handlers live in src/commands/table.rs; a unit test checks both lists agree.

Usage: scripts/gen-command-specs.py [PORT]   (a redis-server 7.0 must listen on PORT)
"""
import os
import sys

import redis

# Commands Basalt implements, and for containers the subcommands it implements.
COMMANDS = {
    # strings
    "get": None, "set": None, "setnx": None, "setex": None, "psetex": None, "mget": None,
    "mset": None, "msetnx": None, "getset": None, "getdel": None, "getex": None,
    "append": None, "strlen": None, "incr": None, "decr": None, "incrby": None,
    "decrby": None, "incrbyfloat": None, "getrange": None, "setrange": None,
    "substr": None, "lcs": None,
    # bitmaps
    "setbit": None, "getbit": None, "bitcount": None, "bitpos": None, "bitop": None,
    "bitfield": None, "bitfield_ro": None,
    # hyperloglog
    "pfadd": None, "pfcount": None, "pfmerge": None,
    # geo
    "geoadd": None, "geopos": None, "geodist": None, "geohash": None, "georadius": None,
    "georadius_ro": None, "georadiusbymember": None, "georadiusbymember_ro": None,
    "geosearch": None, "geosearchstore": None,
    # hashes
    "hset": None, "hsetnx": None, "hget": None, "hmset": None, "hmget": None, "hdel": None,
    "hexists": None, "hlen": None, "hstrlen": None, "hkeys": None, "hvals": None,
    "hgetall": None, "hincrby": None, "hincrbyfloat": None, "hrandfield": None,
    "hscan": None,
    # lists
    "lpush": None, "rpush": None, "lpushx": None, "rpushx": None, "lpop": None, "rpop": None,
    "llen": None, "lrange": None, "lindex": None, "lset": None, "linsert": None, "lrem": None,
    "ltrim": None, "lpos": None, "lmove": None, "rpoplpush": None, "lmpop": None,
    "blpop": None, "brpop": None, "blmove": None, "brpoplpush": None, "blmpop": None,
    # sets
    "sadd": None, "srem": None, "scard": None, "sismember": None, "smismember": None,
    "smembers": None, "srandmember": None, "spop": None, "smove": None, "sinter": None,
    "sintercard": None, "sinterstore": None, "sunion": None, "sunionstore": None,
    "sdiff": None, "sdiffstore": None, "sscan": None,
    # sorted sets
    "zadd": None, "zincrby": None, "zrem": None, "zcard": None, "zscore": None,
    "zmscore": None, "zrank": None, "zrevrank": None, "zcount": None, "zlexcount": None,
    "zrange": None, "zrangebyscore": None, "zrevrangebyscore": None, "zrangebylex": None,
    "zrevrangebylex": None, "zrevrange": None, "zrangestore": None,
    "zremrangebyrank": None, "zremrangebyscore": None, "zremrangebylex": None,
    "zpopmin": None, "zpopmax": None, "zmpop": None, "bzpopmin": None, "bzpopmax": None,
    "bzmpop": None, "zrandmember": None, "zunion": None, "zinter": None, "zdiff": None,
    "zunionstore": None, "zinterstore": None, "zdiffstore": None, "zintercard": None,
    "zscan": None,
    # sort
    "sort": None, "sort_ro": None,
    # streams
    "xadd": None, "xtrim": None, "xdel": None, "xsetid": None, "xlen": None, "xrange": None,
    "xrevrange": None, "xread": None, "xreadgroup": None, "xack": None, "xpending": None,
    "xclaim": None, "xautoclaim": None,
    "xgroup": ["create", "createconsumer", "delconsumer", "destroy", "setid", "help"],
    "xinfo": ["stream", "groups", "consumers", "help"],
    # pub/sub
    "subscribe": None, "unsubscribe": None, "psubscribe": None, "punsubscribe": None,
    "ssubscribe": None, "sunsubscribe": None, "publish": None, "spublish": None,
    "pubsub": ["channels", "numsub", "numpat", "shardchannels", "shardnumsub", "help"],
    # transactions and replication
    "wait": None,
    "multi": None, "exec": None, "discard": None, "watch": None, "unwatch": None,
    # scripting
    "eval": None, "evalsha": None, "eval_ro": None, "evalsha_ro": None,
    "script": ["load", "exists", "flush", "kill", "help"],
    "fcall": None, "fcall_ro": None,
    "function": ["load", "delete", "flush", "kill", "list", "stats", "dump", "restore", "help"],
    # keys
    "del": None, "unlink": None, "exists": None, "type": None, "rename": None,
    "renamenx": None, "keys": None, "scan": None, "randomkey": None, "dbsize": None,
    "expire": None, "pexpire": None, "expireat": None, "pexpireat": None, "ttl": None,
    "pttl": None, "expiretime": None, "pexpiretime": None, "persist": None, "touch": None,
    "copy": None, "move": None, "dump": None, "restore": None,
    "object": ["encoding", "freq", "idletime", "refcount", "help"],
    # connection
    "ping": None, "echo": None, "hello": None, "auth": None, "select": None, "quit": None,
    "reset": None, "readonly": None, "readwrite": None, "asking": None,
    "acl": ["cat", "deluser", "dryrun", "genpass", "getuser", "list", "load", "log", "save",
            "setuser", "users", "whoami", "help"],
    "client": ["id", "tracking", "caching", "getredir", "trackinginfo", "setname", "getname",
               "setinfo", "list", "info", "kill", "no-evict", "no-touch", "reply", "unblock",
               "pause", "unpause",
               "help"],
    # server
    "info": None, "monitor": None, "time": None, "lastsave": None, "save": None, "bgsave": None,
    "flushdb": None, "flushall": None, "swapdb": None, "shutdown": None, "role": None,
    "config": ["get", "set", "resetstat", "rewrite", "help"],
    "slowlog": ["get", "len", "reset", "help"],
    "memory": ["usage", "stats", "doctor", "malloc-stats", "purge", "help"],
    "latency": ["latest", "history", "reset", "graph", "doctor", "histogram", "help"],
    "command": ["count", "info", "docs", "getkeys", "getkeysandflags", "list", "help"],
    # cluster
    "cluster": ["info", "myid", "keyslot", "countkeysinslot", "getkeysinslot", "slots",
                "shards", "nodes", "replicas", "slaves", "count-failure-reports", "links", "failover", "help",
                "addslots", "addslotsrange", "delslots", "delslotsrange", "flushslots",
                "setslot", "replicate", "forget", "reset", "meet", "bumpepoch",
                "set-config-epoch", "saveconfig"],
}

# Basalt's own DEBUG: only SLEEP, documented here since Redis's DEBUG has no docs.
DEBUG_META = {
    "name": "debug", "arity": -2, "flags": ["admin", "noscript", "loading", "stale"],
    "first": 0, "last": 0, "step": 0, "acl": ["@admin", "@slow", "@dangerous"],
    "tips": [], "key_specs": [], "subcommands": [],
}


# Redis 7.2 added CLIENT SETINFO and CLIENT NO-TOUCH; redis-py sends SETINFO on connect. Their
# metadata is written here from the 7.2 command definitions, since a 7.0 server has none.
def _token(name, kind, token):
    return [b"name", name, b"type", kind, b"token", token]


EXTRA = {
    "client|setinfo": (
        ["client|setinfo", 4, ["noscript", "loading", "stale"], 0, 0, 0,
         ["@slow", "@connection"], ["request_policy:all_nodes", "response_policy:all_succeeded"], [], []],
        [b"summary", "Sets information specific to the client or connection.", b"since", "7.2.0",
         b"group", "connection", b"complexity", "O(1)",
         b"arguments", [[b"name", "attr", b"type", "oneof", b"arguments",
                         [_token("libname", "string", "LIB-NAME"),
                          _token("libver", "string", "LIB-VER")]]]]),
    "client|no-touch": (
        ["client|no-touch", 3, ["noscript", "loading", "stale"], 0, 0, 0,
         ["@slow", "@connection"], [], [], []],
        [b"summary", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
         b"since", "7.2.0", b"group", "connection", b"complexity", "O(1)",
         b"arguments", [[b"name", "enabled", b"type", "oneof", b"arguments",
                         [_token("on", "pure-token", "ON"), _token("off", "pure-token", "OFF")]]]]),
}


# Basalt's own KEYEVENTS (kept keyspace events, read from where a consumer left off): Redis has
# no such command, so its metadata is written here.
def _basalt(name, arity, summary, complexity, args=(), flags=()):
    info = [name, arity, ["loading", "stale", *flags], 0, 0, 0, ["@slow"], [], [], []]
    docs = [b"summary", summary, b"since", "basalt-0.1", b"group", "server",
            b"complexity", complexity]
    if args:
        docs += [b"arguments", list(args)]
    return (name, info, docs)


BASALT_COMMANDS = [
    _basalt("keyevents", -2, "A container for reading the keyspace events shards keep.",
            "Depends on subcommand."),
    _basalt("keyevents|read", -4, "Returns the keyspace events a shard kept after an event id.",
            "O(N) with N the events returned.",
            [[b"name", "shard", b"type", "integer"], [b"name", "id", b"type", "string"],
             [b"name", "count", b"type", "integer", b"token", "COUNT", b"flags", ["optional"]],
             [b"name", "milliseconds", b"type", "integer", b"token", "BLOCK", b"flags", ["optional"]]],
            flags=["blocking"]),
    _basalt("keyevents|shards", 2, "Lists the shards this node keeps events of, with their slots and oldest event.",
            "O(N) with N the shards."),
    _basalt("keyevents|help", 2, "Returns helpful text about the different subcommands.", "O(1)"),
]


def s(v):
    return v.decode() if isinstance(v, bytes) else v


def rust_str(v):
    v = s(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rust_strs(vs):
    return "&[" + ", ".join(rust_str(v) for v in vs) + "]"


def pairs(flat):
    return [(s(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def key_spec(raw):
    d = dict(pairs(raw))
    bs = dict(pairs(d["begin_search"]))
    fk = dict(pairs(d["find_keys"]))
    bspec = dict(pairs(bs["spec"]))
    fspec = dict(pairs(fk["spec"]))
    btype, ftype = s(bs["type"]), s(fk["type"])
    if btype == "index":
        begin = f"BeginSearch::Index({bspec['index']})"
    elif btype == "keyword":
        begin = f"BeginSearch::Keyword({rust_str(bspec['keyword'])}, {bspec['startfrom']})"
    else:
        begin = "BeginSearch::Unknown"
    if ftype == "range":
        find = f"FindKeys::Range {{ lastkey: {fspec['lastkey']}, keystep: {fspec['keystep']}, limit: {fspec['limit']} }}"
    elif ftype == "keynum":
        find = f"FindKeys::Keynum {{ keynumidx: {fspec['keynumidx']}, firstkey: {fspec['firstkey']}, keystep: {fspec['keystep']} }}"
    else:
        find = "FindKeys::Unknown"
    notes = f"Some({rust_str(d['notes'])})" if "notes" in d else "None"
    return (f"KeySpec {{ notes: {notes}, flags: {rust_strs(d['flags'])}, "
            f"begin_search: {begin}, find_keys: {find} }}")


ARG_FIELDS = ["name", "type", "display_text", "key_spec_index", "token", "summary", "since",
              "flags", "deprecated_since", "arguments", "value"]


def argument(raw, indent):
    fields = pairs(raw)
    order = [f for f, _ in fields]
    known = [f for f in ARG_FIELDS if f in order]
    assert order == known, f"unexpected argument field order {order}"
    d = dict(fields)
    opt = lambda f: f"Some({rust_str(d[f])})" if f in d else "None"
    ksi = f"Some({d['key_spec_index']})" if "key_spec_index" in d else "None"
    children = ""
    if "arguments" in d:
        children = "".join(argument(a, indent + 4) for a in d["arguments"])
    pad = " " * indent
    return (f"{pad}Arg {{ name: {rust_str(d['name'])}, kind: {rust_str(d['type'])}, "
            f"display_text: {opt('display_text')}, key_spec_index: {ksi}, token: {opt('token')}, "
            f"summary: {opt('summary')}, since: {opt('since')}, "
            f"flags: {rust_strs(d.get('flags', []))}, deprecated_since: {opt('deprecated_since')}, "
            f"value: {opt('value')}, arguments: &[\n{children}{pad}] }},\n")


DOC_FIELDS = ["summary", "since", "group", "complexity", "module", "doc_flags",
              "deprecated_since", "replaced_by", "history", "arguments", "subcommands"]


def doc(raw):
    fields = pairs(raw)
    order = [f for f, _ in fields]
    assert order == [f for f in DOC_FIELDS if f in order], f"unexpected doc field order {order}"
    d = dict(fields)
    opt = lambda f: f"Some({rust_str(d[f])})" if f in d else "None"
    hist = ", ".join(f"({rust_str(h[0])}, {rust_str(h[1])})" for h in d.get("history", []))
    args = "".join(argument(a, 12) for a in d.get("arguments", []))
    return (f"Doc {{ summary: {rust_str(d['summary'])}, since: {rust_str(d['since'])}, "
            f"group: {rust_str(d['group'])}, complexity: {opt('complexity')}, "
            f"doc_flags: {rust_strs(d.get('doc_flags', []))}, "
            f"deprecated_since: {opt('deprecated_since')}, replaced_by: {opt('replaced_by')}, "
            f"history: &[{hist}], arguments: &[\n{args}        ] }}")


def meta(name, info, docs):
    (cname, arity, flags, first, last, step, acl, tips, specs, _subs) = info
    specs_rs = ", ".join(key_spec(k) for k in specs)
    doc_rs = doc(docs) if docs is not None else "NO_DOC"
    return (f"    CommandSpec {{\n        name: {rust_str(cname)}, arity: {arity}, flags: {rust_strs(flags)},\n"
            f"        first_key: {first}, last_key: {last}, step: {step}, acl_categories: {rust_strs(acl)},\n"
            f"        tips: {rust_strs(tips)}, key_specs: &[{specs_rs}],\n"
            f"        doc: {doc_rs},\n    }},\n")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    conn = redis.Connection(port=port, protocol=2)

    def call(*args):
        conn.send_command(*args)
        return conn.read_response(disable_decoding=True)

    out = []
    for name, subs in sorted(COMMANDS.items()):
        info = call("COMMAND", "INFO", name)[0]
        docs = call("COMMAND", "DOCS", name)
        docmap = dict(pairs(docs))[name]
        # The container itself, without its subcommand docs (they are generated per subcommand).
        fields = pairs(docmap)
        docmap = [x for f, v in fields if f != "subcommands" for x in (f.encode(), v)]
        out.append(meta(name, info, docmap))
        for sub in subs or []:
            full = f"{name}|{sub}"
            if full in EXTRA:
                out.append(meta(full, *EXTRA[full]))
                continue
            sinfo = call("COMMAND", "INFO", full)[0]
            sdocs = dict(pairs(call("COMMAND", "DOCS", full)))[full]
            out.append(meta(full, sinfo, sdocs))
    for name, info, docs in BASALT_COMMANDS:
        out.append(meta(name, info, docs))
    d = DEBUG_META
    out.append(meta("debug", [d["name"], d["arity"], d["flags"], d["first"], d["last"], d["step"],
                              d["acl"], d["tips"], [], []], None))
    path = os.path.join(os.path.dirname(__file__), "..", "src", "commands", "specs.rs")
    with open(path, "w") as f:
        f.write("//! Generated by scripts/gen-command-specs.py from redis-server 7.0's COMMAND INFO and\n")
        f.write("//! COMMAND DOCS: the metadata of every command Basalt implements. Do not edit.\n\n")
        f.write("#![allow(clippy::all)]\n\n")
        f.write("use super::spec::{Arg, BeginSearch, CommandSpec, Doc, FindKeys, KeySpec, NO_DOC};\n\n")
        f.write("pub static SPECS: &[CommandSpec] = &[\n")
        f.write("".join(out))
        f.write("];\n")
    print(f"wrote {len(out)} commands to {path}")


if __name__ == "__main__":
    main()
