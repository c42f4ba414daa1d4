#!/usr/bin/env bash
# 70-compare: `clens compare` (docs/compare.md).
#  1. The seed fixture reproduces the seed's four tables (layer, mean, Δ exactly
#     as published, parsed from the seed text itself) and labels them by the
#     rule from point values, saying that CIs are unavailable.
#  2. Real run folders from `clens patch` on generated models of two
#     architectures and three depths (qwen2 4 and 6 layers at resid_pre, olmo3 8
#     layers at resid_post): every statistic against an independent numpy
#     computation with the same resampling indices (tests/suites/compare_ref.py),
#     the resid_post -> resid_pre conversion and relative depth, paired and
#     independent differences, pairs.csv.
#  3. The label rule on constructed profiles: each label, the mid-range and
#     last-block edges, resid_post numbering, a spike whose CI crosses the
#     threshold, a jump whose CI includes the median increment.
#  4. The browser test (rulings R16): headless Debian chromium through
#     playwright-core opens report.html, screenshot, every model's curve and
#     table, no console error, no network request; the evidence report's
#     probe/cause/control table and plot, AtP table and scatter and final prompt
#     tokens; and it fails on a report with a missing curve, an external fetch,
#     missing AtP points or missing final tokens.
#  5. Probe, steering and AtP beside patching (run before 4): exact patching,
#     --method atp, capture + probe and two one-layer ablations on the same pairs
#     of a planted tiny model; compare with all three attachments against
#     compare_ref.py --evidence (numpy from the input files); final_tokens against
#     the raw prompt text; a mismatched AtP run refused naming the key.
. "$ROOT/tests/suites/lib.sh"
suite_begin compare

# ---------------------------------------------------------------- 1. the seed
check $CLENS compare data/seed_results.json --out "$T/seed" -q
check $PY - "$SHARED/seed/000_743c65cba74f1fdd.txt" "$T/seed" <<'PYEOF'
import json, re, sys
seed, out = open(sys.argv[1]).read(), sys.argv[2]
md = open(out + "/comparison.md").read()
row = re.compile(r'^\| \**(\d+)\** \| \**([\d.]+%)\** \| \**([-+]?[\d.]+%|-)\**', re.M)
seed_tabs = [row.findall(s) for s in re.split(r'\n### 4\.\d ', seed)[1:5]]
md_tabs = [row.findall(s) for s in re.split(r'\n## \d+\. ', md)[1:5]]
assert len(seed_tabs) == 4 and len(md_tabs) == 4
for a, b in zip(seed_tabs, md_tabs):
    assert len(a) in (14, 16) and a == b, (a, b)
# the rule on the published means, computed here from the seed text:
# spike = delta >= 10 (no CI: point values); mid if 0.4 <= (L+1)/n <= 0.8; final = last step
want = []
for t, n in zip(seed_tabs, (28, 32, 32, 32)):
    L = [int(r[0]) for r in t]; v = [float(r[1][:-1]) for r in t]
    sp = [i for i in range(1, len(L)) if v[i] - v[i - 1] >= 10 - 1e-9]
    mid = any(0.4 <= (L[i] + 1) / n <= 0.8 for i in sp); fin = (len(L) - 1) in sp
    want.append("hybrid" if mid and fin else "mid-spike" if mid else "final-spike" if fin else "gradual")
assert want == ["hybrid", "hybrid", "hybrid", "final-spike"], want
cmp = json.load(open(out + "/comparison.json"))
got = [m["profile_label"]["point"] for m in cmp["models"]]
assert got == want, (got, want)
assert [m["profile_label"]["seed"] for m in cmp["models"]] == ["mid-spike", "gradual", "hybrid", "final-spike"]
for m in cmp["models"]:
    assert m["per_pair"] is False and m["profile_label"]["basis"].startswith("point values only")
    assert all(p["ci95"] is None and p["delta_ci95"] is None for p in m["profile"])
    assert m["site_type"] == "resid_post"
