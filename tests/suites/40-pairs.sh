#!/usr/bin/env bash
# 40-pairs: `clens pairs` on the shared datasets (MATH algebra train + test,
# GSM8K train + test). Each file is built twice and compared byte for byte
# (same seed => identical file); a Python check (tests/data/pairs/check_pairs.py)
# re-derives every pair from the dataset: R5 keys, the site at its byte
# offsets, prompts that differ only at the site, the cut rule, the seeded
# choice, no final answer in a line-cut prompt, the error as the last
# arithmetic (docs/pairs.md). The pair counts per file and the drops by
# reason; deep nesting (issue 23 F1); input errors (a folder, a BOM, an
# empty file); outputs that would replace an input, a link, a FIFO or a
# device (issue 23 F3/F4). Also the CLI's usage errors and a malformed data
# line reported with its line number.
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
# +-1 in the last nonzero digit: round values stay round (3000 -> 2000 / 4000)
run gsm8k-test-sig "$D/gsm8k/test.jsonl" gsm8k --corrupt plus-minus-sig --limit 400
$PY - "$T/gsm8k-test-sig.jsonl" <<'EOF' || bad "plus-minus-sig: last digits"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
c0 = sum(p["site"]["clean_value"].endswith("0") for p in ps)
x0 = sum(p["site"]["corrupted_value"].endswith("0") for p in ps)
print("    plus-minus-sig: %d of %d clean and %d corrupted values end in 0" % (c0, len(ps), x0))
assert c0 > 100 and x0 >= c0
EOF

# summaries report the counts
grep -q "problems read           1187" "$T/math-test.txt" || bad "math-test summary"
grep -q "problems read           7473" "$T/gsm8k-train.txt" || bad "gsm8k-train summary"
[ "$(wc -l <"$T/gsm8k-test-seed.jsonl")" -eq 200 ] || bad "--limit 200"
# pairs with the default rules (docs/pairs.md "Pair rates": before the
# issue-22 rules 318 / 172 / 7024 / 1248; the drops below explain the change)
want() { # name, text expected in its summary
  grep -qE "$2" "$T/$1.txt" || { sed 's/^/    /' "$T/$1.txt"; bad "$1: expected '$2'"; }
}
want math-train "pairs written +303 "
want math-test "pairs written +163 "
want gsm8k-train "pairs written +6558 "
want gsm8k-test "pairs written +1176 "
want math-test "more_math +26$"
want math-test "identity +8$"
want math-test "duplicates .* 1$"
want gsm8k-test "restated +149$"
want gsm8k-test "more_math +54$"
want gsm8k-test "identity +63$"
want gsm8k-test "source_error +1$"
want gsm8k-train "source_error +3$"
# the seed's rule set is unchanged (fidelity): the same counts as before
want math-train-fidelity "pairs written +1312 "
want gsm8k-test-fidelity "pairs written +1313 "

# issue 23 F1: deeply nested lines are a drop reason, not a stack overflow
$PY -c "import json;n=10000;print(json.dumps({'question':'q','answer':'B 2+3=<<'+'('*n+'1'+')'*n+'=1>>1 y.\nC 2+3=<<2+3=5>>5 y.\n#### 9'}))" >"$T/deep-g.jsonl"
"$CLENS" pairs --data "$T/deep-g.jsonl" --format gsm8k --out "$T/deep-g.out" >"$T/deep-g.txt" 2>&1
rc=$?; [ $rc -eq 0 ] || bad "nested parentheses: exit $rc"
want deep-g "too_deep +1$"
$PY -c "import json;n=10000;print(json.dumps({'id':'b','problem':'p','solution':'\$'+'\\\\frac{'*n+'1'+'}{2}'*n+' = 4\$ \$\\\\boxed{9}\$'}))" >"$T/deep-m.jsonl"
"$CLENS" pairs --data "$T/deep-m.jsonl" --format math --out "$T/deep-m.out" >"$T/deep-m.txt" 2>&1
rc=$?; [ $rc -eq 0 ] || bad "nested \\frac: exit $rc"
want deep-m "too_deep +1$"
grep -q "warning: 0 pairs" "$T/deep-m.txt" || bad "0 pairs: no warning"

