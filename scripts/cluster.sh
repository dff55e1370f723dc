#!/usr/bin/env bash
# A local Basalt cluster on loopback: N nodes on client ports 7001.. (node-to-node ports
# 17001..), data in ./cluster-data/node-<i>, logs beside the data.
#
#   scripts/cluster.sh start 3     build if needed, start 3 nodes (the first bootstraps, the
#                                  others join it), wait until every shard has its replicas;
#                                  nodes already running are left alone, so `start 4` after
#                                  `start 3` adds a node (the balancer moves replicas to it)
#   scripts/cluster.sh status 3    each node's shard groups (INFO raft)
#   scripts/cluster.sh stop 3      stop the nodes (SIGTERM); the data stays
#   scripts/cluster.sh clean       remove ./cluster-data
#
# Extra flags for every node: BASALT_FLAGS="--appendfsync always --shards 8".
# HTTP ports: BASALT_HTTP_BASE_PORT=8001 gives node i the HTTP port 8001 + i.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTION=${1:-status}
N=${2:-3}
BASE=${BASALT_BASE_PORT:-7001}
DATA=${BASALT_CLUSTER_DIR:-cluster-data}
BIN=${BASALT_BIN:-target/release/basalt}

port() { echo $((BASE + $1)); }

ask() { # port, command...
  local p=$1; shift
  if command -v redis-cli >/dev/null; then
    redis-cli -p "$p" "$@"
  else
    python3 - "$p" "$@" <<'PY'
import socket, sys
port, args = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), timeout=2)
s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
print(s.recv(1 << 16).decode(errors="replace"))
PY
  fi
}

case "$ACTION" in
  start)
    [ -x "$BIN" ] || cargo build --release --bin basalt
    mkdir -p "$DATA"
    for i in $(seq 0 $((N - 1))); do
      dir="$DATA/node-$i"
      mkdir -p "$dir"
      if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then continue; fi
      join=()
      if [ "$i" -gt 0 ] && [ ! -d "$dir/raft" ]; then join=(--join "127.0.0.1:$(port 0)"); fi
      http=()
      if [ -n "${BASALT_HTTP_BASE_PORT:-}" ]; then http=(--http-port $((BASALT_HTTP_BASE_PORT + i))); fi
      # shellcheck disable=SC2086
      nohup "$BIN" --port "$(port "$i")" --cluster-port $(( $(port "$i") + 10000 )) \
        --bind 127.0.0.1 --dir "$dir" "${join[@]}" "${http[@]}" ${BASALT_FLAGS:-} >"$dir/basalt.log" 2>&1 &
      echo $! >"$dir/pid"
      # The first node must be up before the others ask it to let them in.
      for _ in $(seq 1 100); do ask "$(port "$i")" PING >/dev/null 2>&1 && break; sleep 0.1; done
    done
    want=$(( N < 3 ? N : 3 ))
    # Every node known to the map, and every shard group node 0 holds at full strength.
    for _ in $(seq 1 300); do
      if ask "$(port 0)" CLUSTER INFO | grep -q "cluster_known_nodes:$N" &&
        ! ask "$(port 0)" INFO raft | grep '^shard' | grep -v 'voters=0,' | grep -qv "voters=$want,"; then
        break
      fi
      sleep 0.2
    done
    echo "cluster of $N nodes on ports $(port 0)..$(port $((N - 1)))"
    ;;
  status)
    for i in $(seq 0 $((N - 1))); do
      echo "== node $i (port $(port "$i"))"
      ask "$(port "$i")" INFO raft 2>/dev/null | grep -E '^(node_id|shard)' || echo "not running"
    done
    ;;
  stop)
    for i in $(seq 0 $((N - 1))); do
      pidfile="$DATA/node-$i/pid"
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    done
    ;;
  clean)
    rm -rf "$DATA"
    ;;
  *)
    echo "usage: $0 start|status|stop N | clean" >&2
    exit 2
    ;;
esac
