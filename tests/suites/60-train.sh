#!/usr/bin/env bash
# 60-train: `clens train` end to end (docs/train.md).
#  - one step on tiny Qwen2 (untied, tied) and OLMo-3 (sliding window 5 < the sequence, GQA)
#    models against torch autograd + torch.optim.AdamW (tools/ref_train.py, <= 1e-4);
#  - the trained folders load in clens inference and in tools/ref_forward.py with the same
#    logits (<= 1e-4), and `clens generate` and `clens patch` run on them;
#  - a 100-step run from scratch brings the loss from ~5.6 (uniform over 261 tokens) below 1.3;
#  - kill -9 mid-run + rerun gives the same final weights (bytes) as an uninterrupted run;
#    a rerun of a finished run is a no-op; other settings are refused naming the key.
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/train
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
t0=$(date +%s)
TOK=tests/data/train   # byte-level BPE, 261 ids, <|bos|> added by the post-processor, <|eos|>
export OMP_WAIT_POLICY=passive

# Traces: GSM8K format, "a*b+c" with <<..>> annotations.
$PY - "$T/traces.jsonl" <<'PYEOF'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    for i in range(400):
        a, b, c = r.randint(1, 9), r.randint(1, 9), r.randint(1, 9)
        ans = f"{a}*{b}=<<{a}*{b}={a*b}>>{a*b}. {a*b}+{c}=<<{a*b}+{c}={a*b+c}>>{a*b+c}.\n#### {a*b+c}"
        f.write(json.dumps({"question": f"What is {a}*{b}+{c}?", "answer": ans, "extra": i}) + "\n")
PYEOF

# --- 1. one step against torch autograd + AdamW --------------------------------------------
SHAPE="--hidden 32 --heads 4 --kv-heads 2 --ffn 48"
GEN="--dtype f32 --hidden 32 --heads 4 --kv-heads 2 --intermediate 48 --vocab 261 --rope-theta 10000 --rms-eps 1e-6 --max-pos 256 --quiet"
$PY tools/gen_model.py --arch qwen2 $GEN --layers 2 --untied --seed 5 --out "$T/qwen2-init" || exit 1
$PY tools/gen_model.py --arch qwen2 $GEN --layers 2 --tied --seed 7 --out "$T/qwen2t-init" || exit 1
$PY tools/gen_model.py --arch olmo3 $GEN --layers 3 --rope-scaling none --sliding-window 5 \
    --layer-types sliding_attention,sliding_attention,full_attention --seed 6 --out "$T/olmo3-init" || exit 1
for m in qwen2 qwen2t olmo3; do
  case $m in
    qwen2) A="--arch qwen2 --layers 2 --tied 0" ;;
    qwen2t) A="--arch qwen2 --layers 2 --tied 1" ;;
    olmo3) A="--arch olmo3 --layers 3 --window 5" ;;
  esac
  echo "  $m: one step against torch"
  check $CLENS train --data "$T/traces.jsonl" --tokenizer $TOK --out "$T/$m-step" --init "$T/$m-init" $A $SHAPE \
      --steps 1 --batch 3 --seq 128 --warmup 0 --lr 1e-3 --weight-decay 0.1 --clip 5 --checkpoints 1 --threads 2 \
      --dump-first-step "$T/$m-dump" --quiet
  check $PY tools/ref_train.py --init "$T/$m-init" --dump "$T/$m-dump" --after "$T/$m-step" \
      --weight-decay 0.1 --clip 5 --tol 1e-4
done

# --- 2. a run from scratch: loss bound, checkpoints, HF folder ---------------------------
RUN="--data $T/traces.jsonl --tokenizer $TOK --layers 2 --hidden 48 --heads 4 --kv-heads 2 --ffn 96 --batch 16 --seq 128 --warmup 10 --lr 1e-2 --threads 2"
check $CLENS train $RUN --steps 100 --checkpoints 4 --out "$T/run" --quiet
check $PY - "$T/run" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
tj = json.load(open(os.path.join(d, "training.json")))
assert tj["finished"] and tj["step"] == 100, tj
steps = sorted(os.listdir(os.path.join(d, "checkpoints")))
assert steps == ["step-000000", "step-000025", "step-000050", "step-000075", "step-000100"], steps
for s in steps:
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "training.json"):
        assert os.path.exists(os.path.join(d, "checkpoints", s, f)), (s, f)
