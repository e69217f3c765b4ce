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

if [ ! -x "$bin/vmseal-kms" ]; then
  echo "vmseal-kms is not built: see the build output above." >&2
  exit 1
fi

# --- vmseal-kms on its embedded defaults -------------------------------------
kms_dir="$rundir/kms"
listen=${VMSEAL_KMS_LISTEN:-127.0.0.1:5696}
mkdir -p "$rundir"
if [ ! -f "$kms_dir/kms.conf" ]; then
  "$bin/vmseal-kms" init --data-dir "$kms_dir" --hostname localhost
  echo
fi
cat <<TXT
vmseal-kms serves KMIP over mutual TLS on $listen.
  CA certificate      $kms_dir/pki/ca.crt
  client certificate  $kms_dir/pki/client.crt
  client key          $kms_dir/pki/client.key
  audit log           $kms_dir/audit.log
  configuration       $kms_dir/kms.conf
Another client identity:  $bin/vmseal-kms pki issue-client --data-dir $kms_dir NAME
Try it with PyKMIP:       /usr/bin/python3 -c "from kmip.pie.client import ProxyKmipClient as C; from kmip import enums as E;
  c = C(hostname='127.0.0.1', port=${listen##*:}, cert='$kms_dir/pki/client.crt', key='$kms_dir/pki/client.key', ca='$kms_dir/pki/ca.crt');
  c.open(); u = c.create(E.CryptographicAlgorithm.AES, 256); print('created', u); c.close()"
(vmseald and the vmseal CLI come next; see README.md.)
Stop with Ctrl-C.

TXT
exec "$bin/vmseal-kms" serve --data-dir "$kms_dir" --listen "$listen"
