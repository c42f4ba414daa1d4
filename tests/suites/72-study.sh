#!/usr/bin/env bash
# 72-study: `clens study STUDY.json` (docs/study.md).
#  1. A study of three generated models of two architectures and three depths
#     (qwen2 4 and 6 layers, olmo3 8 layers), pairs built from GSM8K, end to
#     end: settings.json + hash, one run folder per model, comparison/ with each
#     model's label and training regime, study.md whose mean +- SD tables equal
#     a numpy computation from the records (population SD, as the seed's).
#  2. kill -9 in the middle of the second model, rerun: every file equals the
#     uninterrupted study's byte for byte apart from timing fields.
#  3. Each model's run equals a direct `clens patch` run with the same
#     settings (records without "seconds", results.json without "timing",
#     settings.json identical).
#  4. A changed setting (n; a model's training regime) is refused, naming the
#     key; a malformed or misspelt key is refused naming the key.
#  5. --fidelity seed: the study's canonical settings key by key, a study-file
#     key that contradicts the preset refused naming it, the dry-run plan
#     (every second layer, memory per model), and `clens patch --fidelity seed`
#     writes every seed choice into settings.json (settings.fidelity "seed").
#  6. Checkpoints and steps: a study of a planted checkpoint series (the 76-dynamics construction:
#     a logistic switch at step 1000, 21 checkpoints given as a glob) and a plain model, with the
#     probe, steer and atp steps. The series is called a transition in study.md; dynamics/<label>/
#     equals a standalone `clens dynamics` with the same settings, captures/probes/steer/atp equal
#     standalone `clens capture` / `clens probe` / `clens steer` / `clens patch --method atp`; the
#     comparison is given the probe/steer/atp folders; kill -9 mid-series + rerun ends with the same
#     files apart from timing; a changed checkpoint list, an empty glob, steps out of order, an
#     unknown checkpoint key and steer without probe are refused naming the key; --shards 2 run
#     locally gives the same dynamics, comparison and study.md.
# Env (tests/run.sh): CLENS, ROOT, SHARED, PY, CLENS_TEST_TMP.
. "$ROOT/tests/suites/lib.sh"
suite_begin study

study_models

# the study file; the folder is $T/s (runs move it aside to compare)
write_study() {  # $1 = n, $2 = training of the second model
cat >"$T/study.json" <<EOF
{"description": "72-study", "out": "$T/s",
 "models": [{"label": "Qwen2 4L", "model": "$T/qwen2-4", "training": "distilled", "notes": "gen seed 3"},
            {"label": "Qwen2-6L", "model": "$T/qwen2-6", "training": "$2"},
            {"label": "OLMo3-8L", "model": "$T/olmo3-8", "training": "RL-after-SFT"}],
 "pairs": {"mode": "build", "data": "$SHARED/data/gsm8k/test.jsonl", "format": "gsm8k", "limit": 30},
 "prompt": "raw", "sites": ["resid_pre", "attn_out"], "filter": "seed", "min_diff": 0, "n": $1,
 "bootstrap": 100, "compare_resamples": 200, "seeds": {"bootstrap": 1, "compare": 2}}
EOF
}
write_study 8 SFT

