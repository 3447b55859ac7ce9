#!/usr/bin/env bash
# Runs a bubblewrap checkout's own test suite (its tests/ folder) against a given `bwrap`, and
# prints each script's TAP counts and the total. For local use: CI fetches nothing.
#
#   tests/bwrap-suite.sh BUBBLEWRAP_CHECKOUT [BWRAP]
#
# BWRAP defaults to `bwrap` in PATH; give a symlink named bwrap that points at nscell to try the
# personality (`ln -s "$PWD/target/release/nscell" /tmp/nscell-bwrap/bwrap`). Run it as the user
# the suite is to test (rootless: `setpriv --reuid=65534 --regid=65534 --clear-groups`); it
# builds the suite's two helper programs with cc into a temporary directory. A script's full
# output is kept in $BWRAP_SUITE_LOGS (default: a temporary directory, printed at the end).
set -euo pipefail
src=$(cd "${1:?usage: $0 BUBBLEWRAP_CHECKOUT [BWRAP]}" && pwd)
bwrap=${2:-$(command -v bwrap)}
case $bwrap in /*) ;; *) bwrap=$(cd "$(dirname "$bwrap")" && pwd)/$(basename "$bwrap") ;; esac

build=$(mktemp -d /tmp/bwrap-suite.XXXXXX)
trap 'rm -rf "$build"' EXIT
logs=${BWRAP_SUITE_LOGS:-$(mktemp -d /tmp/bwrap-suite-logs.XXXXXX)}
mkdir -p "$build/tests" "$logs"
# The suite looks for its helpers in $G_TEST_BUILDDIR/tests and its scripts in
# $G_TEST_SRCDIR/tests.
printf "#define _GNU_SOURCE 1\n" >"$build/config.h"
cc -o "$build/tests/try-syscall" "$src/tests/try-syscall.c"
cc -D_GNU_SOURCE -include "$build/config.h" -I"$build" -I"$src" -o "$build/tests/test-utils" "$src/tests/test-utils.c" "$src/utils.c"
chmod -R a+rX "$build"

total_ok=0 total_skip=0 total_fail=0
count() { # name, TAP output file
  local ok skip fail
  ok=$(grep -cE '^ok ' "$2" || true)
  skip=$(grep -cE '^ok .*# *SKIP' "$2" || true)
  fail=$(grep -cE '^not ok ' "$2" || true)
  ok=$((ok - skip))
  # test-seccomp.py is a unittest program that reports one TAP line for all its tests: count
  # its tests from unittest's summary instead (bubblewrap's own counts do).
  local ran
  ran=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' "$2" | tail -n1)
  if [ -n "$ran" ]; then
    fail=$(sed -nE 's/.*TextTestResult run=[0-9]+ errors=([0-9]+) failures=([0-9]+).*/\1 \2/p' "$2" |
      awk '{ print $1 + $2 }' | tail -n1)
    if [ -z "$fail" ]; then fail=$ran; fi
    skip=0 ok=$((ran - fail))
  fi
  if [ "$1" = test-utils ]; then
    printf '%-28s %3d passed %3d skipped %3d failed (not in the total)\n' "$1" "$ok" "$skip" "$fail"
    return
  fi
  total_ok=$((total_ok + ok)) total_skip=$((total_skip + skip)) total_fail=$((total_fail + fail))
  printf '%-28s %3d passed %3d skipped %3d failed%s\n' "$1" "$ok" "$skip" "$fail" "$3"
}
run() { # name, command...
  local name=$1 rc=0 note=""
  shift
  (cd "$build" && env BWRAP="$bwrap" G_TEST_SRCDIR="$src" G_TEST_BUILDDIR="$build" \
    timeout 180 "$@") >"$logs/$name.log" 2>&1 </dev/null || rc=$?
  # A script that stops early (set -e) has run fewer tests than it plans: the rest fail.
  local planned ran
  planned=$(grep -oE '^1\.\.[0-9]+' "$logs/$name.log" | head -n1 | cut -c4- || true)
  ran=$(grep -cE '^(not )?ok ' "$logs/$name.log" || true)
  if [ "$rc" != 0 ]; then note=" (exit $rc)"; fi
  if [ -n "$planned" ] && [ "$ran" -lt "$planned" ]; then
    note="$note, stopped after $ran of $planned"
    total_fail=$((total_fail + planned - ran))
  elif [ -z "$planned" ] && [ "$rc" != 0 ]; then
    note="$note, stopped after $ran"
    total_fail=$((total_fail + 1))
  fi
  count "$name" "$logs/$name.log" "$note"
}

run test-utils "$build/tests/test-utils"
for t in test-run.sh test-specifying-pidns.sh test-specifying-userns.sh; do
  run "$t" bash "$src/tests/$t"
done
if python3 -c 'import seccomp' 2>/dev/null; then
  run test-seccomp.py python3 "$src/tests/test-seccomp.py"
else
  echo "test-seccomp.py: skipped (no seccomp Python module)"
fi
echo "total: $total_ok passed, $total_skip skipped, $total_fail failed; logs in $logs"
