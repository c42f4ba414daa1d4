#!/usr/bin/env bash
# 62-organism-train: a tiny model organism really trained by `clens train` (issue 15 item 7;
# docs/organisms.md "Tests"):
#   behaviour  a 2-layer Qwen2 (width 64) trained for 400 steps on traces with corrections
#              beats chance on the correction task on 500 held-out traces: chance is a model
#              blind to the arithmetic, P(correction) the same after a wrong and after a right
#              step (pairwise accuracy 0.5, mean difference 0). Bars: pairwise accuracy
#              (P after the error > P after the correct step, per trace) >= 0.58, mean
#              difference >= 0.015 and >= 3 standard errors, P after an error above the
#              uniform model's 16/306. The per-trace P are recomputed from the records' ids
#              with the torch reference forward (tools/ref_forward.py) and numpy.
#   reference  the organism folder loads in tools/ref_forward.py and gives clens's logits
#              (relative error <= 1e-4)
#   demo       tools/demo.sh on the trained organism (CLENS_DEMO_MODELS): pairs from the
#              held-out traces, clens patch --prompt raw, behaviour, the one-screen summary,
#              clens compare's report.html
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/organism-train
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
t0=$(date +%s)
export OMP_WAIT_POLICY=passive

LIM="--max-operand 9 --max-mul 9 --max-value 30"
$CLENS organism tokenizer --out "$T/tok" 2>/dev/null || exit 1
$CLENS organism traces --split train --seed 11 --n 60000 --error-frac 0.5 --annotate 0 $LIM --out "$T/train.jsonl" 2>/dev/null || exit 1
$CLENS organism traces --split heldout --seed 13 --n 500 $LIM --out "$T/heldout.jsonl" 2>/dev/null || exit 1

# --- train the tiny organism (about 20 s of CPU on 2 threads)
check $CLENS train --data "$T/train.jsonl" --tokenizer "$T/tok" --out "$T/m" --arch qwen2 --layers 2 --hidden 64 \
  --heads 4 --kv-heads 2 --ffn 192 --ctx 128 --tied 1 --steps 400 --batch 32 --seq 128 --lr 0.01 --warmup 30 \
  --checkpoints 4 --threads 2 --quiet
check $CLENS organism behaviour "$T/m" --data "$T/heldout.jsonl" --n 500 --out "$T/beh.json" --records "$T/rec.jsonl" >/dev/null

# --- behaviour beats chance; the per-trace P against the torch reference on 12 traces
$PY - "$T" > "$T/jobs.json" <<'PYEOF'
import json, sys
T = sys.argv[1]
recs = [json.loads(l) for l in open(T + "/rec.jsonl")][:12]
jobs = []
for r in recs:
    for k in ("error", "correct"):
        jobs.append({"model": T + "/m", "ids": r["ids_" + k], "out": "%s/ref/%d-%s" % (T, r["index"], k)})
print(json.dumps(jobs))
PYEOF
check $PY tools/ref_forward.py --jobs "$T/jobs.json" --quiet
check $PY - "$T" <<'PYEOF'
import json, math, sys
import numpy as np
T = sys.argv[1]
b = json.load(open(T + "/beh.json"))["behaviour"]
recs = [json.loads(l) for l in open(T + "/rec.jsonl")]
n = len(recs)
assert n == b["n_traces"] == 500, (n, b)
pe = np.array([r["p_error"] for r in recs]); pc = np.array([r["p_correct"] for r in recs])
assert abs(pe.mean() - b["p_correction_after_error"]) < 1e-9 and abs(pc.mean() - b["p_correction_after_correct"]) < 1e-9
# the correction ids of the organism tokenizer (docs/organisms.md): 284-299
ids = list(range(284, 300))
worst = 0.0
for r in recs[:12]:
    for k in ("error", "correct"):
        lg = np.load("%s/ref/%d-%s/logits.npy" % (T, r["index"], k)).astype(np.float64)[-1]
        p = np.exp(lg - lg.max()); p /= p.sum()
        worst = max(worst, abs(p[ids].sum() - r["p_" + k]) / max(p[ids].sum(), 1e-6))
