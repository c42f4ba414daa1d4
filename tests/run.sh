#!/usr/bin/env bash
# Test driver for `make test`. Runs every C unit test binary in $BUILD/tests,
# then every integration / reference suite in tests/suites/*.sh (which get
# CLENS, BUILD, ROOT, SHARED, PY in the environment), then rebuilds the C tests
# with AddressSanitizer + UndefinedBehaviorSanitizer and runs them again.
# Prints each suite's time and a closing "N passed, N failed" line.
#   --c-only   unit tests only (the sanitizer pass)
#   --long     also suites named *.long.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
MODE=all
case "${1:-}" in --c-only) MODE=c ;; --long) MODE=long ;; esac
export ROOT BUILD
export CLENS="$ROOT/$BUILD/clens"
export SHARED=${SHARED:-$(cd "$ROOT/../shared" 2>/dev/null && pwd || echo "$ROOT/../shared")}
export PY=/usr/bin/python3
# Tests run many small models: OpenMP threads that spin at barriers burn the
# other core whenever the machine is shared (measured 11x slower under load).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export CLENS_TEST_TMP=${CLENS_TEST_TMP:-$ROOT/$BUILD/testdata}
mkdir -p "$CLENS_TEST_TMP"

pass=0; fail=0; failed=()
run_suite() { # name, command...
  local name=$1; shift
  local t0=$(date +%s%N)
  echo "=== $name"
  if "$@"; then pass=$((pass+1)); st=ok; else fail=$((fail+1)); failed+=("$name"); st=FAILED; fi
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '=== %s: %s (%d.%01d s)\n' "$name" "$st" $((ms/1000)) $(((ms%1000)/100))
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_suite "unit/$(basename "$t")" "$t"
done

if [ "$MODE" != c ]; then
  for s in tests/suites/*.sh; do
    [ -f "$s" ] || continue
    case "$s" in *.long.sh) [ "$MODE" = long ] || continue ;; */lib.sh) continue ;; esac
    run_suite "suite/$(basename "$s" .sh)" bash "$s"
  done
  if [ "${SAN:-0}" != 1 ]; then
    echo "=== sanitizer pass (ASan + UBSan): building $BUILD/asan"
    t0=$(date +%s)
    if make --no-print-directory BUILD="$BUILD/asan" SAN=1 OPT=-O1 all >"$BUILD/asan-build.log" 2>&1; then
      for t in "$BUILD"/asan/tests/test_*; do
        [ -x "$t" ] || continue
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
          LSAN_OPTIONS=suppressions="$ROOT/tests/lsan.supp":print_suppressions=0 \
          CLENS_TEST_TMP="$CLENS_TEST_TMP/asan" run_suite "asan/$(basename "$t")" "$t"
      done
    else
      tail -30 "$BUILD/asan-build.log"; fail=$((fail+1)); failed+=("asan-build")
    fi
    echo "=== sanitizer pass took $(( $(date +%s) - t0 )) s"
  fi
fi

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