ds = cmp["models"][0]["profile"]
assert ds[9]["layer"] == 18 and ds[9]["layer_resid_pre"] == 19 and abs(ds[9]["depth"] - 19 / 28) < 1e-15
assert "CIs unavailable" in md and "Without per-pair values no CI is available" in md
fx = json.load(open("data/seed_results.json"))
assert fx["site_type"] == "resid_post" and fx["metric"] == "logit_mean"
assert [m["n_pairs"] for m in fx["models"]] == [50, 24, 50, 50]
assert any("RESULTS.md" in n for n in fx["notes"]) and "RESULTS.md" in fx["models"][1]["notes"]
# summary table rows like the seed's section 5
for lab, crit, jump, peak in [("DeepSeek-R1-Distill-Qwen-7B", "L20", "L16→L18 | +21.5", "91.2% (L26)"),
                              ("OLMo-3-7B-Think", "L30", "L28→L30 | +43.8", "86.7% (L30)")]:
    line = next(l for l in md.splitlines() if l.startswith("| " + lab + " |"))
    assert crit in line and jump in line and peak in line, line
print("  seed: 4 tables (means and Δ) identical to the published ones; labels by the rule", got)
PYEOF

# -------------------------------------------------------- 2. real run folders
study_models
$CLENS pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 30 --out "$T/pairs.jsonl" >/dev/null || exit 1
P="--filter seed --min-diff 0 --prompt raw --quiet --bootstrap 100"
check $CLENS patch "$T/qwen2-4" --pairs "$T/pairs.jsonl" --out "$T/run-q4" --n 8 --sites resid_pre,attn_out,z $P
check $CLENS patch "$T/qwen2-6" --pairs "$T/pairs.jsonl" --out "$T/run-q6" --n 8 --sites resid_pre $P
check $CLENS patch "$T/olmo3-8" --pairs "$T/pairs.jsonl" --out "$T/run-o8" --n 7 --sites resid_post --metric logit_mean $P
check $CLENS compare "$T/run-q4" "$T/run-q6" "$T/run-o8" --out "$T/runs" --resamples 400 --seed 7 -q \
  --label run-q4=Qwen2-4L --training run-q4=SFT --label "$T/run-o8=OLMo3-8L" --training run-o8=RL
check $PY tests/suites/compare_ref.py "$T/runs" "$T/run-q4" "$T/run-q6" "$T/run-o8"
check $PY - "$T/runs" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1] + "/comparison.json"))
m = {x["label"]: x for x in c["models"]}
assert set(m) == {"Qwen2-4L", "qwen2-6", "OLMo3-8L"}, set(m)
assert m["Qwen2-4L"]["training"] == "SFT" and m["OLMo3-8L"]["training"] == "RL" and m["qwen2-6"]["training"] == "unspecified"
o = m["OLMo3-8L"]
assert o["site_type"] == "resid_post" and [p["layer_resid_pre"] - p["layer"] for p in o["profile"]] == [1] * 8
assert [p["depth"] for p in o["profile"]] == [(l + 1) / 8 for l in range(8)]
assert o["profile"][-1]["trivial"] and abs(o["profile"][-1]["mean"] - 100) < 1e-9  # resid_post 7 = after the last block
q = m["Qwen2-4L"]
assert [p["depth"] for p in q["profile"]] == [l / 4 for l in range(5)] and q["profile"][-1]["trivial"]
d = {(x["a"], x["b"]): x for x in c["differences"]}
assert d[("Qwen2-4L", "qwen2-6")]["bootstrap"] == "paired" and d[("Qwen2-4L", "OLMo3-8L")]["bootstrap"] == "independent"
for x in c["models"]:
    assert "mode" in x and "clens default" in x["mode"], x["mode"]
import os
for f in ("comparison.md", "comparison.json", "pairs.csv", "recovery_depth.svg", "recovery_layer.svg",
          "delta_1.svg", "delta_2.svg", "delta_3.svg", "heads_1.svg", "report.html"):
    assert os.path.getsize(sys.argv[1] + "/" + f) > 0, f
