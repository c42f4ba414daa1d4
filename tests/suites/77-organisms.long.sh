#!/usr/bin/env bash
# 77-organisms (make test-long): training dynamics and attribution patching on the trained model
# organisms of `make demo` (docs/organisms.md, docs/organism-results.md sections 3 and 4).
# Needs the organism folders qwen2-a*, qwen2-b*, olmo3-c* (each with checkpoints/step-*) under
# $CLENS_ORGANISMS (default build/organisms/models: run `make demo` first); SKIPPED when none.
# Per organism, on held-out pairs of the recipe's distribution (data/organisms.json's trace flags):
#  - `clens dynamics` over all its checkpoints (21) completes with the heat map, the per-layer fits
#    (one entry per resid_pre layer 0..L with a verdict among gradual / transition / too sparse to
#    decide / flat) and a headline verdict; the behaviour is measured at every checkpoint and the
#    last checkpoint's P(correction | error) is >= 0.9 (the organism has learned the behaviour);
#  - `clens patch --method atp` and the exact fast sweep on the same pairs: the Pearson r of their
#    per-pair effects (m_patched - m_corr) per site type is printed with both run times (the times
#    only compare the methods on a shared machine); asserted: both runs keep the same pairs, and on
#    the unsaturated metric logit_mean r(mlp_out) >= 0.5 (measured 0.84-0.98).
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/organisms-long
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
t0=$(date +%s)

ORG=${CLENS_ORGANISMS:-$ROOT/build/organisms/models}
org_dir() { for d in "$ORG/$1" "$ORG/$1"-*; do [ -f "$d/config.json" ] && [ -d "$d/checkpoints" ] && { echo "$d"; return; }; done; }
orgs=""
for n in qwen2-a qwen2-b olmo3-c; do d=$(org_dir $n); [ -n "$d" ] && orgs="$orgs $n=$d"; done
if [ -z "$orgs" ]; then
  echo "SKIP 77-organisms: no trained qwen2-a / qwen2-b / olmo3-c folder with checkpoints under $ORG (make demo; set CLENS_ORGANISMS)"
  exit 0
fi

RECIPE="--min-steps 2 --max-steps 4 --max-operand 9 --max-mul 9 --max-value 30"
$CLENS organism traces --split heldout --seed 13 --n 500 $RECIPE --out "$T/heldout.jsonl" >/dev/null || exit 1
$CLENS pairs --data "$T/heldout.jsonl" --format gsm8k --out "$T/pairs.jsonl" >/dev/null 2>&1 || exit 1

for e in $orgs; do
  n=${e%%=*}; d=${e#*=}
  s0=$(date +%s)
  check $CLENS dynamics "$d"/checkpoints/step-* --pairs "$T/pairs.jsonl" --prompt raw --min-diff 1 --n 20 \
    --behaviour "$T/heldout.jsonl" --behaviour-n 100 --out "$T/dyn-$n" --quiet
  s1=$(date +%s)
  check $PY - "$T/dyn-$n" "$n" "$(ls -d "$d"/checkpoints/step-* | wc -l)" $((s1 - s0)) <<'PYEOF'
import json, os, sys
D, name, n_ckpt, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = json.load(open(f"{D}/dynamics.json"))
for f in ("heatmap.svg", "curves.svg", "dynamics.md", "report.html"):
    assert os.path.getsize(f"{D}/{f}") > 0, f
assert n_ckpt >= 10 and len(d["checkpoints"]) == n_ckpt, (n_ckpt, len(d["checkpoints"]))
verdicts = {"gradual", "transition", "too sparse to decide", "flat"}
L = len(d["layers"])
assert [l["layer_resid_pre"] for l in d["layers"]] == list(range(L)), [l["layer_resid_pre"] for l in d["layers"]]
for l in d["layers"]:
    assert l["verdict"] in verdicts, l
h = d["headline"]
assert h and h["verdict"] in verdicts, h
last = d["checkpoints"][-1]
beh = last.get("behaviour") or {}
beh = beh.get("behaviour", beh)
pe = beh.get("p_correction_after_error")
assert pe is not None and pe >= 0.9, (name, beh)
print(f"  {name}: {n_ckpt} checkpoints in {secs} s; headline resid_pre {h['layer_resid_pre']}: {h['verdict']}; "
      + ", ".join(f"{l['layer_resid_pre']}: {l['verdict']}" for l in d["layers"])
      + f"; last checkpoint P(corr|error) {pe:.2f}")
PYEOF
  for meth in fast atp; do
    s0=$(date +%s%N)
    check $CLENS patch "$d" --pairs "$T/pairs.jsonl" --prompt raw --n 50 --min-diff 1 \
      --sites resid_pre,resid_post,attn_out,mlp_out,z --method $meth --threads 1 --bootstrap 50 --quiet \
      --out "$T/patch-$n-$meth" >/dev/null
    echo "$n $meth $(( ($(date +%s%N) - s0) / 1000000 ))" >> "$T/times.txt"
  done
  check $PY - "$T" "$n" <<'PYEOF'
import sys
T, n = sys.argv[1], sys.argv[2]
times = {tuple(l.split()[:2]): int(l.split()[2]) for l in open(f"{T}/times.txt")}
sys.path.insert(0, "tools")
import atp_vs_exact
fast, atp = (atp_vs_exact.kept_records(f"{T}/patch-{n}-{m}") for m in ("fast", "atp"))
assert fast.keys() == atp.keys() and len(fast) > 0, (len(fast), len(atp))
ids, out = atp_vs_exact.correlations(fast, atp)
for metric in atp_vs_exact.METRICS:
    print(f"  {n} AtP vs exact, {metric}, {len(ids)} pairs: "
          + ", ".join(f"{s} r={out[(metric, s)]:.3f}" for s in atp_vs_exact.SITES)
          + f"; time exact {times[(n, 'fast')] / 1000:.2f} s, atp {times[(n, 'atp')] / 1000:.2f} s")
assert out[("logit_mean", "mlp_out")] >= 0.5, out
PYEOF
done

echo "  77-organisms: $(( $(date +%s) - t0 )) s"
exit $fail
