#!/usr/bin/env bash
# Shallow rekey time (new KEK, the VM's small secrets re-wrapped, no data
# touched) for an encrypted VM with 1 and with 8 disks of 2 GiB and of
# 64 GiB, with the native provider and with vmseal-kms as a standard
# provider (started here, release build). Target (the issue): under 50 ms
# whatever the disk size. The disks are sparse LUKS1 images on tmpfs: a
# shallow rekey never reads them, which is the point being measured.
#
#   bench/disk/shallow.sh [BUILD_DIR] [ITERATIONS]   (defaults: build/release 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
iterations=${2:-20}
case $build in /*) ;; *) build=$root/$build ;; esac
bench=$build/bench/rekeybench
kms=$build/bin/vmseal-kms
for f in "$bench" "$kms"; do
  [[ -x $f ]] || { echo "shallow.sh: $f missing; run 'make release' first" >&2; exit 2; }
done
tmp=$(mktemp -d /dev/shm/vmseal-rekey-bench.XXXXXX)
kms_pid=
cleanup() {
  [[ -n $kms_pid ]] && kill "$kms_pid" 2>/dev/null && wait "$kms_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
"$kms" init --data-dir "$tmp/kms" >/dev/null
"$kms" serve --data-dir "$tmp/kms" --listen "127.0.0.1:$port" 2>"$tmp/kms.log" &
kms_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
pki=$tmp/kms/pki
worst=0
run=0
for disks in 1 8; do
  for size in $((2 << 30)) $((64 << 30)); do
    for provider in native kms; do
      run=$((run + 1))
      args=(--data-dir "$tmp/d$run" --disks "$disks" --size "$size" --iterations "$iterations")
      [[ $provider == kms ]] && args+=(--kms "127.0.0.1:$port" --ca "$pki/ca.crt" \
        --cert "$pki/client.crt" --key "$pki/client.key")
      line=$("$bench" "${args[@]}")
      echo "$line"
      ms=$(sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p' <<<"$line")
      worst=$(awk -v a="$worst" -v b="$ms" 'BEGIN { print (b > a) ? b : a }')
      rm -rf "$tmp/d$run"
    done
  done
done
verdict=$(awk -v w="$worst" 'BEGIN { print (w < 50) ? "PASS" : "MISS" }')
echo "shallow rekey: worst of all runs ${worst} ms, target < 50 ms: $verdict"
