#!/usr/bin/env bash
# Install, idempotently, every Debian package vmseal needs to build, test and
# run. Only Debian's archive is used. Checks with dpkg first; runs
# `apt-get update` once, and only when something is missing.
#
#   scripts/deps.sh            install what is missing
#   scripts/deps.sh --check    list what is missing, exit 1 if anything is
set -euo pipefail

# One package per line, grouped by what needs it. Keep in step with
# HACKING.md ("Dependencies").
packages=(
  # build
  build-essential cmake ninja-build pkg-config
  # fuzzing (libFuzzer ships in clang's runtime)
  clang libclang-rt-14-dev
  # crypto and TLS, event loop, store, JSON, config
  libssl-dev openssl libevent-dev libsqlite3-dev sqlite3 libjansson-dev libinih-dev libargon2-dev
  # unit tests
  libcmocka-dev
  # integration tests: pytest and PyKMIP as a foreign KMIP peer
  python3 python3-pytest python3-pykmip
  # tests that check system-call order (durability of atomic writes)
  strace
  # the vmseal CLI speaks HTTP to vmseald (Unix socket, later HTTPS)
  libcurl4-openssl-dev
  # VMs: QEMU (TCG here, KVM where usable), qemu-img, UEFI firmware, vTPM
  qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools
  # interop checks of our LUKS1 images
  cryptsetup-bin
  # the test guest, built at test time: kernel, busybox initramfs, a unified
  # kernel image (systemd's EFI stub) on a FAT EFI system partition
  linux-image-amd64 busybox-static systemd-boot-efi mtools dosfstools fdisk
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing: %s\n' "${missing[*]}"
    exit 1
  fi
  exit 0
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
  command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
else
  sudo=
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done" >&2
