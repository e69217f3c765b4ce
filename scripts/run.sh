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
  cat <<TXT
When the servers exist, 'make run' will:
  1. initialise $rundir/kms (root key, SQLite store, kms.conf, development PKI)
     and serve KMIP on 127.0.0.1:5696, printing where the client certificate
     and CA are;
  2. start vmseald on $rundir/vmseald with a native key provider and the local
     KMS registered as a standard key provider;
  3. print how to use 'vmseal'.
Nothing to start yet: see README.md and docs/ for the plan and its state.
TXT
  exit 0
fi
