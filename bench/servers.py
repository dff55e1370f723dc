"""Helpers the benchmark scripts share: free ports, starting redis-server and Basalt on
them, waiting until they answer, and the line that says what machine and commit a table
came from."""
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASALT = os.path.join(ROOT, "target", "release", "basalt")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    for _ in range(500):
        if proc.poll() is not None:
            sys.exit(f"server exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"server on {port} did not start")


def start_redis(port, data_dir, args):
    """redis-server on `port` with its files in `data_dir` and extra `args` (a list)."""
    os.makedirs(data_dir, exist_ok=True)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", data_dir] + args, stdout=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def start_basalt(port, data_dir, args, binary=BASALT):
    """A release Basalt on `port` with its data in `data_dir` and extra `args` (a list)."""
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", data_dir] + args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def start_side_by_side(prefix, redis_args, basalt_args):
    """A redis-server and a Basalt on free ports, data in a fresh temp dir named `prefix`…,
    each with its extra args (shell-quoted strings): [(name, port, process)]."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    rport, bport = free_port(), free_port()
    return [("redis", rport, start_redis(rport, os.path.join(tmp, "redis"),
                                         shlex.split(redis_args))),
            ("basalt", bport, start_basalt(bport, os.path.join(tmp, "basalt"),
                                           shlex.split(basalt_args)))]


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def machine_line():
    """Cores, CPU model, kernel, commit and redis-server version, for a table's caption."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.split()[2].removeprefix("v=")
    return (f"Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; "
            f"commit {commit}; redis-server {redis_version}")
