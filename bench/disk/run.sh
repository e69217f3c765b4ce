#!/usr/bin/env bash
# vmseal's bulk disk engine (src/disk/engine.c, driven by bench/disk/diskbench)
# against `qemu-img convert -m 16 -W` doing the same work on the same files,
# in one run, on a fully written disk on tmpfs:
#
#   copy       plaintext -> plaintext, no cipher: the I/O ceiling of this
#              machine for everything below (read 2 GiB, write 2 GiB of new
#              tmpfs pages)
#   encrypt    plaintext -> new LUKS1 disk
#   decrypt    LUKS1 -> new plaintext disk
#   rekey      deep rekey: LUKS1 -> new LUKS1 disk under a new DEK (decrypt +
#              encrypt: two XTS passes)
#   clone      full clone with re-encryption: the same engine call as rekey
#              (LUKS1 -> new LUKS1 file, new DEK, new disk secret). What
#              differs is around the engine: a deep rekey then swaps the new
#              disk in for the old one (journal), a clone keeps both. Measured
#              on its own so that the table shows the run-to-run spread.
#
# Both tools write a new, sparse destination file: vmseal's is created by
# diskbench (luks1_create_file or an empty file, timed), qemu-img's by
# `diskbench mkluks` / truncate before the clock starts, then written with
# `convert -n` (`qemu-img create -f luks` calibrates PBKDF2 and fails here
# half the time, see luks1.h). Each measurement is the wall time of the whole
# process, best of REPS runs, the two tools alternating. Every output of
# every run is checked against the plaintext through qemu-img's own luks
# driver (`qemu-img compare`) or cmp: a fast wrong answer is not counted (the
# run is INVALID and the script exits 1). CPU time (user + system) of each
# process is printed too: on a shared machine the wall time of both tools
# moves with the neighbours' load, their CPU cost much less.
#
# Targets (the issue): deep rekey >= 1.5 GB/s and >= 5x qemu-img. A MISS is
# a result, not an error.
#
#   bench/disk/run.sh [BUILD_DIR] [REPS]        (defaults: build/release 3)
#
# Environment: DISK_BENCH_DIR (default /dev/shm: must be tmpfs with room for
# four disks), DISK_BENCH_SIZE (guest bytes, default 2 GiB),
# DISK_BENCH_THREADS (engine threads, default: online CPUs),
# DISK_BENCH_NICE (e.g. -10, root only: runs both tools' timed processes at
# that nice value, so that other work on a shared machine takes less of the
# two cores from them; both tools alike; default: unchanged),
# DISK_BENCH_KEEP=1 keeps the directory.
#
# Secrets: the two disk secrets are 0600 files (64 hex digits, luks1.h) in
# the temporary directory on tmpfs, read by diskbench and by qemu-img
# (--object secret,file=...), removed at exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
reps=${2:-3}
case $build in /*) ;; *) build=$root/$build ;; esac
bench=$build/bench/diskbench
size=${DISK_BENCH_SIZE:-$((2 << 30))}
base=${DISK_BENCH_DIR:-/dev/shm}
threads=${DISK_BENCH_THREADS:-0}
nice_value=${DISK_BENCH_NICE:-}

[[ -x $bench ]] || { echo "run.sh: $bench missing; run 'make release' first" >&2; exit 2; }
command -v qemu-img >/dev/null || { echo "run.sh: qemu-img is not installed" >&2; exit 2; }
timer=/usr/bin/time # GNU time (Debian's "time" package): CPU seconds of each run
[[ -x $timer ]] || { echo "run.sh: $timer is missing (apt-get install time)" >&2; exit 2; }
if ! [[ $reps =~ ^[0-9]+$ ]] || ((reps < 1 || reps > 20)); then
  echo "run.sh: REPS must be 1..20" >&2
  exit 2
fi
if ! [[ $size =~ ^[0-9]+$ ]] || ((size < 1 << 20 || size % 512 != 0)); then
  echo "run.sh: DISK_BENCH_SIZE must be >= 1 MiB and a multiple of 512" >&2
  exit 2
fi
priority=()
if [[ -n $nice_value ]]; then
  [[ $nice_value =~ ^-?[0-9]+$ ]] || { echo "run.sh: DISK_BENCH_NICE must be a number" >&2; exit 2; }
  priority=(nice -n "$nice_value")
fi
fstype=$(stat -f -c %T "$base")
[[ $fstype == tmpfs ]] || echo "run.sh: warning: $base is $fstype, not tmpfs" >&2

# Four disks live at once: the plaintext, the LUKS source, one output, and
# the LUKS header slack. Ask for that plus 1 GiB of headroom.
need_kib=$((4 * size / 1024 + (1 << 20)))
avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
fs_kib=$(df -k --output=avail "$base" | tail -n 1 | tr -d ' ')
if ((avail_kib < need_kib || fs_kib < need_kib)); then
  echo "run.sh: need $((need_kib >> 10)) MiB of memory and of $base;" \
    "have $((avail_kib >> 10)) MiB available, $((fs_kib >> 10)) MiB free" >&2
  exit 2
fi

tmp=$(mktemp -d "$base/vmseal-disk-bench.XXXXXX")
cleanup() {
  if [[ ${DISK_BENCH_KEEP:-0} == 1 ]]; then
    echo "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

umask 077
# A disk secret as its LUKS passphrase: 64 lower-case hex digits, no newline.
new_secret() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$1"; }
new_secret "$tmp/s1"
new_secret "$tmp/s2"
qsecrets=(--object "secret,id=s1,file=$tmp/s1" --object "secret,id=s2,file=$tmp/s2")

now() { date +%s.%N; }
gbps() { awk -v b="$size" -v t="$1" 'BEGIN {printf "%.2f", b / t / 1e9}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "$(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
echo "qemu-img: $(qemu-img --version | head -n 1)"
echo "disk: $((size >> 20)) MiB fully written, in $base ($fstype); best of $reps runs each"
echo "timed processes: ${priority[*]:-at the default priority}"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

"$bench" fill "$tmp/plain.img" "$size"
# The LUKS source of decrypt, rekey and clone: written by the engine and
# checked by QEMU before anything is timed.
"$bench" copy encrypt "$tmp/plain.img" - "$tmp/src.luks" "$tmp/s1" "$threads" >/dev/null

# Checks that $1 (kind: raw or luks; luks under secret id $2) holds exactly
# the plaintext disk's bytes.
verify() {
  local kind=$1 path=$2 sid=${3:-}
  if [[ $kind == raw ]]; then
    cmp -s "$tmp/plain.img" "$path"
  else
    qemu-img compare -q "${qsecrets[@]}" --image-opts \
      "driver=raw,file.filename=$tmp/plain.img" \
      "driver=luks,key-secret=$sid,file.filename=$path"
  fi
}
verify luks "$tmp/src.luks" s1 || { echo "INVALID: the LUKS source does not match" >&2; exit 1; }

# One timed run of one tool for one operation; prints seconds. The output
# is verified and removed.
run_once() {
  local tool=$1 op=$2 out t0 t1 src src_secret kind sid
  case $op in
    copy) src=$tmp/plain.img src_secret=- kind=raw sid= ;;
    encrypt) src=$tmp/plain.img src_secret=- kind=luks sid=s2 ;;
    decrypt) src=$tmp/src.luks src_secret=$tmp/s1 kind=raw sid= ;;
    rekey | clone) src=$tmp/src.luks src_secret=$tmp/s1 kind=luks sid=s2 ;;
  esac
  out=$tmp/out.$kind
  rm -f "$out"
  if [[ $tool == vmseal ]]; then
    local bop=$op dst_secret=$tmp/s2
    case $op in copy) bop=plain dst_secret=- ;; decrypt) dst_secret=- ;; rekey | clone) bop=recrypt ;; esac
    t0=$(now)
    "${priority[@]}" "$timer" -f "%U %S" -o "$tmp/cpu" "$bench" copy "$bop" "$src" "$src_secret" "$out" \
      "$dst_secret" "$threads" >/dev/null
    t1=$(now)
  else
    local in_opts out_opts
    if [[ $src == *.luks ]]; then
      in_opts="driver=luks,key-secret=s1,file.filename=$src"
    else
      in_opts="driver=raw,file.filename=$src"
    fi
    if [[ $kind == luks ]]; then
      "$bench" mkluks "$out" "$size" "$tmp/s2"
      out_opts="driver=luks,key-secret=s2,file.filename=$out"
    else
      truncate -s "$size" "$out"
      out_opts="driver=raw,file.filename=$out"
    fi
    t0=$(now)
    "${priority[@]}" "$timer" -f "%U %S" -o "$tmp/cpu" qemu-img convert -m 16 -W -n "${qsecrets[@]}" \
      --image-opts "$in_opts" --target-image-opts "$out_opts"
    t1=$(now)
  fi
  if ! verify "$kind" "$out" "$sid"; then
    echo "INVALID: $tool $op wrote a disk that does not match the plaintext" >&2
    touch "$tmp/invalid" # run_once runs in a subshell
  fi
  rm -f "$out"
  # "wall cpu": seconds of wall time, and user + system CPU seconds
  awk -v a="$t0" -v b="$t1" '{printf "%.3f %.2f\n", b - a, $1 + $2}' "$tmp/cpu"
}

best() { tr ' ' '\n' | sort -g | head -n 1; }
median() { tr ' ' '\n' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

printf '%-34s %17s %17s %8s  %s\n' "operation ($((size >> 20)) MiB guest)" "vmseal GB/s" \
  "qemu-img GB/s" "ratio" "target"
cpu_lines=()
for op in copy encrypt decrypt rekey clone; do
  ours=() theirs=() ours_cpu=() theirs_cpu=()
  for ((r = 0; r < reps; r++)); do
    read -r w c < <(run_once vmseal "$op")
    ours+=("$w") ours_cpu+=("$c")
    read -r w c < <(run_once qemu "$op")
    theirs+=("$w") theirs_cpu+=("$c")
  done
  ob=$(echo "${ours[*]}" | best) om=$(echo "${ours[*]}" | median)
  tb=$(echo "${theirs[*]}" | best) tm=$(echo "${theirs[*]}" | median)
  ratio=$(awk -v a="$ob" -v b="$tb" 'BEGIN {printf "%.1f", b / a}')
  target=-
  if [[ $op == rekey ]]; then
    if awk -v g="$(gbps "$ob")" -v r="$ratio" 'BEGIN {exit !(g >= 1.5 && r >= 5)}'; then
      target="PASS (>= 1.5 GB/s and >= 5x)"
    else
      target="MISS (>= 1.5 GB/s and >= 5x)"
    fi
  fi
  case $op in
    copy) label="copy, no cipher (I/O ceiling)" ;;
    encrypt) label="encrypt (plain -> LUKS)" ;;
    decrypt) label="decrypt (LUKS -> plain)" ;;
    rekey) label="deep rekey (LUKS -> LUKS, new DEK)" ;;
    clone) label="clone with recrypt (= rekey)" ;;
  esac
  printf '%-34s %6s (med %5s) %6s (med %5s) %7sx  %s\n' "$label" "$(gbps "$ob")" "$(gbps "$om")" \
    "$(gbps "$tb")" "$(gbps "$tm")" "$ratio" "$target"
  cpu_lines+=("$(printf '%-34s %17s %17s' "$label" "$(echo "${ours_cpu[*]}" | median)" \
    "$(echo "${theirs_cpu[*]}" | median)")")
done
echo
echo "CPU time (user + system seconds of the process, median), whatever the"
echo "machine's other load: what each tool costs"
printf '%-34s %17s %17s\n' "operation" "vmseal CPU s" "qemu-img CPU s"
printf '%s\n' "${cpu_lines[@]}"
echo
echo "shallow rekey (new KEK; 1 and 8 disks; target < 50 ms): not measured by this"
echo "  script: no data is touched, so it is a VM-layer measurement, made by"
echo "  bench/disk/shallow.sh through the host engine (docs/performance.md)."
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -e $tmp/invalid ]]; then
  echo "INVALID: at least one output did not match; the numbers above do not count" >&2
  exit 1
fi