# ------------------------------------------------------- 1. end to end
check $CLENS study "$T/study.json" --threads 1 >"$T/summary.md" 2>"$T/err1.txt"
grep -q "^study: model 3/3 OLMo3-8L: done" "$T/err1.txt" || { echo "FAIL: no progress lines"; cat "$T/err1.txt"; fail=1; }
check $PY - "$T/s" "$T/summary.md" <<'PYEOF'
import hashlib, json, re, sys, numpy as np
d, summary = sys.argv[1], open(sys.argv[2]).read()
st = json.load(open(d + "/settings.json"))
canon = json.dumps(st["settings"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
assert hashlib.sha256(canon.encode()).hexdigest() == st["settings_hash"], "settings_hash is not the sha256 of the settings"
s = st["settings"]
assert s["fidelity"] == "clens-default" and s["n"] == 8 and s["pairs"]["mode"] == "build" and s["layers"] == "all"
assert [m["training"] for m in s["models"]] == ["distilled", "SFT", "RL-after-SFT"]
assert open(d + "/study.md").read() == summary
cmp = json.load(open(d + "/comparison/comparison.json"))
got = [(m["label"], m["training"]) for m in cmp["models"]]
assert got == [("Qwen2 4L", "distilled"), ("Qwen2-6L", "SFT"), ("OLMo3-8L", "RL-after-SFT")], got
for m in cmp["models"]:
    assert "clens-default" in m["mode"], m["mode"]
# study.md: mean +- SD per layer from the records (numpy, population SD)
for slug, label, nl in (("Qwen2_4L", "Qwen2 4L", 4), ("Qwen2-6L", "Qwen2-6L", 6), ("OLMo3-8L", "OLMo3-8L", 8)):
    rs = json.load(open(f"{d}/runs/{slug}/settings.json"))
    assert rs["settings"]["fidelity"] == "clens-default" and rs["provenance"]["n_layers"] == nl
    recs = [json.loads(l) for l in open(f"{d}/runs/{slug}/records.jsonl")]
    kept = [r for r in recs if r["status"] == "kept"]
    assert len(kept) == 8, len(kept)
    m = np.array([[r["metrics"]["logprob_mass"][k] for k in ("clean", "corr")] for r in kept])
    P = np.array([r["metrics"]["logprob_mass"]["patched"]["resid_pre"] for r in kept])
    R = 100 * (P - m[:, 1:2]) / (m[:, 0:1] - m[:, 1:2])
    sec = summary.split(f"\n## {label} (")[1].split("\n## ")[0]
    rows = re.findall(r"^\| (\d+) \| (-?[\d.]+) ± ([\d.]+) \| (\d+) \|$", sec, re.M)
    assert len(rows) == nl + 1, (label, rows)
    for L, mean, sd, n in rows:
        L = int(L)
        assert abs(float(mean) - R[:, L].mean()) <= 0.051 and abs(float(sd) - R[:, L].std(ddof=0)) <= 0.051, \
            (label, L, mean, sd, R[:, L].mean(), R[:, L].std())
        assert int(n) == 8
print("  end to end: 3 models (qwen2 4L/6L, olmo3 8L), settings hash, labels and training in the comparison, "
      "mean ± SD = numpy")
PYEOF

# ------------------------------------------ 2. kill -9 mid-study, rerun
mv "$T/s" "$T/s-straight"
$CLENS study "$T/study.json" --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$T/s/runs/Qwen2-6L/records.jsonl" ] && [ "$(wc -l <"$T/s/runs/Qwen2-6L/records.jsonl")" -ge 3 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
killed_at=$(wc -l <"$T/s/runs/Qwen2-6L/records.jsonl" 2>/dev/null || echo none)
[ -f "$T/s/study.md" ] && { echo "FAIL: the study finished before the kill"; fail=1; }
check $CLENS study "$T/study.json" --threads 1 --quiet
grep -q "resumed" <($CLENS study "$T/study.json" --threads 1 2>&1 >/dev/null) || { echo "FAIL: no resume line"; fail=1; }
check $PY - "$T/s-straight" "$T/s" <<'PYEOF'
import json, os, re, sys
a, b = sys.argv[1:3]
def files(root):
    return sorted(os.path.relpath(os.path.join(p, f), root) for p, _, fs in os.walk(root) for f in fs)
fa, fb = files(a), files(b)
assert fa == fb, (fa, fb)
timing = [re.compile(r'"seconds": ?[0-9.eE+-]+'), re.compile(r'"timing": \{[^}]*\}'),
          re.compile(r'"seconds_(total|per_pair)": ?[0-9.eE+-]+'),
          re.compile(r'^- time: [0-9.]+ s over all records, [0-9.]+ s per kept pair$', re.M)]
def norm(t):
    for r in timing: t = r.sub("TIME", t)
    return t
# comparison/settings.json hashes its inputs, whose timing fields differ: check each hash against its
# own tree, then mask it
import hashlib
for root in (a, b):
    cs = json.load(open(root + "/comparison/settings.json"))
    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("records.jsonl", "results.json") and isinstance(v, str) and len(v) == 64: yield k, v
                else: yield from walk(v)
        elif isinstance(o, list):
            for v in o: yield from walk(v)
    hs = list(walk(cs))
    assert len(hs) == 6, hs
    have = {hashlib.sha256(open(os.path.join(p, f), "rb").read()).hexdigest()
            for p, _, fs in os.walk(root + "/runs") for f in fs if f in ("records.jsonl", "results.json")}
    assert {v for _, v in hs} == have, "comparison/settings.json: input hashes are not the files'"
timing.append(re.compile(r'"(records\.jsonl|results\.json)": "[0-9a-f]{64}"'))
same = 0
for f in fa:
    x, y = open(os.path.join(a, f), "rb").read(), open(os.path.join(b, f), "rb").read()
    if x == y: same += 1; continue
    assert norm(x.decode()) == norm(y.decode()), f"{f} differs beyond timing"
print(f"  kill -9 and rerun: {len(fa)} files equal ({same} byte for byte, the rest apart from timing)")
PYEOF
echo "  (killed with $killed_at records of the second model)"

# ---------------------------- 3. each run equals a direct `clens patch`
k=0
for pair in "qwen2-4:Qwen2_4L" "qwen2-6:Qwen2-6L" "olmo3-8:OLMo3-8L"; do
  m=${pair%%:*}; slug=${pair#*:}
  check $CLENS patch "$T/$m" --pairs "$T/s/pairs.jsonl" --out "$T/direct-$m" --n 8 --sites resid_pre,attn_out \
    --filter seed --min-diff 0 --prompt raw --bootstrap 100 --seed 1 --fidelity clens-default --threads 1 --quiet
  check $PY - "$T/direct-$m" "$T/s/runs/$slug" <<'PYEOF'
import json, sys
a, b = sys.argv[1:3]
assert open(a + "/settings.json").read() == open(b + "/settings.json").read(), "settings.json differ"
def recs(d): return [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in open(d + "/records.jsonl")]
assert recs(a) == recs(b), "records differ"
def res(d):
    r = json.load(open(d + "/results.json")); r.pop("timing"); return r
assert res(a) == res(b), "results.json differ"
PYEOF
  k=$((k + 1))
done
echo "  direct clens patch: $k runs equal (settings, records, results)"

# ---------------------------------------------- 4. refusals naming the key
write_study 9 SFT
out=$($CLENS study "$T/study.json" --quiet 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "holds a study with other settings: settings.n is 8 there but 9 now" <<<"$out" || { echo "FAIL: changed n not refused: $rc $out"; fail=1; }
write_study 8 RL
out=$($CLENS study "$T/study.json" --quiet 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'settings.models\[1\].training is "SFT" there but "RL" now' <<<"$out" \
  || { echo "FAIL: changed training not refused: $rc $out"; fail=1; }
$CLENS study "$T/study.json" --dry-run | grep -q "REFUSED: settings.models\[1\].training" \
  || { echo "FAIL: dry-run does not show the refusal"; fail=1; }
sed 's/"min_diff"/"min_dif"/' "$T/study.json" >"$T/typo.json"
out=$($CLENS study "$T/typo.json" --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "unknown key min_dif" <<<"$out" || { echo "FAIL: misspelt key: $rc $out"; fail=1; }
sed 's/"training": "RL"/"training": "RLHF"/' "$T/study.json" >"$T/bad.json"
out=$($CLENS study "$T/bad.json" --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'models\[1\].training is "RLHF"' <<<"$out" || { echo "FAIL: bad regime: $rc $out"; fail=1; }
$CLENS study "$T/study.json" --fidelity bogus >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: bad --fidelity not a usage error"; fail=1; }

# ------------------------------------------------------ 5. fidelity seed
cat >"$T/seed-study.json" <<EOF
{"out": "$T/seed-s",
 "models": [{"label": "Q4", "model": "$T/qwen2-4", "training": "distilled"},
            {"label": "O8", "model": "$T/olmo3-8", "training": "RL"}],
 "pairs": {"mode": "on-policy", "data": "$SHARED/data/math_algebra/train.jsonl", "format": "math", "pool": 250},
 "n": 50}
EOF
$CLENS study "$T/seed-study.json" --fidelity seed --print-settings >"$T/seed-settings.json" || { echo "FAIL: print-settings"; fail=1; }
check $PY - "$T/seed-settings.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
want = {"fidelity": "seed", "prompt": "raw", "sites": ["resid_post"], "layers": "every-2", "metric": "logit_mean",
        "tokens": None, "filter": "seed", "min_diff": 3.0, "method": "fast", "n": 50}
for k, v in want.items():
    assert s[k] == v, (k, s[k], v)
p = s["pairs"]
for k, v in {"mode": "on-policy", "site": "seed", "corrupt": "plus-one", "cut": "chars-raw:20", "gen_prompt": "raw",
             "max_new": 512, "pool": 250}.items():
    assert p[k] == v, ("pairs." + k, p[k], v)
print("  fidelity seed: the study's settings key by key")
PYEOF
plan=$($CLENS study "$T/seed-study.json" --fidelity seed --dry-run)
grep -q "layers patched: 0,2,4,6 (4)" <<<"$plan" && grep -q "layers patched: 0,2 (2)" <<<"$plan" \
  && grep -q "memory: weights" <<<"$plan" && grep -q "^fidelity: seed" <<<"$plan" \
  || { echo "FAIL: seed plan"; echo "$plan"; fail=1; }
sed 's/"n": 50}/"n": 50, "metric": "logprob_mass"}/' "$T/seed-study.json" >"$T/seed-bad.json"
out=$($CLENS study "$T/seed-bad.json" --fidelity seed --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'metric is "logprob_mass", but fidelity "seed" sets it to "logit_mean"' <<<"$out" \
  || { echo "FAIL: preset conflict: $rc $out"; fail=1; }
out=$($CLENS study "$T/study.json" --fidelity seed --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'but fidelity "seed" sets it to' <<<"$out" || { echo "FAIL: preset vs build: $out"; fail=1; }
# clens patch --fidelity seed: every choice in the run's settings
$CLENS patch "$T/qwen2-6" --pairs "$T/s/pairs.jsonl" --out "$T/patch-seed" --n 3 --fidelity seed --bootstrap 50 \
  --threads 1 --quiet || { echo "FAIL: patch --fidelity seed"; fail=1; }
check $PY - "$T/patch-seed/settings.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))["settings"]
want = {"fidelity": "seed", "prompt": "raw", "metric": "logit_mean", "filter": "seed", "min_diff": 3.0,
        "site_types": ["resid_post"], "layers": {"resid_post": [0, 2, 4]}}
for k, v in want.items():
    assert s[k] == v, (k, s[k], v)
assert s["metrics"]["logit_mean"]["tokens"] == ["Wait", "But", "Actually", "Hmm", "wait", "but", "actually"]
print("  clens patch --fidelity seed: settings key by key")
PYEOF
# a flag that contradicts the preset (the table of src/data/fidelity.c) is refused, naming it
for flag in "--metric logprob_mass" "--min-diff 5" "--layers 1" "--sites resid_pre" "--tokens Wait"; do
  # shellcheck disable=SC2086
  $CLENS patch "$T/qwen2-6" --pairs "$T/s/pairs.jsonl" --out "$T/patch-seed2" --fidelity seed $flag >/dev/null 2>"$T/fid.err"
  rc=$?
  [ $rc -eq 2 ] && grep -q -- "--fidelity seed sets ${flag%% *} .*, but ${flag%% *}" "$T/fid.err" \
    || { echo "FAIL: patch --fidelity seed $flag: exit $rc, $(cat "$T/fid.err")"; fail=1; }
done

# ------------------------------------------------ 6. checkpoints and steps
t6=$(date +%s)
C=$T/ck
switch_endpoints "$C" 40
$PY tools/plant_transition.py "$C/A" "$C/B" --out "$C/sig" --steps 0:2000:100 --schedule logistic:1000:100 --only o_proj || exit 1
printf 'a plain sentence about numbers and lines.\n3 + 4 = 7 and then more.\n' >"$C/neutral.txt"
write_ck_study() {  # $1 = the series' checkpoints (JSON list)
cat >"$C/study.json" <<EOF
{"out": "$C/s",
 "models": [{"label": "planted", "checkpoints": $1, "training": "SFT"},
            {"label": "B", "model": "$C/B", "training": "RL"}],
 "pairs": {"mode": "file", "file": "$C/pairs.jsonl"},
 "prompt": "raw", "filter": "seed", "min_diff": 0, "n": 10, "bootstrap": 200, "seeds": {"bootstrap": 5},
 "compare_resamples": 100, "dynamics": {"resamples": 200, "seed": 5},
 "probe": {"bootstrap": 100, "permutations": 5, "random_dirs": 5},
 "steer": {"alpha": [0, 1], "random": 2, "max_new": 4, "limit": 4, "neutral": "$C/neutral.txt"},
 "atp": true}
EOF
}
write_ck_study "[\"$C/sig/step-*\"]"
check $CLENS study "$C/study.json" --threads 1 >"$C/summary.md" 2>"$C/err.txt"
grep -q "^Verdict: \*\*transition\*\* at resid_pre layer 1 (the last checkpoint's critical layer)" "$C/summary.md" \
  || { echo "FAIL: no transition verdict in study.md"; cat "$C/summary.md"; fail=1; }
for k in probe steer atp; do
  for m in planted B; do
    case $k in probe) d=probes;; *) d=$k;; esac
    grep -q "^study: comparison: $k $C/s/.*=$C/s/$d/$m$" "$C/err.txt" || { echo "FAIL: compare not given $k of $m"; fail=1; }
  done
done
# the standalone commands with the same settings
$CLENS dynamics "$C"/sig/step-* --pairs "$C/pairs.jsonl" --prompt raw --filter seed --min-diff 0 --n 10 --resamples 200 \
  --seed 5 --threads 1 --matmul default -q --out "$C/dyn" >/dev/null || { echo "FAIL: clens dynamics"; fail=1; }
$CLENS capture "$C/B" --pairs "$C/pairs.jsonl" --prompt raw --positions final --threads 1 --quiet --out "$C/cap" >/dev/null \
  || { echo "FAIL: clens capture"; fail=1; }
$CLENS probe "$C/s/captures/B" --bootstrap 100 --permutations 5 --random-dirs 5 --out "$C/prb" >/dev/null \
  || { echo "FAIL: clens probe"; fail=1; }
# the study steers at resid_post (its probe sites include the final residual): the best entry at
# depth d >= 1 (resid_pre numbering) is block d-1
best=$($PY -c "import json,sys; L=[l for l in json.load(open(sys.argv[1]))['layers'] if (l.get('depth') or 0) >= 1]; print(max(L, key=lambda l: l['diff_of_means']['auroc'])['depth'] - 1)" "$C/s/probes/B/probe.json")
$CLENS steer "$C/B" --direction "$C/s/probes/B/probe.json" --layers "$best" --mode ablate --alpha 0,1 --hook resid_post \
  --positions last --pairs "$C/pairs.jsonl" --prompt raw --random 2 --max-new 4 --limit 4 --neutral "$C/neutral.txt" \
  --threads 1 --quiet --out "$C/str" >/dev/null || { echo "FAIL: clens steer"; fail=1; }
$CLENS patch "$C/B" --pairs "$C/pairs.jsonl" --method atp --prompt raw --filter seed --min-diff 0 --n 10 --bootstrap 200 \
  --seed 5 --fidelity clens-default --threads 1 --quiet --out "$C/atp" || { echo "FAIL: clens patch --method atp"; fail=1; }
check $PY - "$C" <<'PYEOF'
import json, os, sys
C = sys.argv[1]
S = C + "/s"
same = lambda a, b: open(a, "rb").read() == open(b, "rb").read()
for f in ("dynamics.json", "dynamics.md", "heatmap.svg", "curves.svg", "report.html", "settings.json"):
    # the same apart from the output folder's name
    x = open(f"{C}/dyn/{f}").read().replace(C + "/dyn/", S + "/dynamics/planted/")
    assert x == open(f"{S}/dynamics/planted/{f}").read(), "dynamics/" + f + " differs from clens dynamics'"
d = json.load(open(S + "/dynamics/planted/dynamics.json"))
assert d["headline"]["verdict"] == "transition" and len(d["checkpoints"]) == 21
recs = lambda p: [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in open(p)]
for r in sorted(os.listdir(C + "/dyn/runs")):
    assert recs(f"{C}/dyn/runs/{r}/records.jsonl") == recs(f"{S}/dynamics/planted/runs/{r}/records.jsonl"), r
ix = json.load(open(C + "/cap/index.json"))
assert ix == json.load(open(S + "/captures/B/index.json")), "capture index.json differs"
for f in ix["files"]:
    assert same(f"{C}/cap/{f['file']}", f"{S}/captures/B/{f['file']}"), f["file"]
assert same(C + "/cap/settings.json", S + "/captures/B/settings.json")
assert same(C + "/prb/probe.json", S + "/probes/B/probe.json"), "probe.json differs from clens probe's"
assert same(C + "/str/steer.json", S + "/steer/B/steer.json"), "steer.json differs from clens steer's"
assert same(C + "/str/settings.json", S + "/steer/B/settings.json")
assert same(C + "/atp/settings.json", S + "/atp/B/settings.json"), "atp settings differ from clens patch --method atp"
assert recs(C + "/atp/records.jsonl") == recs(S + "/atp/B/records.jsonl"), "atp records differ"
for m in ("planted", "B"):
    for f in ("probes/%s/probe.json", "steer/%s/steer.json", "atp/%s/results.json", "captures/%s/index.json"):
        assert os.path.exists(S + "/" + f % m), f % m
print("  checkpoints + steps: transition verdict; dynamics, capture, probe, steer, atp = the standalone commands")
PYEOF
# kill -9 mid-series, rerun: the same files apart from timing
mv "$C/s" "$C/s-straight"
$CLENS study "$C/study.json" --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ "$(ls -d "$C"/s/dynamics/planted/runs/*/results.json 2>/dev/null | wc -l)" -ge 7 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.02
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ -f "$C/s/study.md" ] && { echo "FAIL: the checkpoint study finished before the kill"; fail=1; }
check $CLENS study "$C/study.json" --threads 1 --quiet
cmp_trees() {  # $1 $2: the same files, equal apart from timing fields
$PY - "$1" "$2" <<'PYEOF'
import os, re, sys
a, b = sys.argv[1:3]
def files(r):
    out = []
    for p, _, fs in os.walk(r):
        for f in fs:
            rel = os.path.relpath(os.path.join(p, f), r)
            # slurm logs, and the temp file of an atomic write the kill interrupted (never read)
            if not rel.startswith("slurm/") and ".tmp." not in f: out.append(rel)
    return sorted(out)
fa, fb = files(a), files(b)
assert fa == fb, sorted(set(fa) ^ set(fb))
timing = [re.compile(r'"seconds": ?[0-9.eE+-]+'), re.compile(r'"timing": \{[^}]*\}'),
          re.compile(r'"seconds_(total|per_pair)": ?[0-9.eE+-]+'),
          re.compile(r'^- time: [0-9.]+ s over all records, [0-9.]+ s per kept pair$', re.M),
          re.compile(r'"(records\.jsonl|results\.json)": "[0-9a-f]{64}"')]
def norm(t):
    for r in timing: t = r.sub("TIME", t)
    return t
n = 0
for f in fa:
    x, y = open(os.path.join(a, f), "rb").read(), open(os.path.join(b, f), "rb").read()
    if x == y: n += 1; continue
    assert norm(x.decode()) == norm(y.decode()), f + " differs beyond timing"
print(f"  {len(fa)} files equal ({n} byte for byte, the rest apart from timing)")
PYEOF
}
check cmp_trees "$C/s-straight" "$C/s"
# a changed checkpoint list is refused naming the key
write_ck_study "[\"$C/sig/step-000000\", \"$C/sig/step-001000\", \"$C/sig/step-002000\"]"
out=$($CLENS study "$C/study.json" --quiet 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "settings.models\[0\].checkpoints is" <<<"$out" || { echo "FAIL: changed checkpoints not refused: $rc $out"; fail=1; }
# malformed series and steps are refused naming the key
write_ck_study "[\"$C/nothing/step-*\"]"
out=$($CLENS study "$C/study.json" --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'models\[0\].checkpoints: ".*nothing/step-\*" matches no folder' <<<"$out" || { echo "FAIL: empty glob: $rc $out"; fail=1; }
write_ck_study "[\"$C/sig/step-001000\", \"$C/sig/step-000500\"]"
out=$($CLENS study "$C/study.json" --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'is not after .*step-001000 (step 1000); list them in training order' <<<"$out" || { echo "FAIL: step order: $rc $out"; fail=1; }
write_ck_study "[{\"path\": \"$C/A\", \"step\": 5}, {\"path\": \"$C/B\", \"step\": 9, \"stp\": 1}]"
out=$($CLENS study "$C/study.json" --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'unknown key models\[0\].checkpoints\[1\].stp' <<<"$out" || { echo "FAIL: checkpoint key: $rc $out"; fail=1; }
write_ck_study "[\"$C/sig/step-*\"]"
sed 's/"probe": {[^}]*},//' "$C/study.json" >"$C/nop.json"
out=$($CLENS study "$C/nop.json" --dry-run 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'steer: the direction is the model.s probe: add "probe": {} too' <<<"$out" || { echo "FAIL: steer without probe: $rc $out"; fail=1; }
write_ck_study "[\"$C/sig/step-*\"]"
# --shards 2, locally: the same dynamics, comparison and study.md
mv "$C/s" "$C/s-killed"
check $CLENS study "$C/study.json" --threads 1 --shards 2 --quiet
check $PY - "$C/s-straight" "$C/s" <<'PYEOF'
import sys
a, b = sys.argv[1:3]
for f in ("dynamics/planted/dynamics.json", "dynamics/planted/heatmap.svg", "comparison/comparison.md",
          "comparison/comparison.json", "study.md", "probes/B/probe.json", "steer/planted/steer.json"):
    assert open(f"{a}/{f}", "rb").read() == open(f"{b}/{f}", "rb").read(), f + " differs with --shards 2"
print("  --shards 2 (local): dynamics, comparison, study.md equal the unsharded study's")
PYEOF
echo "  6. checkpoints and steps: $(( $(date +%s) - t6 )) s"

echo "  72-study: $(( $(date +%s) - t0 )) s"
exit $fail
