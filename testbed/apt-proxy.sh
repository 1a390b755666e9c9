#!/usr/bin/env bash
# Start (idempotently) or stop the host-side apt proxy the test containers use: testbed/apt-proxy.sh start|stop|status
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/.cache/apt-proxy
port=${APT_PROXY_PORT:-3142}
pidfile=$dir/pid
mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
host=$(echo "$mirror" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case ${1:-start} in
  start)
    running && exit 0
    mkdir -p "$dir/cache"
    nohup /usr/bin/python3 "$top/testbed/apt-proxy.py" --port "$port" --cache "$dir/cache" \
      --allow-host "$host" >"$dir/access.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 50); do
      curl -s -o /dev/null "http://127.0.0.1:$port/" && { echo "apt-proxy: listening on :$port for $host"; exit 0; }
      sleep 0.1
    done
    echo "apt-proxy: failed to start, see $dir/access.log" >&2; exit 1 ;;
  stop) running && kill "$(cat "$pidfile")"; rm -f "$pidfile" ;;
  status) if running; then echo "apt-proxy: running (pid $(cat "$pidfile"))"; else echo "apt-proxy: stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
