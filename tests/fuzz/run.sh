#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.c harness with clang + libFuzzer + ASan/UBSan
# against a fuzz build of libclens, then runs each on a copy of its seed corpus
# (tests/fuzz/corpus/<name>/) for FUZZ_SECONDS (default 20) seconds.
# Long sessions: FUZZ_SECONDS=3600 bash tests/fuzz/run.sh [name...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${FUZZ_BUILD:-build/fuzz}
SECS=${FUZZ_SECONDS:-20}
bash tools/install-deps.sh --fuzz
make --no-print-directory CC=clang BUILD="$BUILD" SAN=1 OPT=-O1 CFLAGS="-fsanitize=fuzzer-no-link -Wno-pass-failed" \
  "$BUILD/libclens.a" >"$BUILD.log" 2>&1 || { tail -20 "$BUILD.log"; exit 1; }
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do n=$(basename "$f" .c); names+=("${n#fuzz_}"); done
fi
status=0
for n in "${names[@]}"; do
  bin="$BUILD/fuzz_$n"
  clang -std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -Isrc -fsanitize=fuzzer,address,undefined -fopenmp \
    "tests/fuzz/fuzz_$n.c" "$BUILD/libclens.a" -o "$bin" \
    -ldnnl -lopenblas -lpcre2-8 -lutf8proc -ljansson -lm -lpthread
  work="$BUILD/corpus-$n"
  rm -rf "$work"; mkdir -p "$work"
  [ -d "tests/fuzz/corpus/$n" ] && cp -r "tests/fuzz/corpus/$n/." "$work/"
  echo "fuzz_$n: seed corpus $(ls "$work" | wc -l) files, ${SECS}s"
  dict=()
  [ -f "tests/fuzz/fuzz_$n.dict" ] && dict=(-dict="$ROOT/tests/fuzz/fuzz_$n.dict")
  # per-harness libFuzzer flags, one a line (e.g. -max_len for deep inputs)
  [ -f "tests/fuzz/fuzz_$n.options" ] && while read -r o; do [ -n "$o" ] && dict+=("$o"); done <"tests/fuzz/fuzz_$n.options"
  if ! (cd "$BUILD" && SHARED=${SHARED:-$ROOT/../shared} ASAN_OPTIONS=detect_leaks=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "./fuzz_$n" -max_total_time="$SECS" -rss_limit_mb=4096 \
          -print_final_stats=1 "${dict[@]}" "corpus-$n" >"fuzz_$n.log" 2>&1); then
    echo "fuzz_$n: FAILED"; tail -40 "$BUILD/fuzz_$n.log"; status=1
  else
    grep -E 'stat::number_of_executed_units|stat::new_units_added' "$BUILD/fuzz_$n.log" | sed "s/^/fuzz_$n: /"
  fi
done
exit $status