cfg = json.load(open(os.path.join(d, "config.json")))
assert cfg["architectures"] == ["Qwen2ForCausalLM"] and cfg["torch_dtype"] == "float32", cfg
assert cfg["vocab_size"] == 261 and cfg["eos_token_id"] == 260 and cfg["bos_token_id"] == 259, cfg
curve = tj["checkpoint_curve"]
print("  loss at checkpoints:", ", ".join("%d: %.3f" % (s, l) for s, l, _ in curve))
assert curve[-1][1] < 1.3, "final loss %.3f not below 1.3" % curve[-1][1]
PYEOF

# --- 3. the trained folders in clens inference and the reference ------------------------
IDS=259,83,111,108,118,101,32,51,42,52,61,49,50,46,258,97,105,116,44,260
for m in run qwen2-step qwen2t-step olmo3-step; do
  check $CLENS logits "$T/$m" --ids $IDS --out "$T/$m-logits.npy"
  check $PY tools/ref_forward.py --model "$T/$m" --ids $IDS --out "$T/$m-ref" >/dev/null
  check $PY -c "
import numpy as np, sys
a, b = np.load('$T/$m-logits.npy'), np.load('$T/$m-ref/logits.npy')
e = float(np.abs(a - b).max() / np.abs(b).max())
print('  $m: clens vs ref_forward logits, relative error %.1e' % e)
sys.exit(0 if e <= 1e-4 else 1)"
done
check $CLENS generate "$T/run" --text "Solve this math problem step by step:

What is 3*4+5?

Solution:" --max-new 12 >/dev/null

# `clens patch` on a trained folder (pairs from GSM8K; "W" is one token of the test vocabulary)
check $CLENS pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 10 --out "$T/pairs.jsonl" >/dev/null
check $CLENS patch "$T/run" --pairs "$T/pairs.jsonl" --out "$T/patch" --n 3 --min-diff 0 --prompt raw --tokens W --quiet
check test -s "$T/patch/results.json"

# --- 4. kill -9 + resume == uninterrupted; finished rerun; other settings refused ---------
check $CLENS train $RUN --steps 90 --checkpoints 3 --out "$T/full" --quiet
$CLENS train $RUN --steps 90 --checkpoints 3 --out "$T/killed" --quiet &
pid=$!
for i in $(seq 1 600); do [ -d "$T/killed/checkpoints/step-000030" ] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -f "$T/killed/model.safetensors" ]; then echo "FAIL: the run finished before kill -9"; fail=1; fi
echo "  killed at: $(ls "$T/killed/checkpoints" | tr '\n' ' ')"
check $CLENS train $RUN --steps 90 --checkpoints 3 --out "$T/killed" --quiet
check cmp "$T/full/model.safetensors" "$T/killed/model.safetensors"
check cmp "$T/full/checkpoints/step-000060/model.safetensors" "$T/killed/checkpoints/step-000060/model.safetensors"
out=$($CLENS train $RUN --steps 90 --checkpoints 3 --out "$T/full" 2>&1); rc=$?
check test $rc -eq 0
check grep -q "nothing to do" <<<"$out"
out=$($CLENS train $RUN --steps 90 --checkpoints 3 --lr 2e-2 --out "$T/full" 2>&1); rc=$?
check test $rc -eq 1
check grep -q 'holds a training run with other settings: settings.lr is' <<<"$out"
# usage errors
$CLENS train --data x >/dev/null 2>&1; check test $? -eq 2
$CLENS train $RUN --arch gpt2 --out "$T/bad" >/dev/null 2>&1; check test $? -eq 1

echo "  60-train: $(( $(date +%s) - t0 )) s"
exit $fail
