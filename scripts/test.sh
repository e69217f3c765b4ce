#!/usr/bin/env bash
# Runs the whole CTest suite of a configured and built preset (default asan)
# and makes CTest's summary line ("100% tests passed, 0 tests failed out of
# N") the last line printed, as CI and people read it there.
#
#   scripts/test.sh [PRESET] [extra ctest arguments...]
set -uo pipefail
preset=${1:-asan}
shift || true
cd "$(dirname "$0")/.."
log="build/$preset/ctest-output.log"
mkdir -p "build/$preset"
# Two jobs: the machines this runs on have two cores.
ctest --preset "$preset" -j2 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
echo
if [ -n "$summary" ]; then
  echo "$summary"
else
  echo "0% tests passed, 1 tests failed out of 1 (ctest printed no summary; see $log)"
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
