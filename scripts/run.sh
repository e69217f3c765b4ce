#!/usr/bin/env bash
# `make run`: runs vmseal on its embedded defaults from the release build.
#
# Each program is started once it exists in build/release/bin; until then
# this says what it will do. State lives in ./run/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bin
rundir=${VMSEAL_RUN_DIR:-run}

describe() { # name, what it does
  if [ -x "$bin/$1" ]; then state="built"; else state="not built yet"; fi
  printf '  %-12s %-14s %s\n' "$1" "[$state]" "$2"
}

echo "vmseal: VM encryption for QEMU/KVM, with its own KMIP key server."
echo
echo "Programs:"
describe vmseal-kms "KMIP key server (TLS, port 5696): keys for vCenter, ESXi and vmseald"
describe vmseald    "management server: VMs, disks, vTPMs, key providers, privileges, tasks"
describe vmseal     "command-line client of vmseald (--json on every command)"
echo
echo "Library built: $(ls build/release/src/core/libvmseal_core.a 2>/dev/null || echo none)"
echo "  core: results and errors, bounded buffers, secret memory, OpenSSL 3 crypto"
echo "        (AES-256-GCM, RFC 5649 key wrap, XTS-AES-256 plain64, HKDF, HMAC, PBKDF2),"
echo "        atomic files, structured logs, INI configuration."
echo

for p in vmseal-kms vmseald vmseal; do
  if [ ! -x "$bin/$p" ]; then
    echo "$p is not built: see the build output above." >&2
    exit 1
  fi
done

# --- vmseal-kms on its embedded defaults -------------------------------------
kms_dir="$rundir/kms"
vmd_dir="$rundir/vmseald"
listen=${VMSEAL_KMS_LISTEN:-127.0.0.1:5696}
mkdir -p "$rundir"
if [ ! -f "$kms_dir/kms.conf" ]; then
  "$bin/vmseal-kms" init --data-dir "$kms_dir" --hostname localhost
  echo
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$bin/vmseal-kms" serve --data-dir "$kms_dir" --listen "$listen" 2>>"$rundir/kms.log" &
pids+=($!)
api_listen=${VMSEAL_API_LISTEN:-127.0.0.1:8443}
"$bin/vmseald" --data-dir "$vmd_dir" --listen-https "$api_listen" 2>>"$rundir/vmseald.log" >/dev/null &
pids+=($!)

sock="$vmd_dir/vmseald.sock"
for _ in $(seq 100); do
  [ -S "$sock" ] && break
  sleep 0.1
done
[ -S "$sock" ] || { echo "vmseald did not start; see $rundir/vmseald.log" >&2; exit 1; }
export VMSEAL_SOCKET=$sock
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null && break
  sleep 0.1
done

# Embedded defaults, once: the local KMS as the default (standard) key
# provider, and a native provider (it asks for a backup before first use).
providers=$("$bin/vmseal" kp list --json)
if ! grep -q '"name": *"kms"' <<<"$providers"; then
  "$bin/vmseal" kp add-standard kms --server "$listen" --ca "$kms_dir/pki/ca.crt" \
    --cert "$kms_dir/pki/client.crt" --key "$kms_dir/pki/client.key" >/dev/null
  "$bin/vmseal" kp set-default kms >/dev/null
fi
if ! grep -q '"name": *"native"' <<<"$providers"; then
  "$bin/vmseal" kp add-native native >/dev/null
fi

cat <<TXT
vmseal-kms serves KMIP over mutual TLS on $listen (log: $rundir/kms.log).
  CA certificate      $kms_dir/pki/ca.crt
  client certificate  $kms_dir/pki/client.crt
  client key          $kms_dir/pki/client.key
  audit log           $kms_dir/audit.log
vmseald serves its API on $sock (root is the administrator there) and over
HTTPS on https://$api_listen (certificate: $vmd_dir/tls/api.crt; audit log:
$vmd_dir/audit.log; log: $rundir/vmseald.log).
  key providers: "kms" (this KMS, the default) and "native" (back it up first:
  $bin/vmseal kp backup native --to native.backup)

In another shell (vmseal finds ./$sock by itself from this directory):
  $bin/vmseal kp list
  $bin/vmseal vm create web1 --disk 1G --encrypt
  $bin/vmseal vm info web1
  $bin/vmseal vm clone web1 web2 --recrypt
  $bin/vmseal vm rekey web1 --deep
  $bin/vmseal vm power-on web1
Users, roles and the HTTPS API (docs/privileges.md):
  printf '%s\n' 'a long password' > pw && chmod 600 pw
  $bin/vmseal user create alice --password-file pw
  $bin/vmseal permission set --user alice --role "No cryptography administrator"
  $bin/vmseal --server https://$api_listen --ca $vmd_dir/tls/api.crt login --user alice --password-file pw
  $bin/vmseal --server https://$api_listen vm decrypt web1     # refused: Cryptographer.Decrypt
  $bin/vmseal --server https://$api_listen task list
Stop with Ctrl-C.

TXT
wait -n "${pids[@]}"
