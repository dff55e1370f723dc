#!/usr/bin/env python3
"""Side-by-side redis-benchmark of redis-server and Basalt on this machine.

Starts both on free loopback ports, runs redis-benchmark against each in alternation
(`-t set,get,incr,mset -c 50`, at -P 1 and -P 16, several runs), and prints a Markdown
table of median ops/s and the Basalt/Redis ratio, with the machine, commit and settings.

With `--tls`, both serve clients over TLS only on the port benchmarked (certificates made
with openssl, no client certificates) and redis-benchmark speaks TLS to both.

With `--scripts`, the commands benchmarked are EVALSHA of a script doing GET + INCR +
EXPIRE on one key, and FCALL of the same as a function (loaded on both first), each on a
random key of `--keyspace` (default 100000).

With `--streams`, the commands benchmarked are XADD (`*` IDs, on `--keyspace` streams),
XRANGE of 100 entries of a 1,000-entry stream, XREADGROUP of one new entry (`>`) of a
stream loaded with as many entries as requests, then XACK of random entries of it.

With `--baseline BIN`, a third server (another Basalt build, e.g. one from before a change)
runs in the same alternation and the table gains its ops/s and the Basalt/baseline ratio.

Usage: bench/compare_redis.py [--runs 5] [--requests 200000] [--tests set,get,incr,mset]
                              [--basalt-args "--appendfsync everysec"] [--redis-args "..."]
                              [--baseline path/to/basalt] [--keyspace 100000] [--tls]
                              [--scripts] [--streams]
"""
import argparse
import csv
import io
import os
import shlex
import statistics
import subprocess
import tempfile

from servers import ROOT, free_port, machine_line, start_basalt, start_redis, stop


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) paths."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=bench CA")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext")
    return tuple(os.path.join(directory, f) for f in ("ca.crt", "server.crt", "server.key"))


# With --acl-user both servers are benchmarked as this user: key patterns and categories
# are checked on every command (a user allowed everything skips the checks).
ACL_USER = ["bench", "on", ">bench", "~key:*", "~counter:*", "~mylist*", "~myset*",
            "+@read", "+@write", "+@connection", "-@dangerous"]


def bench(port, tests, requests, pipeline, clients, keyspace=0, ca=None, user=False):
    cmd = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
           "-P", str(pipeline), "-t", tests, "--csv"]
    if user:
        cmd += ["--user", "bench", "-a", "bench"]
    if ca:
        cmd += ["--tls", "--cacert", ca]
    if keyspace:
        cmd += ["-r", str(keyspace)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = {}
    for row in csv.reader(io.StringIO(out)):
        if len(row) >= 2 and row[0] != "test":
            rows[row[0].split(" ")[0]] = float(row[1])
    return rows


# --scripts: one script, as EVALSHA and as FCALL.
SCRIPT_BODY = ("local v = redis.call('GET', KEYS[1]) redis.call('INCR', KEYS[1]) "
               "redis.call('EXPIRE', KEYS[1], 100) return v")
LIBRARY = ("#!lua name=benchlib\nredis.register_function('getincr', function(keys, args) "
           "local v = redis.call('GET', keys[1]) redis.call('INCR', keys[1]) "
           "redis.call('EXPIRE', keys[1], 100) return v end)")


def load_scripts(port):
    """Loads the script and the library on the server at `port`; the script's SHA-1."""
    cli = ["redis-cli", "-p", str(port)]
    subprocess.run(cli + ["FUNCTION", "LOAD", "REPLACE", LIBRARY], check=True,
                   capture_output=True)
    return subprocess.run(cli + ["SCRIPT", "LOAD", SCRIPT_BODY], check=True,
                          capture_output=True, text=True).stdout.strip()


def bench_scripts(port, sha, requests, pipeline, clients, keyspace):
    """ops/s of EVALSHA and FCALL of the script on random keys."""
    rows = {}
    for name, command in [("evalsha", ["EVALSHA", sha]), ("fcall", ["FCALL", "getincr"])]:
        cmd = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
               "-P", str(pipeline), "-r", str(keyspace or 100000), "--csv",
               *command, "1", "key:__rand_int__"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for row in csv.reader(io.StringIO(out)):
            if len(row) >= 2 and row[0] != "test":
                rows[name] = float(row[1])
    return rows


# --streams: XADD, XRANGE, XREADGROUP and XACK.
def load_streams(port, entries):
    """A 1,000-entry stream to range over, and a queue of `entries` entries (IDs n-0) with
    a consumer group, loaded through redis-cli --pipe."""
    lines = ["DEL bench:range bench:queue"]
    lines += [f"XADD bench:range {n}-0 field value{n}" for n in range(1, 1001)]
    lines += ["XGROUP CREATE bench:queue g 0 MKSTREAM"]
    lines += [f"XADD bench:queue {n}-0 job {n}" for n in range(1, entries + 1)]
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="\n".join(lines) + "\n",
                   text=True, check=True, capture_output=True)


