#!/usr/bin/env bash
# vmseald's management API under load (issue 5): requests per second and
# latency percentiles of
#
#   list   GET /v1/vms        with 1,000 VMs (every one visible to the caller)
#   get    GET /v1/vms/NAME   one VM
#
# over HTTPS with keep-alive, 16 concurrent clients (bench/api/apibench:
# libcurl, one connection per client, the CA is DATA_DIR/tls/api.crt), as a
# vmseal user holding the Read-only role on / and a bearer token; then the
# same over the Unix socket with the same token, so that only the transport
# differs; then the list with one client, which shows what one list costs
# without contention.
#
#   bench/api/run.sh [BUILD_DIR] [SECONDS]       (defaults: build/release 10)
#
# It makes a fresh data directory, starts vmseald with --listen-https on a
# free loopback port, creates the VMs directly through the API over the
# socket (as root, 16 in parallel; unencrypted, no disks: the list's cost is
# in the VMs' descriptors and the privilege checks, not in disk sizes),
# creates the user, logs in (POST /v1/session) and runs the clients.
#
# Environment: API_BENCH_VMS (default 1000), API_BENCH_THREADS (16),
# API_BENCH_DIR (where the data directory goes, default /tmp),
# API_BENCH_KEEP=1 keeps it.
#
# Results are recorded by hand in docs/performance.md ("Management API").
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
seconds=${2:-10}
case $build in /*) ;; *) build=$root/$build ;; esac
vms=${API_BENCH_VMS:-1000}
threads=${API_BENCH_THREADS:-16}
base=${API_BENCH_DIR:-/tmp}
daemon=$build/bin/vmseald
bench=$build/bench/apibench

[[ -x $daemon ]] || { echo "run.sh: $daemon missing; build first" >&2; exit 2; }
[[ -x $bench ]] || { echo "run.sh: $bench missing; build first" >&2; exit 2; }
for tool in curl python3; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 2; }
done
[[ $vms =~ ^[0-9]+$ ]] && ((vms >= 1 && vms <= 100000)) || { echo "run.sh: bad API_BENCH_VMS" >&2; exit 2; }

work=$(mktemp -d "$base/vmseal-apibench-XXXXXX")
runtime=$(mktemp -d /dev/shm/vmseal-apibench-rt-XXXXXX)
data=$work/data
sock=$data/vmseald.sock
ca=$data/tls/api.crt
token=$work/token
pid=
cleanup() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$runtime"
  if [[ ${API_BENCH_KEEP:-0} == 1 ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$daemon" --data-dir "$data" --runtime-dir "$runtime" --listen-https "127.0.0.1:$port" \
  >"$work/vmseald.out" 2>"$work/vmseald.log" &
pid=$!

# api METHOD PATH [JSON]: as root over the socket; prints the body.
api() {
  curl -sS --fail-with-body --unix-socket "$sock" -X "$1" "http://localhost$2" \
    ${3:+-H 'Content-Type: application/json' --data-binary "$3"}
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

for _ in $(seq 300); do
  api GET /v1/tasks >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/vmseald.log" >&2; exit 1; }
  sleep 0.1
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "openssl: $(openssl version)  curl: $(curl --version | head -1 | cut -d' ' -f2)"
echo "vmseald: $daemon, data in $base ($(stat -f -c %T "$base")), $vms VMs, $threads clients"

# --- the inventory ----------------------------------------------------------
t0=$(date +%s.%N)
seq -f 'bench%04g' 0 $((vms - 1)) |
  xargs -P 16 -I{} curl -sS -o /dev/null -w '%{http_code}\n' --unix-socket "$sock" \
    -H 'Content-Type: application/json' --data-binary '{"name": "{}", "disks": []}' \
    http://localhost/v1/vms >"$work/codes"
bad=$(grep -vc '^202$' "$work/codes" || true)
((bad == 0)) || { echo "run.sh: $bad VM creations were refused: $(sort "$work/codes" | uniq -c)" >&2; exit 1; }
# Every creation is a task: wait for them all to end, and for success.
for _ in $(seq 600); do
  left=$(api GET /v1/tasks | json 'sum(t["state"] in ("queued", "running") for t in d["tasks"])')
  ((left == 0)) && break
  sleep 0.5
done
failed=$(api GET /v1/tasks | json 'sum(t["state"] != "success" for t in d["tasks"])')
((left == 0 && failed == 0)) || { echo "run.sh: $left tasks still running, $failed failed" >&2; exit 1; }
t1=$(date +%s.%N)
on_disk=$(find "$data/vms" -mindepth 2 -maxdepth 2 -name vm.json | wc -l)
((on_disk == vms)) || { echo "run.sh: $on_disk VMs on disk, not $vms" >&2; exit 1; }
printf 'created %d VMs in %.1f s (16 parallel POST /v1/vms over the socket)\n' "$vms" \
  "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
listed=$(api GET /v1/vms | json 'len(d["vms"])')
if ((listed != vms)); then
  echo "WARNING: GET /v1/vms lists $listed of the $vms VMs on disk: the numbers below are for" \
    "listing $listed"
fi

# --- the caller ---------------------------------------------------------------
password=bench-password-$RANDOM$RANDOM
api POST /v1/users "{\"name\": \"bench\", \"password\": \"$password\"}" >/dev/null
api POST /v1/permissions '{"user": "bench", "role": "Read-only", "object": "/"}' >/dev/null
(umask 077 && api POST /v1/session "{\"user\": \"bench\", \"password\": \"$password\"}" |
  json 'd["token"]' >"$token")
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$token")" >"$work/auth")
seen=$(curl -sS --fail-with-body --cacert "$ca" -H "@$work/auth" "https://127.0.0.1:$port/v1/vms" |
  json 'len(d["vms"])')
((seen == listed)) || { echo "run.sh: user bench sees $seen VMs, root $listed" >&2; exit 1; }
size=$(curl -sS --cacert "$ca" -H "@$work/auth" "https://127.0.0.1:$port/v1/vms" | wc -c)
echo "GET /v1/vms answers $size bytes"
echo

one=bench$(printf '%04d' $((vms / 2)))
run() { # label url [apibench options]
  local label=$1 url=$2
  shift 2
  "$bench" --label "$label" --url "$url" --token-file "$token" --seconds "$seconds" "$@"
}
https=https://127.0.0.1:$port
run https-list "$https/v1/vms" --cacert "$ca" --threads "$threads"
run https-get "$https/v1/vms/$one" --cacert "$ca" --threads "$threads"
run socket-list http://localhost/v1/vms --unix-socket "$sock" --threads "$threads"
run socket-get "http://localhost/v1/vms/$one" --unix-socket "$sock" --threads "$threads"
run https-list-1client "$https/v1/vms" --cacert "$ca" --threads 1
run https-get-1client "$https/v1/vms/$one" --cacert "$ca" --threads 1

echo
echo "vmseald: $(ps -o rss=,time= -p "$pid" | awk '{printf "RSS %.0f MiB, CPU time %s", $1 / 1024, $2}')"
echo "audit.log: $(wc -l <"$data/audit.log") lines"
