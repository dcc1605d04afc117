#!/usr/bin/env bash
# Strait quickstart: a working mesh on this host in one command.
#
# Builds Strait, starts two demo backends (python3 -m http.server), writes an
# io.l5d.fs service-discovery directory naming them as the service `hello`,
# and runs Strait on 127.0.0.1:4140 (admin on 127.0.0.1:9990) with the
# embedded config below. Ctrl-C stops everything it started.
#
# Needs only the Rust toolchain and python3. Override the ports with
# STRAIT_PORT and ADMIN_PORT if 4140 or 9990 are taken.
set -euo pipefail
cd "$(dirname "$0")/../.."

STRAIT_PORT=${STRAIT_PORT:-4140}
ADMIN_PORT=${ADMIN_PORT:-9990}

echo "quickstart: building strait (cargo build --release --locked) ..."
cargo build --release --locked --quiet -p strait

work=$(mktemp -d "${TMPDIR:-/tmp}/strait-quickstart.XXXXXX")
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  echo "quickstart: stopped."
}
trap cleanup INT TERM EXIT

# Two instances of the service `hello`, each saying who it is.
mkdir -p "$work/disco"
: > "$work/disco/hello"
for i in 1 2; do
  mkdir -p "$work/hello-$i"
  echo "hello from instance $i" > "$work/hello-$i/index.html"
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/hello-$i" > "$work/hello-$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2; do
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^Serving HTTP on .* port \([0-9]*\) .*/\1/p' "$work/hello-$i.log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "quickstart: backend $i did not start:"; cat "$work/hello-$i.log"; exit 1; }
  echo "127.0.0.1 $port" >> "$work/disco/hello"
done

cat > "$work/linkerd.yaml" <<YAML
# The quickstart's embedded config: one router, one file-based namer.
admin:
  ip: 127.0.0.1
  port: $ADMIN_PORT
namers:
- kind: io.l5d.fs
  rootDir: $work/disco        # one file per service: "host port" lines
routers:
- protocol: http
  label: outgoing
  dtab: /svc => /#/io.l5d.fs;  # Host: hello  ->  /svc/hello  ->  the file disco/hello
  servers:
  - ip: 127.0.0.1
    port: $STRAIT_PORT
telemetry:
- kind: io.l5d.prometheus
YAML

target/release/strait run --config "$work/linkerd.yaml" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/admin/ping" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

quickstart: Strait is routing for service "hello" (two instances, from $work/disco/hello).
  try:    http_proxy=http://127.0.0.1:$STRAIT_PORT curl http://hello/
     or:  curl -H 'Host: hello' http://127.0.0.1:$STRAIT_PORT/
  admin:  http://127.0.0.1:$ADMIN_PORT/   (metrics: /admin/metrics.json, /metrics; dtab playground: /delegator?path=/svc/hello)
  edit $work/disco/hello to add or remove instances; changes apply at once.
Ctrl-C stops everything.
MSG
wait