# issue 22 item 4: input errors
"$CLENS" pairs --data "$T" --format math --out "$T/x.jsonl" 2>"$T/err.txt"
[ $? -eq 1 ] && grep -q "is a folder, not a file" "$T/err.txt" || { cat "$T/err.txt"; bad "--data folder"; }
printf '\xef\xbb\xbf' >"$T/bom.jsonl"; head -n 3 "$D/gsm8k/test.jsonl" >>"$T/bom.jsonl"
"$CLENS" pairs --data "$T/bom.jsonl" --format gsm8k --out "$T/bom.out" --quiet || bad "a BOM is refused"
[ "$(wc -l <"$T/bom.out")" -eq 3 ] || bad "BOM file: expected 3 pairs"
: >"$T/empty.jsonl"
"$CLENS" pairs --data "$T/empty.jsonl" --format math --out "$T/x.jsonl" 2>"$T/err.txt"
[ $? -eq 1 ] && grep -q "empty.jsonl: no rows" "$T/err.txt" || { cat "$T/err.txt"; bad "empty data file"; }
"$CLENS" pairs --help | grep -q "warning is printed" || bad "--help: exit status of 0 pairs"

# issue 23 item 2: outputs never replace an input, a device, a FIFO or a link
head -n 5 "$D/gsm8k/test.jsonl" >"$T/d.jsonl"; sum0=$(sha256sum <"$T/d.jsonl")
for args in "--out $T/d.jsonl" "--out $T/o.jsonl --candidates $T/d.jsonl" \
            "--out $T/o.jsonl --candidates $T/o.jsonl" "--out $T/./d.jsonl"; do
  "$CLENS" pairs --data "$T/d.jsonl" --format gsm8k $args 2>"$T/err.txt"
  rc=$?; [ $rc -eq 1 ] && grep -qE "same (file|path)" "$T/err.txt" || { cat "$T/err.txt"; bad "$args: exit $rc"; }
done
# the on-policy generations file is appended to: never the dataset (refused before any model is read)
"$CLENS" pairs --data "$T/d.jsonl" --format gsm8k --out "$T/o.jsonl" --on-policy "$T/no-model" \
  --generations "$T/d.jsonl" 2>"$T/err.txt"
[ $? -eq 1 ] && grep -q "same file as the input" "$T/err.txt" || { cat "$T/err.txt"; bad "--generations = --data"; }
[ "$(sha256sum <"$T/d.jsonl")" = "$sum0" ] || bad "the dataset was overwritten"
ln -sf d.jsonl "$T/link.jsonl"; mkfifo "$T/fifo"
for o in "$T/link.jsonl" "$T/fifo"; do
  "$CLENS" pairs --data "$T/d.jsonl" --format gsm8k --out "$o" 2>"$T/err.txt"
  [ $? -eq 1 ] && grep -qE "symbolic link|FIFO" "$T/err.txt" || { cat "$T/err.txt"; bad "--out $o"; }
done
[ -L "$T/link.jsonl" ] && [ -p "$T/fifo" ] || bad "a link or FIFO output was replaced"
if mknod -m 666 "$T/mynull" c 1 3 2>/dev/null; then
  "$CLENS" pairs --data "$T/d.jsonl" --format gsm8k --out "$T/mynull" 2>"$T/err.txt"
  [ $? -eq 1 ] && [ -c "$T/mynull" ] || bad "--out onto a character device"
else
  echo "    (mknod not permitted here: the character-device case runs in test_pairs_rules on /dev/null)"
fi
"$CLENS" pairs --data "$T/d.jsonl" --format gsm8k --out "$T/nodir/o.jsonl" 2>"$T/err.txt"
grep -q "the folder $T/nodir does not exist" "$T/err.txt" || { cat "$T/err.txt"; bad "missing --out folder"; }

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
