#!/usr/bin/env bash
# Real cache servers for oneiric-adapters-cache's live tests: redis-server and memcached,
# loopback only, on free high ports, as daemons owned by this script.
#
#   bash .ci/services/cache.sh start   install if missing, start, wait until they answer,
#                                      append the export lines to $ONEIRIC_SERVICES_ENV
#   bash .ci/services/cache.sh stop    stop exactly the processes `start` recorded
#
# State (pid files, configs, logs) lives in $ONEIRIC_SERVICES_DIR/cache (default
# /tmp/oneiric-services-$UID), so `stop` in another shell finds what `start` started.
# The env file receives:
#   export ONEIRIC_TEST_REDIS_URL=redis://127.0.0.1:PORT/0
#   export ONEIRIC_TEST_MEMCACHED=127.0.0.1:PORT
#   export ONEIRIC_TEST_CACHE_SERVICES_DIR=DIR
set -euo pipefail

SERVICES_DIR="${ONEIRIC_SERVICES_DIR:-${TMPDIR:-/tmp}/oneiric-services-$(id -u)}"
STATE="$SERVICES_DIR/cache"
ENV_FILE="${ONEIRIC_SERVICES_ENV:-$SERVICES_DIR/env.sh}"
WAIT_SECONDS="${ONEIRIC_SERVICES_WAIT:-30}"

log() { echo "cache.sh: $*" >&2; }

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# Ask a line-protocol server one question over bash's /dev/tcp; print its first answer line.
ask() {
  local port="$1" request="$2" line=""
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%b' "$request" >&3
  IFS= read -r -t 2 line <&3 || true
  exec 3<&- 3>&- || true
  printf '%s' "$line"
}

wait_for() {
  local what="$1" port="$2" request="$3" expect="$4" deadline=$((SECONDS + WAIT_SECONDS))
  while (( SECONDS < deadline )); do
    if [[ "$(ask "$port" "$request" 2>/dev/null)" == "$expect"* ]]; then
      log "$what answers on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  log "$what did not answer on 127.0.0.1:$port within ${WAIT_SECONDS}s"
  return 1
}

install_if_missing() {
  if command -v redis-server >/dev/null && command -v memcached >/dev/null; then
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    log "redis-server/memcached missing and apt-get unavailable; install them by hand"
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  log "installing redis-server and memcached (Debian packages)"
  if ! apt-get install -y -q --no-install-recommends redis-server memcached >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends redis-server memcached >/dev/null
  fi
}

stop_pidfile() {
  local pidfile="$1" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

start() {
  install_if_missing
  if [[ -f "$STATE/redis.pid" || -f "$STATE/memcached.pid" ]]; then
    log "already started (state in $STATE); stopping the old ones first"
    stop
  fi
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  local redis_port memcached_port
  redis_port="${ONEIRIC_TEST_REDIS_PORT:-$(free_port)}"
  memcached_port="${ONEIRIC_TEST_MEMCACHED_PORT:-$(free_port)}"

  redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes \
    --pidfile "$STATE/redis.pid" --dir "$STATE" --logfile "$STATE/redis.log" \
    --save "" --appendonly no --protected-mode yes
  # -I 2m: items up to 2 MiB, so a 1 MiB value (plus item overhead) fits; -U 0: no UDP.
  local user_args=()
  [[ "$(id -u)" == "0" ]] && user_args=(-u root)
  memcached -d -l 127.0.0.1 -p "$memcached_port" -U 0 -m 64 -I 2m \
    -P "$STATE/memcached.pid" "${user_args[@]}" >>"$STATE/memcached.log" 2>&1

  wait_for redis "$redis_port" 'PING\r\n' '+PONG'
  wait_for memcached "$memcached_port" 'version\r\n' 'VERSION'
  # memcached -d writes its pid file shortly after forking; wait for it so `stop` finds it.
  local deadline=$((SECONDS + WAIT_SECONDS))
  while [[ ! -s "$STATE/memcached.pid" || ! -s "$STATE/redis.pid" ]] && (( SECONDS < deadline )); do
    sleep 0.1
  done

  mkdir -p "$(dirname "$ENV_FILE")"
  {
    echo "export ONEIRIC_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0"
    echo "export ONEIRIC_TEST_MEMCACHED=127.0.0.1:$memcached_port"
    echo "export ONEIRIC_TEST_CACHE_SERVICES_DIR=$STATE"
  } >>"$ENV_FILE"
  log "redis 127.0.0.1:$redis_port, memcached 127.0.0.1:$memcached_port; exports appended to $ENV_FILE"
}

stop() {
  stop_pidfile "$STATE/redis.pid"
  stop_pidfile "$STATE/memcached.pid"
  log "stopped the cache servers recorded in $STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
