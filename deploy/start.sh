#!/bin/sh
# Starts one Basalt node in a container. Outside Kubernetes it serves alone; in a
# StatefulSet (POD_NAME, POD_NAMESPACE and SERVICE_NAME set) each pod announces its stable
# DNS name, and every pod but the first joins the cluster through the first one (a pod
# restarted on its volume rejoins the same way: joining again is a no-op for a member).
set -eu

set -- --bind 0.0.0.0 --port 6379 --dir /data --http-port 8080 "$@"
if [ -n "${POD_NAME:-}" ] && [ -n "${SERVICE_NAME:-}" ]; then
  domain="${SERVICE_NAME}.${POD_NAMESPACE:-default}.svc.cluster.local"
  set -- "$@" --cluster-announce-ip "${POD_NAME}.${domain}"
  ordinal="${POD_NAME##*-}"
  if [ "$ordinal" != "0" ]; then
    set -- "$@" --join "${POD_NAME%-*}-0.${domain}:6379"
  fi
fi
exec /usr/local/bin/basalt "$@"