h = open(sys.argv[1] + "/report.html").read()
assert "http://" not in h.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in h and "<script" not in h
assert 'class="plot-heads"' in h and 'class="final-tokens"' in h and 'first-diff' in h
print("  runs: labels/training flags, resid_post -> resid_pre + 1, depth = L/n, paired vs independent, files present")
PYEOF
# a hand-made run folder whose last point sits near 50%, so the critical layer's bootstrap
# ("not reached" in many resamples) depends on every draw
check $PY - "$T/run-crafted" <<'PYEOF'
import json, os, random, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
json.dump({"settings_hash": "x", "settings": {"model": "/m/crafted", "metric": "logit_mean", "site_types": ["resid_pre"],
           "layers": {"resid_pre": [0, 1, 2, 3, 4, 5]}, "n": 12}, "provenance": {"n_layers": 6}}, open(d + "/settings.json", "w"))
rnd = random.Random(11)
rows = [[0, 5 + rnd.uniform(-5, 5), 15 + rnd.uniform(-10, 10), 30 + rnd.uniform(-20, 20), 35 + rnd.uniform(-20, 20),
         rnd.uniform(-40, 40)] for i in range(12)]
shift = 50.5 - sum(r[5] for r in rows) / 12                  # the last point's mean: 50.5
with open(d + "/records.jsonl", "w") as f:
    for i, r in enumerate(rows):
        r[5] += shift
        f.write(json.dumps({"candidate": i, "id": f"p{i}", "status": "kept", "metrics": {"logit_mean": {
            "clean": 0.0, "corr": 10.0, "patched": {"resid_pre": [10 - x / 10 for x in r]}}}}) + "\n")
PYEOF
check $CLENS compare "$T/run-crafted" "$T/run-q4" --out "$T/crafted" --resamples 500 --seed 3 -q
check $PY tests/suites/compare_ref.py "$T/crafted" "$T/run-crafted" "$T/run-q4"
check $PY -c 'import json,sys; c=json.load(open(sys.argv[1]))["models"][0]["critical"]; n=c["resamples_not_reached"]; assert 50 < n < 450, c; print("  crafted: critical layer not reached in", n, "of 500 resamples (draw-sensitive)")' "$T/crafted/comparison.json"
# the same runs through results.json only (aggregates plus per-pair recoveries from results.json's pairs)
check $CLENS compare "$T/run-q4/results.json" --out "$T/viaresults" -q --resamples 400 --seed 7
check $PY - "$T/runs" "$T/viaresults" <<'PYEOF'
import json, sys
a = json.load(open(sys.argv[1] + "/comparison.json"))["models"][0]["profile"]
b = json.load(open(sys.argv[2] + "/comparison.json"))["models"][0]["profile"]
for p, q in zip(a, b):
    assert abs(p["mean"] - q["mean"]) < 1e-9 and p["ci95"] == q["ci95"] and p["delta_ci95"] == q["delta_ci95"], (p, q)
print("  results.json input gives the same profile and CIs as the run folder")
PYEOF

# ------------------------------------------------- 3. the rule on constructed profiles
check $PY - "$T/rule" <<'PYEOF'
import json, os, sys
T = sys.argv[1]; os.makedirs(T, exist_ok=True)
def results(name, means, n_layers, site="resid_pre", pairs=None):
    layers = list(range(len(means)))
    d = {"site_type": site, "model": name, "metric": "logit_mean",
         "layer_stats": {str(l): {"mean_recovery": v, "std_recovery": 0.0, "n_samples": 6} for l, v in zip(layers, means)},
         "settings": {"layers": {site: layers}}, "provenance": {"n_layers": n_layers}}
    if pairs:
        d["pairs"] = [{"candidate": i, "id": f"p{i}", "D": -4.0, "recovery": {site: row}} for i, row in enumerate(pairs)]
        d["layer_stats"] = {str(l): {"mean_recovery": sum(r[l] for r in pairs) / len(pairs)} for l in layers}
    if name == "mid":
        d["behaviour"] = {"p_correction_after_error": 0.61, "p_correction_after_correct": 0.07, "n_traces": 500}
    json.dump(d, open(f"{T}/{name}.json", "w"))
base = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
results("mid", [0, 1, 2, 3, 4, 20, 22, 24, 26, 28, 100], 10)          # +16 into L5 (d 0.5)
results("final", [0, 2, 4, 6, 8, 10, 12, 14, 16, 40, 100], 10)       # +24 into L9 (last non-trivial step)
results("hybrid", [0, 1, 2, 3, 4, 20, 22, 24, 26, 45, 100], 10)
results("gradual", [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 100], 10)  # the +55 into L10 is the last block: trivial
results("early", [0, 15, 16, 17, 18, 19, 20, 21, 22, 23, 100], 10)   # spike at d 0.1: neither mid nor final
results("edge40", [0, 1, 2, 3, 13, 14, 15, 16, 17, 18, 100], 10)     # +10 exactly into L4 (d 0.40): mid, inclusive
results("edge30", [0, 1, 2, 12, 13, 14, 15, 16, 17, 18, 100], 10)    # +10 into L3 (d 0.30): not mid
results("below", [0, 1, 2, 3, 12.9, 14, 15, 16, 17, 18, 100], 10)    # +9.9: below the threshold
# resid_post numbering: resid_post 3 = resid_pre 4 (d 0.4), so a jump into it is mid; the last point,
# resid_post 8 = resid_pre 9, is the last non-trivial step
results("post", [0, 1, 2, 13, 14, 15, 16, 17, 40], 10, site="resid_post")
# per-pair: a +12 mid jump whose CI crosses 10 (and excludes the median), and a +12 jump whose CI includes the median
import random
rnd = random.Random(5)
rows = []
for i in range(12):
    j = 12 + (i % 2) * 12 - 6 + rnd.uniform(-1, 1)                     # jumps around 12 ± 6
    r = [0, 1, 2, 3, 4, 4 + j, 5 + j, 6 + j, 7 + j, 8 + j, 100]
    rows.append([x + rnd.uniform(-0.3, 0.3) if k not in (0, 10) else x for k, x in enumerate(r)])
results("cross", None or [0] * 11, 10, pairs=rows)
rows2 = []
for i in range(12):
    j = 12 + (60 if i % 2 else -60)                                    # +12 on average, CI wide
    rows2.append([0, 1, 2, 3, 4, 4 + j, 5 + j, 6 + j, 7 + j, 8 + j, 100])
results("noisy", [0] * 11, 10, pairs=rows2)
PYEOF
R=$T/rule
check $CLENS compare $R/mid.json $R/final.json $R/hybrid.json $R/gradual.json $R/early.json $R/edge40.json \
  $R/edge30.json $R/below.json $R/post.json $R/cross.json $R/noisy.json --out "$T/rule-out" -q --resamples 1000
check $PY - "$T/rule-out" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1] + "/comparison.json"))
got = {m["label"]: m["profile_label"] for m in c["models"]}
want = {"mid": "mid-spike", "final": "final-spike", "hybrid": "hybrid", "gradual": "gradual", "early": "gradual",
        "edge40": "mid-spike", "edge30": "gradual", "below": "gradual", "post": "hybrid", "cross": "mid-spike",
        "noisy": "gradual"}
for k, v in want.items():
    assert got[k]["point"] == v, (k, got[k], v)
x = got["cross"]
assert x["at_ci_low"] == "gradual" and x["at_ci_high"] == "mid-spike" and not x["stable"], x
cm = next(m for m in c["models"] if m["label"] == "cross")
s = cm["profile"][5]
assert s["delta"] >= 10 and s["delta_ci95"][0] < 10 <= s["delta_ci95"][1] and s["spike"], s
nm = next(m for m in c["models"] if m["label"] == "noisy")
s = nm["profile"][5]
assert s["delta"] >= 10 and s["delta_ci95"][0] <= nm["median_delta"] and not s["spike"], (s, nm["median_delta"])
md = open(sys.argv[1] + "/comparison.md").read()
assert "rests on a CI that crosses its threshold" in md
assert "min_jump = 10.0, mid range = [0.40, 0.80]" in md
h = open(sys.argv[1] + "/report.html").read()
assert h.count("<h3>Behaviour</h3>") == 1 and "&quot;p_correction_after_error&quot;: 0.61" in h
assert c["models"][0]["behaviour"]["n_traces"] == 500
print("  rule: every label, both mid-range edges, resid_post numbering, CI crossing the threshold, CI over the median")
PYEOF

