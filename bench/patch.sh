#!/usr/bin/env bash
# Patching benchmark (issue 7, rulings R14): a Qwen2-1.5B-shape random model
# (28 layers, hidden 1536, 12/2 heads, FFN 8960, vocab 151936) with the real
# Qwen2.5 tokenizer, one real pair from `clens pairs` with the raw prompt:
# full resid_pre sweep (fast) vs one forward of the corrupted prompt vs rerun.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SHARED=${SHARED:-$ROOT/../shared}
D=${BENCH_DIR:-$BUILD/bench-models}
M=$D/qwen2-1.5b
mkdir -p "$D"
if [ ! -f "$M/config.json" ]; then
  /usr/bin/python3 tools/gen_model.py --preset qwen2-1.5b --streaming --quiet --out "$M"
  cp "$SHARED/tokenizers/qwen2.5/vocab.json" "$SHARED/tokenizers/qwen2.5/merges.txt" \
     "$SHARED/tokenizers/qwen2.5/tokenizer_config.json" "$M/"
fi
"$BUILD/clens" pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 5 --out "$D/pairs.jsonl" >/dev/null
"$BUILD/bench/bench_patch" "$M" "$D/pairs.jsonl" 0 ${BENCH_PATCH_ARGS:-}