assert worst < 1e-4, worst
d = pe - pc
acc = float((pe > pc).mean()); m = float(d.mean()); se = float(d.std(ddof=1) / math.sqrt(n))
print("  tiny organism, 400 steps: P(corr|error) %.3f, P(corr|correct) %.3f, pairwise accuracy %.3f (chance 0.5),"
      " mean difference %.4f = %.1f SE; reference P rel. error %.1e" % (pe.mean(), pc.mean(), acc, m, m / se, worst))
assert acc >= 0.58, "pairwise accuracy %.3f below 0.58" % acc
assert m >= 0.015 and m >= 3 * se, "mean difference %.4f (SE %.4f) below the bar" % (m, se)
assert pe.mean() > 16 / 306, pe.mean()
PYEOF

# --- the organism folder in the independent reference: logits at 1e-4
IDS=$($PY -c "import json,sys; print(','.join(map(str, json.loads(open(sys.argv[1]).readline())['ids_error'])))" "$T/rec.jsonl")
check $CLENS logits "$T/m" --ids "$IDS" --out "$T/logits.npy"
check $PY tools/ref_forward.py --model "$T/m" --ids "$IDS" --out "$T/ref-logits" --quiet
check $PY -c "
import numpy as np, sys
a, b = np.load('$T/logits.npy'), np.load('$T/ref-logits/logits.npy')
e = float(np.abs(a - b).max() / np.abs(b).max())
print('  organism folder: clens vs ref_forward logits over %d positions, relative error %.1e' % (a.shape[0], e))
sys.exit(0 if e <= 1e-4 else 1)"

# --- the demo pipeline on the trained organism
cat > "$T/recipe.json" <<EOF
{"traces": {"train": {"split": "train", "seed": 11, "n": 200, "error-frac": 0.5, "annotate": 0, "max-operand": 9, "max-mul": 9, "max-value": 30},
            "heldout": {"split": "heldout", "seed": 13, "n": 500, "max-operand": 9, "max-mul": 9, "max-value": 30}},
 "organisms": [{"name": "tiny", "label": "(t) tiny Qwen2, 2 layers, 400 steps", "data": "train", "train": {"arch": "qwen2", "layers": 2}}],
 "patch": {"prompt": "raw", "n": 12, "min-diff": 0, "quiet": true}}
EOF
mkdir -p "$T/models"; ln -s "$T/m" "$T/models/tiny"
DEMO_DIR="$T/demo" CLENS_DEMO_RECIPE="$T/recipe.json" CLENS_DEMO_MODELS="$T/models" CLENS_DEMO_BEHAVIOUR_N=500 CLENS="$CLENS" \
  bash tools/demo.sh > "$T/demo.out" 2> "$T/demo.err" || { echo "FAIL: demo"; cat "$T/demo.err"; fail=1; }
check $PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
out = open(T + "/demo.out").read()
assert out.count("critical layer") == 1 and "tiny  (t) tiny Qwen2" in out, out
s = json.load(open(T + "/demo/summary.json"))
assert [x["name"] for x in s] == ["tiny"]
b = json.load(open(T + "/beh.json"))["behaviour"]
assert s[0]["behaviour"] == b, (s[0]["behaviour"], b)
r = json.load(open(s[0]["run"] + "/results.json"))
assert r["layers"] == [0, 1, 2] and r["n_pairs"] > 0, (r["layers"], r["n_pairs"])
assert s[0]["profile"]["mean_recovery"] == [r["layer_stats"][str(l)]["mean_recovery"] for l in range(3)]
html = open(T + "/demo/compare/report.html").read()
assert "HTML report: %s/demo/compare/report.html" % T in out and "tiny" in html
print("  demo on the trained organism: behaviour, profile, summary.json and report.html complete")
PYEOF
echo "  62-organism-train: $(( $(date +%s) - t0 )) s"
exit $fail
