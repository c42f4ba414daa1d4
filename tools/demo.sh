#!/usr/bin/env bash
# make demo: the study pipeline end to end on a generated random-weight model
# (Qwen2 architecture, 8 layers, with the real Qwen2.5 tokenizer files):
# pairs from GSM8K test -> fast final-token patching at every layer -> table.
# Random weights have no error-detection circuit: the numbers show the
# machinery (the after-last-block row is exactly 100% by construction).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SHARED=${SHARED:-$ROOT/../shared}
D=${DEMO_DIR:-build/demo}
CLENS=build/clens
mkdir -p "$D"
t0=$(date +%s)
if [ ! -f "$D/model/config.json" ]; then
  echo "demo: generating a random-weight Qwen2 model (8 layers, hidden 256, vocab 151936) in $D/model"
  /usr/bin/python3 tools/gen_model.py --arch qwen2 --dtype bf16 --layers 8 --hidden 256 --heads 8 --kv-heads 2 \
    --intermediate 704 --vocab 151936 --seed 1 --quiet --out "$D/model"
  cp "$SHARED/tokenizers/qwen2.5/vocab.json" "$SHARED/tokenizers/qwen2.5/merges.txt" \
     "$SHARED/tokenizers/qwen2.5/tokenizer_config.json" "$D/model/"
fi
$CLENS info "$D/model"
echo
echo "demo: building pairs from GSM8K test"
$CLENS pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 200 --out "$D/pairs.jsonl"
echo
echo "demo: patching 20 pairs at every resid_pre layer (fast method, raw prompt)"
rm -rf "$D/run"
$CLENS patch "$D/model" --pairs "$D/pairs.jsonl" --out "$D/run" --n 20 --min-diff 0 --prompt raw
echo
echo "demo: results in $D/run (results.json, results.md, records.jsonl); $(( $(date +%s) - t0 )) s"
