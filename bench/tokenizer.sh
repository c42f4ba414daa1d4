#!/usr/bin/env bash
# Tokenizer speed: encodes every MATH algebra + GSM8K text (train and test:
# problem/solution, question/answer) with clens at 1 and 2 threads and with
# the reference, Hugging Face tokenizers 0.22.2 encodeBatch (npm
# @anush008/tokenizers) at RAYON_NUM_THREADS=1 and 2 (rulings R9). Each figure
# is the fastest of REPEAT runs of the whole corpus in one process (tokenizer
# loaded, file read and JSON parsed outside the timing; word caches warm after
# the first run on both sides). Prints tokens/s for all four and the ratios.
# usage: bench/tokenizer.sh [REPEAT]   (env: BUILD, SHARED, CLENS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SHARED=${SHARED:-$(cd "$ROOT/../shared" && pwd)}
CLENS=${CLENS:-$ROOT/$BUILD/clens}
REPEAT=${1:-3}
OUT="$ROOT/$BUILD/tokbench"
mkdir -p "$OUT"
[ -x "$CLENS" ] || make --no-print-directory BUILD="$BUILD" "$BUILD/clens"
if [ ! -d tools/ref/node_modules/@anush008/tokenizers-linux-x64-gnu ]; then
  (cd tools/ref && npm ci --no-audit --no-fund --loglevel=error)
fi
/usr/bin/python3 tools/tok_corpus.py "$SHARED" "$OUT" --data-only
node tools/tok_qwen25_ref.js "$SHARED/tokenizers/qwen2.5" "$OUT/qwen25_ref.json" >/dev/null
echo "corpus: $(wc -l < "$OUT/data.jsonl") texts, $(wc -c < "$OUT/data.jsonl") bytes of JSONL; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
printf '%-8s %14s %14s %14s %14s %9s %9s\n' tokenizer "clens 1T" "clens 2T" "HF 1T" "HF 2T" "ratio 1T" "ratio 2T"
for tk in qwen2.5 dolma2; do
  if [ $tk = qwen2.5 ]; then ct="$SHARED/tokenizers/qwen2.5"; rj="$OUT/qwen25_ref.json"
  else ct="$SHARED/tokenizers/dolma2"; rj="$SHARED/tokenizers/dolma2/tokenizer.json"; fi
  declare -A r=()
  for th in 1 2; do
    line=$("$CLENS" tokenize "$ct" --jsonl "$OUT/data.jsonl" --threads $th --stats --repeat "$REPEAT" 2>&1 >/dev/null | tail -1)
    r[c$th]=$(echo "$line" | sed -n 's/.*, \([0-9]*\) tokens\/s.*/\1/p')
    line=$(RAYON_NUM_THREADS=$th node tools/tok_ref.js "$rj" --bench "$OUT/data.jsonl" t$th "$REPEAT")
    r[h$th]=$(echo "$line" | sed -n 's/.*tokens_per_s \([0-9]*\).*/\1/p')
  done
  printf '%-8s %14s %14s %14s %14s %8.2fx %8.2fx\n' $tk "${r[c1]}" "${r[c2]}" "${r[h1]}" "${r[h2]}" \
    "$(echo "${r[c1]} ${r[h1]}" | awk '{print $1/$2}')" "$(echo "${r[c2]} ${r[h2]}" | awk '{print $1/$2}')"
done
echo "(tokens/s; ratio = clens / HF at the same thread count; target >= 1)"
