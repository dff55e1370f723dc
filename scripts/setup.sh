#!/usr/bin/env bash
# Installs what Basalt's tests and benchmarks need on a fresh Debian machine:
# redis-server (the oracle), redis-tools (redis-cli, redis-benchmark), iproute2, openssl (the
# TLS tests make their certificates with it), prometheus (its server scrapes a cluster in a
# test, and promtool checks the exposition), redis-py, PyYAML.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
# `ip` (network namespaces, veth pairs, routes) for the partition tests.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The packaged redis-server may start as a service on 6379; Basalt's tests use their own
# ports, but stop it so `cargo run` can take 6379.
# The same for the packaged Prometheus (its tests start their own on free ports).
if command -v service >/dev/null 2>&1; then
  service redis-server stop >/dev/null 2>&1 || true
  service prometheus stop >/dev/null 2>&1 || true
fi

for module in redis yaml; do
  package=$module
  [ "$module" = yaml ] && package=pyyaml # the deployment manifests' test parses them
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    python3 -m pip install -q "$package" 2>/dev/null || python3 -m pip install -q --break-system-packages "$package"
  fi
done
echo "setup: redis-server $(redis-server --version | awk '{print $3}'), redis-py $(python3 -c 'import redis; print(redis.__version__)')"