# ------------------------------------- 5. probe, steering and AtP beside patching
# A tiny qwen2 with a direction planted through the weights (tools/plant_direction.py, as 74-probe),
# its pairs; on the same pairs: exact patching (resid_pre, attn_out, z), `--method atp`, capture +
# probe at the final position, and two one-layer ablations of the probe's direction (steer at
# resid_pre 1 and 2). compare_ref.py --evidence recomputes from those files: the per-layer join on
# resid_pre numbering, probe AUROC/CI/null, the steering effect and random control with their
# bootstrap CIs, and AtP vs exact per site (every head of z), Pearson/Spearman per site type, flags.
E=$T/ev
mkdir -p "$E"
$CLENS organism tokenizer --out "$E/tok" >/dev/null 2>&1 || exit 1
set -- $($PY -c "import json,sys; v=json.load(open(sys.argv[1]))['model']['vocab']; print(v['6'], v['7'])" "$E/tok/tokenizer.json")
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --hidden 64 --heads 4 --kv-heads 2 --intermediate 128 \
    --vocab 320 --untied --seed 5 --quiet --out "$E/m" || exit 1
cp "$E/tok/tokenizer.json" "$E/tok/tokenizer_config.json" "$E/m/"
$PY tools/plant_direction.py "$E/m" --base-token $1 --marker-token $2 --alpha 10 --seed 1 --vector-out "$E/v.npy" \
    --pairs-out "$E/pairs.jsonl" --n-pairs 40 >/dev/null || exit 1
EP="--pairs $E/pairs.jsonl --prompt raw --filter seed --min-diff 0 --n 10 --sites resid_pre,attn_out,z --quiet --bootstrap 50"
check $CLENS patch "$E/m" $EP --out "$E/exact"
check $CLENS patch "$E/m" $EP --out "$E/atp" --method atp
check $CLENS patch "$E/m" --pairs "$E/pairs.jsonl" --prompt raw --filter seed --min-diff 0 --n 2 --sites resid_pre --quiet \
  --bootstrap 10 --metric logit_mean --out "$E/atp-other" --method atp
check $CLENS capture "$E/m" --pairs "$E/pairs.jsonl" --prompt raw --positions final --sites 'blocks.*.hook_resid_pre' --quiet \
  --out "$E/cap" >/dev/null
check $CLENS probe "$E/cap" --out "$E/probe" --bootstrap 100 --permutations 5 --random-dirs 5 >/dev/null
printf '{"prompt": "So 3 + 5 = 9", "kind": "error"}\n' > "$E/gen.jsonl"
for L in 1 2; do
  check $CLENS steer "$E/m" --direction "$E/probe/probe.json" --hook resid_pre --layers $L --mode ablate --alpha 0,1 \
    --positions last --pairs "$E/pairs.jsonl" --prompts "$E/gen.jsonl" --limit 10 --prompt raw --random 2 --max-new 1 --k 1 \
    --samples 1 --quiet --out "$E/steer-L$L" >/dev/null
done
EV="--probe exact=$E/probe --steer exact=$E/steer-L1 --steer exact=$E/steer-L2 --atp exact=$E/atp"
check $CLENS compare "$E/exact" --out "$E/cmp" --resamples 300 --seed 3 -q $EV
check $PY tests/suites/compare_ref.py "$E/cmp" "$E/exact"
check $PY tests/suites/compare_ref.py --evidence "$E/cmp" "$E/exact" "$E/probe" "$E/atp" "$E/steer-L1" "$E/steer-L2"
check $PY - "$E" <<'PYEOF'
import json, os, re, sys
E = sys.argv[1]
c = json.load(open(E + "/cmp/comparison.json"))
m = c["models"][0]
ev = m["evidence"]
assert m["has_final_tokens"] and ev["agreement"].startswith(m["label"] + ": patching recovery (cause)"), ev["agreement"]
assert "probe (readable)" in ev["agreement"] and "steering (control)" in ev["agreement"]
assert "Probe vs cause vs control. " + ev["agreement"] in c["summary"] and "AtP vs exact patching (" in c["summary"], c["summary"]
assert [t["site_type"] for t in ev["atp"]["site_types"]] == ["resid_pre", "attn_out", "z"]
z = ev["atp"]["site_types"][2]
assert len(z["sites"]) == 4 * 4 and {s["head"] for s in z["sites"]} == {0, 1, 2, 3}
assert ev["atp"]["flag_rule"] == {"sign_min_points": 1.0, "abs_points": 10.0, "rel_of_exact": 0.25}
st = json.load(open(E + "/cmp/settings.json"))["settings"]
assert st["probes"] == ["exact=" + E + "/probe"] and len(st["steers"]) == 2 and st["atps"] == ["exact=" + E + "/atp"]
md = open(E + "/cmp/comparison.md").read()
assert "### Probe, cause and control" in md and "### AtP beside exact patching" in md and "| z | 16 |" in md
for f in ("evidence_1.svg", "atp_1.svg"):
    assert os.path.getsize(E + "/cmp/" + f) > 0, f
