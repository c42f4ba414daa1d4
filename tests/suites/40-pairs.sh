#!/usr/bin/env bash
# 40-pairs: `clens pairs` on the shared datasets (MATH algebra train + test,
# GSM8K train + test). Each file is built twice and compared byte for byte
# (same seed => identical file); a Python check (tests/data/pairs/check_pairs.py)
# re-derives every pair from the dataset: R5 keys, the site at its byte
# offsets, prompts that differ only at the site, the cut rule, the seeded
# choice, no final answer in a line-cut prompt. Also the CLI's usage errors
# and a malformed data line reported with its line number.
# Env (tests/run.sh): CLENS, ROOT, SHARED, PY, CLENS_TEST_TMP.
set -u
t0=$(date +%s%N)
T="$CLENS_TEST_TMP/pairs-suite"
rm -rf "$T" && mkdir -p "$T"
D="$SHARED/data"
CHECK="$ROOT/tests/data/pairs/check_pairs.py"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

run() { # name, data, format, extra args...
  local name=$1 data=$2 fmt=$3; shift 3
  "$CLENS" pairs --data "$data" --format "$fmt" --out "$T/$name.jsonl" "$@" >"$T/$name.txt" 2>&1 \
    || { cat "$T/$name.txt"; bad "$name: clens pairs failed"; return; }
  "$CLENS" pairs --data "$data" --format "$fmt" --out "$T/$name.again.jsonl" "$@" --quiet \
    || bad "$name: second run failed"
  cmp -s "$T/$name.jsonl" "$T/$name.again.jsonl" || bad "$name: two runs differ"
  sed 's/^/    /' "$T/$name.txt"
  "$PY" "$CHECK" "$T/$name.jsonl" "$data" "$fmt" || bad "$name: check_pairs.py"
}

run math-train "$D/math_algebra/train.jsonl" math
run math-test "$D/math_algebra/test.jsonl" math
run gsm8k-train "$D/gsm8k/train.jsonl" gsm8k
run gsm8k-test "$D/gsm8k/test.jsonl" gsm8k
# the seed's settings, and another seed / site rule
run math-test-seed "$D/math_algebra/test.jsonl" math --corrupt plus-one --cut chars-raw:20 --seed 5
run math-test-chars "$D/math_algebra/test.jsonl" math --corrupt plus-one --cut chars:20 --site last
run gsm8k-test-seed "$D/gsm8k/test.jsonl" gsm8k --corrupt plus-one --cut chars-raw:20 --limit 200
# the seed's whole rule set: last "= n" match (verified or not), +1, 20 characters
run math-train-fidelity "$D/math_algebra/train.jsonl" math --site seed --corrupt plus-one --cut chars-raw:20
run gsm8k-test-fidelity "$D/gsm8k/test.jsonl" gsm8k --site seed --corrupt plus-one --cut chars-raw:20

# summaries report the counts
grep -q "problems read           1187" "$T/math-test.txt" || bad "math-test summary"
grep -q "problems read           7473" "$T/gsm8k-train.txt" || bad "gsm8k-train summary"
[ "$(wc -l <"$T/gsm8k-test-seed.jsonl")" -eq 200 ] || bad "--limit 200"

# CLI errors: usage (2), bad data (1) with file and line
"$CLENS" pairs --help | grep -q -- "--cut" || bad "--help"
"$CLENS" pairs --format math --out "$T/x.jsonl" 2>/dev/null; [ $? -eq 2 ] || bad "missing --data is not exit 2"
"$CLENS" pairs --data "$D/gsm8k/test.jsonl" --format latex --out "$T/x.jsonl" 2>/dev/null
[ $? -eq 2 ] || bad "bad --format is not exit 2"
"$CLENS" pairs --data "$D/gsm8k/test.jsonl" --format gsm8k --out "$T/x.jsonl" --cut chars:0 2>/dev/null
[ $? -eq 2 ] || bad "bad --cut is not exit 2"
{ head -n 2 "$D/math_algebra/test.jsonl"; echo '{"id": "broken", "problem": '; } >"$T/broken.jsonl"
"$CLENS" pairs --data "$T/broken.jsonl" --format math --out "$T/x.jsonl" 2>"$T/err.txt"
[ $? -eq 1 ] || bad "malformed data is not exit 1"
grep -q "broken.jsonl:3: invalid JSON" "$T/err.txt" || { cat "$T/err.txt"; bad "malformed line number"; }
"$CLENS" pairs --data "$D/math_algebra/test.jsonl" --format gsm8k --out "$T/x.jsonl" 2>"$T/err.txt"
grep -q 'test.jsonl:1: expected string fields "question" and "answer"' "$T/err.txt" || bad "format mismatch message"
[ -e "$T/x.jsonl" ] && bad "an output was written after an error"

ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "40-pairs: $((ms / 1000)).$(((ms % 1000) / 100)) s"
exit $fail
