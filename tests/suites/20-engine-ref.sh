#!/usr/bin/env bash
# 20-engine-ref: the engine's forward pass against the independent torch reference (rulings R7).
#
# 1. tools/ref_forward.py --self-check (YaRN numbers of architectures.md §1.4, hook identities,
#    masks, naive attention loops).
# 2. tools/gen_model.py writes a matrix of small random models into $CLENS_TEST_TMP/models:
#    every architecture in f32 and bf16, single-file and sharded (one with odd shard names),
#    tied and untied, Qwen2's "sliding_window set but use_sliding_window false" trap, a Qwen2
#    model with real sliding layers, OLMo-3 with windows shorter than the prompt and YaRN on
#    the full layers, llama3 and linear RoPE scaling, a large rms_norm_eps, a streaming-written
#    model with a 70000-row vocabulary.
# 3. One ref_forward.py process computes every reference (float64) from one jobs.json.
# 4. For each model: `clens activations MODEL --ids-file IDS --hooks all --out DIR`, then
#    tools/compare_acts.py with the model's tolerance (--f32: 1e-4; --bf16: top-1 + 2e-2).
# Prints the max diffs per model and the suite time. Env: CLENS, ROOT, PY, CLENS_TEST_TMP.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=${PY:-/usr/bin/python3}
BUILD=${BUILD:-build}
CLENS=${CLENS:-$ROOT/$BUILD/clens}
TMP=${CLENS_TEST_TMP:-$ROOT/$BUILD/testdata}
MODELS=$TMP/models
WORK=$TMP/engine-ref
TOOLS=$ROOT/tools
t_start=$(date +%s%N)
rm -rf "$WORK"
mkdir -p "$MODELS" "$WORK/ref" "$WORK/clens" "$WORK/ids" "$WORK/log"
fail=0

echo "--- reference self-check"
if ! "$PY" "$TOOLS/ref_forward.py" --self-check >"$WORK/log/selfcheck.txt" 2>&1; then
  cat "$WORK/log/selfcheck.txt"
  echo "FAIL: ref_forward.py --self-check"
  exit 1
fi
tail -1 "$WORK/log/selfcheck.txt"

# name | tolerance | gen_model.py flags
YARN4='{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":2048,"attention_factor":1.1386294361119891,"beta_fast":32.0,"beta_slow":1.0}'
MATRIX=(
  "qwen2-f32|f32|--arch qwen2 --dtype f32 --seed 1"
  "qwen2-bf16-tied-3sh|bf16|--arch qwen2 --dtype bf16 --tied --shards 3 --odd-shard-names --seed 2"
  "qwen2-swa-f32|f32|--arch qwen2 --dtype f32 --use-sliding-window true --sliding-window 6 --max-window-layers 1 --seed 3"
  "qwen3-f32-tied-2sh|f32|--arch qwen3 --dtype f32 --tied --shards 2 --rms-eps 1e-2 --seed 4"
  "qwen3-bf16|bf16|--arch qwen3 --dtype bf16 --seed 5"
  "llama-f32-bias-llama3|f32|--arch llama --dtype f32 --attention-bias --seed 6"
  "llama-bf16-tied-linear-2sh|bf16|--arch llama --dtype bf16 --tied --shards 2 --rope-scaling linear:2 --seed 7"
  "olmo2-f32-2sh|f32|--arch olmo2 --dtype f32 --shards 2 --rms-eps 1e-2 --seed 8"
  "olmo2-bf16|bf16|--arch olmo2 --dtype bf16 --seed 9"
  "olmo3-f32-w5-yarn8|f32|--arch olmo3 --dtype f32 --seed 10"
  "olmo3-bf16-8l-w3-yarn4-3sh|bf16|--arch olmo3 --dtype bf16 --layers 8 --sliding-window 3 --shards 3 --seed 11 --rope-scaling $YARN4"
  "qwen2-bf16-stream-v70000|bf16|--arch qwen2 --dtype bf16 --layers 2 --vocab 70000 --streaming --seed 12"
)

echo "--- generating ${#MATRIX[@]} test models into $MODELS"
names=()
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name tol flags <<<"$row"
  names+=("$name")
  # shellcheck disable=SC2086  # flags are word lists by design
  if ! "$PY" "$TOOLS/gen_model.py" $flags --quiet --out "$MODELS/$name" 2>"$WORK/log/gen-$name.txt"; then
    cat "$WORK/log/gen-$name.txt"; echo "FAIL: gen_model.py $flags"; exit 1
  fi