h = open(E + "/cmp/report.html").read()
assert 'class="plot-evidence"' in h and 'class="plot-atp"' in h and 'table class="evidence"' in h
# final_tokens: the last 8 tokens of both prompts, joined = the end of the raw prompt text;
# first_diff = where the prompts part (the corrupted digit)
pairs = {p["id"]: p for p in map(json.loads, open(E + "/pairs.jsonl"))}
recs = [json.loads(l) for l in open(E + "/exact/records.jsonl")]
for r in recs:
    ft, p = r["final_tokens"], pairs[r["id"]]
    for side, pre in (("clean", "clean_prefix"), ("corrupted", "corrupted_prefix")):
        text = "Solve this math problem step by step:\n\n%s\n\nSolution: %s" % (p["problem"], p[pre])
        assert len(ft[side]) == min(8, r["n_tokens"]) and text.endswith("".join(ft[side])), (side, ft[side], text[-40:])
    d = ft["first_diff"]
    assert d["position"] + d["from_end"] == r["n_tokens"] and d["clean"] != d["corrupted"], d
    assert d["clean"] in p["site"]["clean_value"] and d["corrupted"] in p["site"]["corrupted_value"], (d, p["site"])
print("  evidence: settings record the attachments; md/html/svg sections; final_tokens = prompt ends, first_diff at the corrupted digit (%d records)" % len(recs))
PYEOF
# an AtP run on other settings is refused, naming the key; an attachment matching no input too
$CLENS compare "$E/exact" --out "$E/cmp-bad" -q --atp "exact=$E/atp-other" 2>"$E/err-atp.txt"; check [ $? -eq 1 ]
check grep -q "settings.metric is \"logit_mean\" there but \"logprob_mass\"" "$E/err-atp.txt"
$CLENS compare "$E/exact" --out "$E/cmp-bad2" -q --probe "nosuch=$E/probe" 2>"$E/err-probe.txt"; check [ $? -eq 1 ]
check grep -q "no input matches 'nosuch'" "$E/err-probe.txt"
$CLENS compare "$E/exact" --out "$E/cmp-bad3" -q --steer "exact" 2>/dev/null; check [ $? -eq 2 ]
echo "  evidence: a mismatched AtP run is refused naming settings.metric; unmatched attachment refused; bad flag exit 2"

# ---------------------------------------------------------- 4. the browser
if [ ! -x /usr/bin/chromium ]; then
  echo "FAIL: /usr/bin/chromium missing (tools/install-deps.sh installs Debian's chromium)"; fail=1
