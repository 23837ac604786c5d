#!/bin/sh
# Writes redis.conf from the environment the OT redis-operator gives its pods, then runs redis-server.
# The contract (redis-operator v0.23.0, internal/agent/bootstrap/redis/config.go and the StatefulSet it
# renders): SETUP_MODE cluster|standalone, REDIS_PORT, REDIS_PASSWORD (masterauth + requirepass),
# PERSISTENCE_ENABLED (RDB + AOF in DATA_DIR), NODE_CONF_DIR (nodes.conf on its own volume, so a
# restarted master keeps its node ID and slots), the pod's address announced to the cluster, the
# additional config include, REDIS_MAX_MEMORY. The config is written under /etc/redis/generated so
# the image needs no writable /etc.
set -eu

conf_dir=/etc/redis/generated
conf="$conf_dir/redis.conf"
data_dir="${DATA_DIR:-/data}"
node_conf_dir="${NODE_CONF_DIR:-/node-conf}"
external="${EXTERNAL_CONFIG_FILE:-/etc/redis/external.conf.d/redis-additional.conf}"
mode="${SETUP_MODE:-standalone}"
port="${REDIS_PORT:-6379}"

# The pod's own IPv4 address: the first global one (what the operator's GetLocalIP returns).
local_ip() {
  hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | head -n 1
}

tmp="$conf.tmp"
{
  echo "bind 0.0.0.0 ::"
  echo "tcp-backlog 511"
  echo "timeout 0"
  echo "tcp-keepalive 300"
  echo "daemonize no"
  echo "supervised no"
  echo "pidfile $conf_dir/redis.pid"
  if [ -n "${REDIS_PASSWORD:-}" ]; then
    echo "masterauth \"$REDIS_PASSWORD\""
    echo "requirepass \"$REDIS_PASSWORD\""
    echo "protected-mode yes"
  else
    echo "Redis is running without a password" >&2
    echo "protected-mode no"
  fi
  if [ "$mode" = "cluster" ]; then
    ip="$(local_ip)"
    nodes="$node_conf_dir/nodes.conf"
    # A pod comes back with a new address: rewrite the address of "myself" in the kept nodes.conf.
    if [ -n "$ip" ] && [ -f "$nodes" ]; then
      sed -E "/myself/ s/[0-9]{1,3}(\.[0-9]{1,3}){3}/$ip/" "$nodes" >"$nodes.tmp" && mv "$nodes.tmp" "$nodes"
    fi
    echo "cluster-enabled yes"
    echo "cluster-node-timeout 5000"
    echo "cluster-require-full-coverage no"
    echo "cluster-migration-barrier 1"
    echo "cluster-config-file $nodes"
    [ -n "$ip" ] && echo "cluster-announce-ip $ip"
    if [ "${REDIS_MAJOR_VERSION:-v7}" = "v7" ]; then
      fqdn="$(hostname -f 2>/dev/null || true)"
      [ -n "$fqdn" ] && echo "cluster-announce-hostname $fqdn"
    fi
  fi
  if [ "${PERSISTENCE_ENABLED:-false}" = "true" ]; then
    echo "save 900 1"
    echo "save 300 10"
    echo "save 60 10000"
    echo "appendonly yes"
    echo "appendfilename \"appendonly.aof\""
    echo "dir $data_dir"
  else
    echo "dir $conf_dir"
  fi
  echo "port $port"
  [ -n "${REDIS_MAX_MEMORY:-}" ] && echo "maxmemory $REDIS_MAX_MEMORY"
  # The user's settings last, so that they win.
  [ -f "$external" ] && echo "include $external"
  true
} >"$tmp"
mv "$tmp" "$conf"
exec redis-server "$conf"