done

# One prompt per model: 12-20 ids within the vocab, including row 0, the last row and a repeat.
"$PY" - "$MODELS" "$WORK" "${names[@]}" <<'EOF' || { echo "FAIL: writing jobs.json"; exit 1; }
import json, os, sys
import numpy as np
models, work, names = sys.argv[1], sys.argv[2], sys.argv[3:]
jobs = []
for k, name in enumerate(names):
    V = json.load(open(os.path.join(models, name, "config.json")))["vocab_size"]
    T = 12 + (k * 5) % 9
    ids = np.random.default_rng(1000 + k).integers(0, V, T).tolist()
    ids[2], ids[5], ids[7] = V - 1, 0, ids[6]
    with open(os.path.join(work, "ids", name + ".json"), "w") as f:
        json.dump(ids, f)
    jobs.append({"model": os.path.join(models, name), "ids": ids, "out": os.path.join(work, "ref", name)})
with open(os.path.join(work, "jobs.json"), "w") as f:
    json.dump(jobs, f, indent=1)
EOF

echo "--- reference forward (one process, float64)"
if ! "$PY" "$TOOLS/ref_forward.py" --jobs "$WORK/jobs.json"; then
  echo "FAIL: ref_forward.py --jobs"; exit 1
fi

echo "--- clens activations vs reference"
if [ ! -x "$CLENS" ]; then
  echo "FAIL: clens binary not found at $CLENS (build it first)"
  exit 1
fi
declare -A res
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name tol flags <<<"$row"
  out=$WORK/clens/$name
  if ! "$CLENS" activations "$MODELS/$name" --ids-file "$WORK/ids/$name.json" --hooks all --out "$out" \
       >"$WORK/log/clens-$name.txt" 2>&1; then
    echo "FAIL $name: clens activations exited non-zero:"
    tail -5 "$WORK/log/clens-$name.txt" | sed 's/^/    /'
    res[$name]="FAIL (clens error)"
    fail=$((fail + 1))
    continue
  fi
  if "$PY" "$TOOLS/compare_acts.py" "$WORK/ref/$name" "$out" "--$tol" --label "$name" \
       >"$WORK/log/cmp-$name.txt" 2>&1; then
    res[$name]=$(grep '^SUMMARY' "$WORK/log/cmp-$name.txt" | cut -d' ' -f4-)
  else
    cat "$WORK/log/cmp-$name.txt"
    res[$name]="FAIL $(grep '^SUMMARY' "$WORK/log/cmp-$name.txt" | cut -d' ' -f5-)"
    fail=$((fail + 1))
  fi
done

# The same comparison on every other kernel path this CPU has (issue 6: the
# engine's reference tests run on every path). The default path ran above.
echo "--- other kernel paths (CLENS_KERNEL): portable, avx2, avx512 where present"
for path in portable avx2 avx512; do
  for row in "${MATRIX[@]}"; do
    IFS='|' read -r name tol flags <<<"$row"
    out=$WORK/clens-$path/$name
    if ! CLENS_KERNEL=$path "$CLENS" activations "$MODELS/$name" --ids-file "$WORK/ids/$name.json" --hooks all \
         --out "$out" >"$WORK/log/clens-$path-$name.txt" 2>&1; then
      echo "FAIL $name ($path): clens activations exited non-zero"; fail=$((fail + 1)); continue
    fi
    if ! "$PY" "$TOOLS/compare_acts.py" "$WORK/ref/$name" "$out" "--$tol" --label "$name/$path" \
         >"$WORK/log/cmp-$path-$name.txt" 2>&1; then
      cat "$WORK/log/cmp-$path-$name.txt"; fail=$((fail + 1))
    fi
  done
  echo "  $path: $(grep -h '^SUMMARY' "$WORK"/log/cmp-$path-*.txt | grep -c PASS)/${#MATRIX[@]} models pass" \
       "(a path the CPU lacks falls back to portable: see tests/unit/test_engine for which ran)"
done

echo "--- max diffs per model (logits / any hook / top-1 agreement)"
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name tol flags <<<"$row"
  printf '  %-30s %-4s %s\n' "$name" "$tol" "${res[$name]}"
done
ms=$(( ($(date +%s%N) - t_start) / 1000000 ))
printf 'engine-ref: %d models, %d failed, %d.%01d s\n' "${#MATRIX[@]}" "$fail" $((ms / 1000)) $(((ms % 1000) / 100))
[ "$fail" -eq 0 ]
