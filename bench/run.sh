#!/usr/bin/env bash
# Runs every benchmark against its baseline in one go and prints the ratios.
# Results are recorded by hand in docs/performance.md with the date, the
# machine (nproc, CPU model) and this command: `make bench`.
#
#   bench/run.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=${1:-build/release}
seconds=${2:-3}
cd "$(dirname "$0")/.."

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "openssl: $(openssl version)"
echo

# --- core crypto vs openssl speed ------------------------------------------
ours=$("$build/bench/bench_crypto" "$seconds")
xts_ours=$(awk '/^xts_512_sectors/ {print $2}' <<<"$ours")
gcm_ours=$(awk '/^gcm_seal_32/ {print $2}' <<<"$ours")

# openssl speed prints, per block size, thousands of bytes per second.
speed() { # cipher, bytes -> kB/s
  openssl speed -evp "$1" -bytes "$2" -seconds "$seconds" 2>/dev/null |
    awk -v c="$1" '$1 == c || $1 == toupper(c) {print $NF}' | tr -d k | tail -n 1
}
xts_ossl_kbs=$(speed aes-256-xts 512)
gcm_ossl_kbs=$(speed aes-256-gcm 32)
xts_ossl=$(awk -v k="$xts_ossl_kbs" 'BEGIN {printf "%.0f", k * 1000 / 1e6}')
gcm_ossl=$(awk -v k="$gcm_ossl_kbs" 'BEGIN {printf "%.0f", k * 1000 / 32}')

printf '%-40s %12s %12s %8s\n' "measurement (one thread)" "vmseal" "openssl" "ratio"
printf '%-40s %9s MB/s %7s MB/s %7.2fx\n' "XTS-AES-256, 512-byte sectors" "$xts_ours" "$xts_ossl" \
  "$(awk -v a="$xts_ours" -v b="$xts_ossl" 'BEGIN {print a / b}')"
printf '%-40s %7s ops/s %6s ops/s %7.2fx\n' "AES-256-GCM seal, 32-byte key record" "$gcm_ours" "$gcm_ossl" \
  "$(awk -v a="$gcm_ours" -v b="$gcm_ossl" 'BEGIN {print a / b}')"

# --- KMIP server: vmseal-kms vs PyKMIP ----------------------------------------
# Starts both servers in turn on loopback; prints its own table (bench/kms/run.sh).
# At least 10 s per measurement: PyKMIP's rates swing by 2x over 2-3 s runs.
echo
bench/kms/run.sh "$build" $((seconds > 10 ? seconds : 10))
