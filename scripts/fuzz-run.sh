#!/usr/bin/env bash
# Runs one libFuzzer target for a while on a copy of its seed corpus, so that
# the checked-in corpus is never modified by a test run.
#
#   scripts/fuzz-run.sh TARGET SEED_DIR SECONDS [extra libFuzzer flags...]
#
# New inputs found go to build/fuzz-findings/<target>/ (kept for `make fuzz`
# users to merge into the corpus by hand); crashes to the same place.
set -euo pipefail
target=$1 seeds=$2 seconds=$3
shift 3
name=$(basename "$target")
work=$(mktemp -d "${TMPDIR:-/tmp}/vmseal-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
findings="$(dirname "$target")/../../fuzz-findings/$name"
mkdir -p "$findings"
# -rss_limit_mb: the decoder must never need much memory, whatever the input.
exec_status=0
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$findings/" "$@" "$work" "$seeds" || exec_status=$?
cp -n "$work"/* "$findings"/ 2>/dev/null || true
exit $exec_status
