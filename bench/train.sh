#!/usr/bin/env bash
# bench/train.sh: training tokens/s of clens (bench/bench_train.c) and PyTorch
# (tools/bench_torch_train.py) on the same model, batch, sequence length and thread
# count, fp32, in one run, and their ratio (issue 15 item 6). Shapes: the organism
# shapes of data/organisms.json (Qwen2 4 x 64; OLMo-3 6 x 48, window 16), or
# SHAPES="--arch qwen2 --layers 2 ..." for one custom shape. Never fails on timing.
# usage: bash bench/train.sh [--quick]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
STEPS=10
[ "${1:-}" = "--quick" ] && STEPS=2
make -s "$BUILD/bench/bench_train" >/dev/null || exit 1
if [ -n "${SHAPES:-}" ]; then list=("$SHAPES"); else
  # the organisms of data/organisms.json: vocabulary 306, batches of 32 padded to their
  # longest trace (about 64 tokens)
  list=("--arch qwen2 --layers 4 --hidden 64 --heads 4 --kv-heads 2 --ffn 192 --vocab 306 --batch 32 --seq 64"
        "--arch olmo3 --layers 6 --hidden 48 --heads 4 --kv-heads 2 --ffn 144 --vocab 306 --window 16 --batch 32 --seq 64")
fi
echo "== training throughput, fp32, 2 threads, $STEPS timed steps"
for shape in "${list[@]}"; do
  # each side's readable line is printed, its JSON line kept (no `tee /dev/stderr`: reopening
  # stderr truncates it when it is redirected to a file)
  co=$(OMP_WAIT_POLICY=passive "$BUILD/bench/bench_train" $shape --steps $STEPS --threads 2)
  grep -v '^BENCH_TRAIN_JSON' <<<"$co"
  to=$(OMP_WAIT_POLICY=passive $PY tools/bench_torch_train.py $shape --steps $STEPS --threads 2)
  grep -v '^BENCH_TRAIN_JSON' <<<"$to"
  c=$(sed -n 's/^BENCH_TRAIN_JSON //p' <<<"$co")
  t=$(sed -n 's/^BENCH_TRAIN_JSON //p' <<<"$to")
  [ -n "$c" ] && [ -n "$t" ] && $PY -c "import json,sys; c,t=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print('   clens / torch tokens/s: %.2fx' % (c['tokens_per_s']/t['tokens_per_s']))" "$c" "$t"
done