else
  if [ ! -f tools/browser/node_modules/playwright-core/package.json ]; then
    for try in 1 2 3; do
      (cd tools/browser && npm ci --no-audit --no-fund --loglevel=error) && break
      echo "70-compare: npm ci failed (try $try)"; sleep 5
    done
  fi
  # the report of the real runs plus the seed fixture: seven models
  check $CLENS compare "$T/run-q4" "$T/run-q6" "$T/run-o8" data/seed_results.json --out "$T/report" -q --resamples 400
  if node tools/browser/check_report.js "$T/report/report.html" "$T/report/screenshot.png" > "$T/browser.json"; then
    echo "  browser: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["models"]), "models, requests:", d["requests"], "console errors:", len(d["console_errors"]))' "$T/browser.json" 2>/dev/null || cat "$T/browser.json"); screenshot $T/report/screenshot.png"
  else
    echo "FAIL: browser check"; cat "$T/browser.json"; fail=1
  fi
  # the evidence report: probe/cause/control table and plot, AtP table and scatter, final tokens
  if node tools/browser/check_report.js "$E/cmp/report.html" "$E/cmp/screenshot.png" > "$T/browser-ev.json"; then
    echo "  browser (evidence): $($PY -c 'import json,sys; d=json.load(open(sys.argv[1]))["models"][0]; print("evidence rows", d["ev_table_rows"], "probe points", d["ev_probe_points"], "steer points", d["ev_steer_points"], "AtP points", d["atp_points"], "token rows", d["token_rows"])' "$T/browser-ev.json"); screenshot $E/cmp/screenshot-full.png"
  else
    echo "FAIL: browser check of the evidence report"; cat "$T/browser-ev.json"; fail=1
  fi
  # it can fail: a report without one model's curve, and one that fetches from the network
  mkdir -p "$T/bad1" "$T/bad2"
  cp "$T/report/comparison.json" "$T/bad1/"; cp "$T/report/comparison.json" "$T/bad2/"
  $PY -c 'import re,sys; h=open(sys.argv[1]).read(); h=re.sub(r"<polyline class=\"curve\" data-model=\"qwen2-6\"[^>]*/>", "", h); open(sys.argv[2],"w").write(h)' \
    "$T/report/report.html" "$T/bad1/report.html"
  sed 's|</body>|<img src="https://example.invalid/x.png"></body>|' "$T/report/report.html" > "$T/bad2/report.html"
  # ... and the evidence report without its AtP scatter points or its final tokens
  mkdir -p "$T/bad3" "$T/bad4"
  cp "$E/cmp/comparison.json" "$T/bad3/"; cp "$E/cmp/comparison.json" "$T/bad4/"
  $PY -c 'import re,sys; h=open(sys.argv[1]).read(); h=re.sub(r"<circle class=\"atp-point\"[^>]*>.*?</circle>", "", h, count=3); open(sys.argv[2],"w").write(h)' \
    "$E/cmp/report.html" "$T/bad3/report.html"
  $PY -c 'import re,sys; h=open(sys.argv[1]).read(); h=h.replace("class=\"final-tokens\"", "class=\"x\""); open(sys.argv[2],"w").write(h)' \
    "$E/cmp/report.html" "$T/bad4/report.html"
  for b in bad1 bad2 bad3 bad4; do
    if node tools/browser/check_report.js "$T/$b/report.html" "$T/$b/shot.png" > "$T/$b.json"; then
      echo "FAIL: the browser check passed a broken report ($b)"; fail=1
    else
      echo "  browser check rejects $b: $($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["problems"][0][:100])' "$T/$b.json")"
    fi
  done
fi

# ------------------------------------------------------------- bad input
$CLENS compare "$T/nope" --out "$T/x" 2>"$T/err1.txt"; check [ $? -eq 1 ]
check grep -q "nope" "$T/err1.txt"
printf '{"x": 1}\n' > "$T/bad.json"
$CLENS compare "$T/bad.json" --out "$T/x" 2>"$T/err2.txt"; check [ $? -eq 1 ]
check grep -q "bad.json" "$T/err2.txt"
# a rerun into the same folder: same settings fine, other settings refused naming the key (rulings R19)
check $CLENS compare data/seed_results.json --out "$T/seed" -q
$CLENS compare data/seed_results.json --out "$T/seed" -q --min-jump 8 2>"$T/err3.txt"; check [ $? -eq 1 ]
check grep -q "holds a comparison with other settings: settings.min_jump is" "$T/err3.txt"
$CLENS compare data/seed_results.json 2>/dev/null; check [ $? -eq 2 ]
$CLENS compare data/seed_results.json --out "$T/x" --training a=bogus 2>/dev/null; check [ $? -eq 2 ]
echo "70-compare: $(( $(date +%s) - t0 )) s"
exit $fail