def bench_streams(port, requests, pipeline, clients, keyspace):
    """ops/s of XADD, XRANGE (100 entries), XREADGROUP (one new entry) and XACK."""
    load_streams(port, requests)
    rows = {}
    for name, command, space in [
        ("xadd", ["XADD", "bench:s:__rand_int__", "*", "field", "value"], keyspace or 100),
        ("xrange_100", ["XRANGE", "bench:range", "-", "+", "COUNT", "100"], 0),
        ("xreadgroup", ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS",
                        "bench:queue", ">"], 0),
        ("xack", ["XACK", "bench:queue", "g", "__rand_int__-0"], requests),
    ]:
        cmd = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
               "-P", str(pipeline), "--csv"] + (["-r", str(space)] if space else []) + command
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for row in csv.reader(io.StringIO(out)):
            if len(row) >= 2 and row[0] != "test":
                rows[name] = float(row[1])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--tests", default="set,get,incr,mset")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--basalt-args", default="")
    ap.add_argument("--redis-args", default="--save '' --appendonly no")
    ap.add_argument("--baseline", default="", help="another basalt binary to compare with")
    ap.add_argument("--keyspace", type=int, default=0,
                    help="random keys out of this many (redis-benchmark -r; 0: one key)")
    ap.add_argument("--tls", action="store_true", help="both servers over TLS")
    ap.add_argument("--streams", action="store_true",
                    help="benchmark XADD, XRANGE, XREADGROUP and XACK")
    ap.add_argument("--scripts", action="store_true",
                    help="benchmark EVALSHA and FCALL of GET + INCR + EXPIRE instead of --tests")
    ap.add_argument("--acl-user", action="store_true",
                    help="benchmark both as a restricted ACL user (ACL_USER)")
    args = ap.parse_args()
    if args.tls and args.baseline:
        ap.error("--tls does not apply to --baseline")

    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="basalt-bench-")
    rport, bport = free_port(), free_port()
    redis_args, basalt_args, ca = shlex.split(args.redis_args), shlex.split(args.basalt_args), None
    bench_bport = bport
    if args.tls:
        ca, cert, key = make_certificates(tmp)
        files = ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
                 "--tls-auth-clients", "no"]
        redis_args += ["--port", "0", "--tls-port", str(rport)] + files
        bench_bport = free_port()
        basalt_args += ["--tls-port", str(bench_bport)] + files
    servers = [("redis", rport, start_redis(rport, tmp, redis_args)),
               ("basalt", bench_bport, start_basalt(bport, os.path.join(tmp, "basalt"),
                                                    basalt_args))]
    if args.baseline:
        lport = free_port()
        servers.append(("baseline", lport, start_basalt(lport, os.path.join(tmp, "baseline"),
                                                        shlex.split(args.basalt_args),
                                                        binary=args.baseline)))
    try:
        if args.acl_user:
            for _, port, _ in servers:
                cmd = ["redis-cli", "-p", str(port)] + (["--tls", "--cacert", ca] if ca else [])
                subprocess.run(cmd + ["ACL", "SETUSER"] + ACL_USER, check=True,
                               capture_output=True)
        shas = {name: load_scripts(port) for name, port, _ in servers} if args.scripts else {}
        results = {}  # (server, pipeline, test) -> [ops/s]
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            requests = args.requests * (8 if pipeline > 1 else 1)
            for _ in range(args.runs):
                for name, port, _ in servers:
                    if args.scripts:
                        rows = bench_scripts(port, shas[name], requests, pipeline,
                                             args.clients, args.keyspace)
                    elif args.streams:
                        rows = bench_streams(port, requests, pipeline, args.clients,
                                             args.keyspace)
                    else:
                        rows = bench(port, args.tests, requests, pipeline, args.clients,
                                     args.keyspace, ca, args.acl_user)
                    for test, ops in rows.items():
                        results.setdefault((name, pipeline, test), []).append(ops)
        print(machine_line())
        print(f"redis-benchmark -c {args.clients}, "
              f"{args.requests} requests at P1 (x8 when pipelined), median of {args.runs} runs")
        print(f"Basalt args: `{args.basalt_args or '(defaults)'}`; redis args: `{args.redis_args}`"
              + ("; both over TLS (redis-benchmark --tls)" if args.tls else "")
              + ("; as the ACL user `" + " ".join(ACL_USER) + "`" if args.acl_user else "")
              + "\n")
        if args.baseline:
            print(f"Baseline: `{args.baseline}`\n")
            print("| test | pipeline | redis-server ops/s | Basalt ops/s | Basalt/Redis | baseline ops/s | Basalt/baseline |")
            print("|---|---:|---:|---:|---:|---:|---:|")
        else:
            print("| test | pipeline | redis-server ops/s | Basalt ops/s | Basalt/Redis |")
            print("|---|---:|---:|---:|---:|")
        for (name, pipeline, test), values in sorted(results.items(), key=lambda k: (k[0][1], k[0][2])):
            if name != "redis":
                continue
            r = statistics.median(values)
            b = statistics.median(results.get(("basalt", pipeline, test), [0]))
            row = f"| {test} | {pipeline} | {r:,.0f} | {b:,.0f} | {b / r:.2f} |"
            if args.baseline:
                base = statistics.median(results.get(("baseline", pipeline, test), [0]))
                row += f" {base:,.0f} | {b / base:.2f} |"
            print(row)
    finally:
        stop([p for _, _, p in servers])


if __name__ == "__main__":
    main()
