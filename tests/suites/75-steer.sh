#!/usr/bin/env bash
# 75-steer: `clens steer` and llama.cpp control vectors (docs/steer.md) on a
# planted model (tools/plant_steer.py: a Qwen2 f32 model whose weights make
# the correction words likely after a trigger token, through direction e_0):
#   planted    ablating e_0 at block 1 drives the planted effect (corrupted -
#              clean correction metric) to zero and the correction rate after
#              an error to 0; adding alpha*e_0 restores the behaviour on clean
#              prompts; random directions of the same norm do neither; the
#              token ban ("NoWait") gives rate 0; KL on neutral text ~ 0;
#              every pair metric equals an independent numpy computation of
#              the planted model from its safetensors
#   fast       --method fast == --method rerun at 1e-5 (per pair, every condition)
#   cvec       a control vector written by an independent struct-packed writer
#              (tools/gguf_write_ref.py: alignment 64, every value type) steers
#              exactly as the same rows from a .npy; `clens generate
#              --control-vector F:S` == steer's add samples; a layer range
#              outside the vector changes nothing
#   folder     a rerun with other settings is refused naming the key; the same
#              settings reuse steer.json; bad inputs exit 1 naming the file
set -u
cd "$ROOT"
. "$ROOT/tests/suites/lib.sh"
T=$CLENS_TEST_TMP/steer
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if "$@"; then :; else echo "FAIL: $*" >&2; fail=1; fi; }
t0=$(date +%s)

M=$T/planted
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 3 --vocab 151936 --untied --seed 5 --quiet --out "$M" || exit 1
qwen_tokenizer "$M"
# the correction ids: the single-token forms of the four words (docs/patch-output.md)
ids=""
for w in Wait But Actually Hmm; do
  for f in "$w" " $w" "${w,,}" " ${w,,}"; do
    o=$($CLENS tokenize "$M" --text "$f") || exit 1
    case "$o" in *,*|"") ;; *) ids="$ids,$o" ;; esac
  done
done
ids=${ids#,}
TRIG=$($CLENS tokenize "$M" --text "9")
$PY tools/plant_steer.py "$M" --trigger "$TRIG" --wait "$ids" || exit 1

$PY - "$T" <<'PYEOF'
import json, sys
import numpy as np
T = sys.argv[1]
with open(f"{T}/pairs.jsonl", "w") as f:
    for i, (a, b) in enumerate([(2, 6), (4, 4), (3, 5)]):
        pre = f"Tom has {a} + {b} = "
        f.write(json.dumps(dict(id=f"planted/{i}", source="planted", source_sha256="0" * 64,
            problem=f"Tom has {a} apples and buys {b} more. How many apples does he have?",
            clean_prefix=pre + "8 apples.", corrupted_prefix=pre + "9 apples.",
            site=dict(start=len(pre), end=len(pre) + 1, expr=f"{a} + {b}", clean_value="8", corrupted_value="9"),
            cut="line", corrupt="plus-one", seed=0)) + "\n")
with open(f"{T}/neutral.txt", "w") as f:
    f.write("The cat sat on the mat and looked at the birds outside.\n")
    f.write('{"text": "Rivers carry water from the mountains down to the sea."}\n')
with open(f"{T}/prompts.jsonl", "w") as f:
    f.write(json.dumps({"prompt": "So 3 + 5 = 8 apples.", "kind": "correct"}) + "\n")
    f.write(json.dumps({"prompt": "So 3 + 5 = 9 apples.", "kind": "error"}) + "\n")
v = np.zeros(64, np.float32); v[0] = 1
np.save(f"{T}/dir.npy", v)
rows = np.zeros((3, 64), np.float32); rows[2, 0] = 3.0; rows[1, 5] = 0.25
np.save(f"{T}/rows.npy", rows)
PYEOF

COMMON="--pairs $T/pairs.jsonl --max-new 3 --k 2 --random 2 --samples 2 --quiet"
check $CLENS steer "$M" --direction "$T/dir.npy" --layers 1 --mode ablate --alpha 0,1 --positions all $COMMON \
  --neutral "$T/neutral.txt" --out "$T/ablate" > "$T/ablate.out"
check $CLENS steer "$M" --direction "$T/dir.npy" --layers 1 --mode ablate --alpha 0,1 --positions last $COMMON \
  --out "$T/fast" >> "$T/steer.out"
check $CLENS steer "$M" --direction "$T/dir.npy" --layers 1 --mode ablate --alpha 0,1 --positions last $COMMON \
  --out "$T/rerun" --method rerun >> "$T/steer.out"
check $CLENS steer "$M" --direction "$T/dir.npy" --layers 1 --mode add --alpha 0,3 --positions last $COMMON \
  --out "$T/add" >> "$T/steer.out"
check grep -q "alpha" "$T/ablate.out"

# Pair prompts as the model reads them (raw prompt), for the numpy reference.
for i in 0 1 2; do
  for k in clean corrupted; do
    txt=$($PY -c 'import json,sys; p=[json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2])]
print("Solve this math problem step by step:\n\n" + p["problem"] + "\n\nSolution: " + p[sys.argv[3] + "_prefix"], end="")' \
      "$T/pairs.jsonl" $i $k)
    $CLENS tokenize "$M" --text "$txt" > "$T/ids-$i-$k.txt" || fail=1
  done
done

check $PY - "$T" "$M" "$ids" <<'PYEOF'
import json, sys
import numpy as np
T, M, wait = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
ab, fa, rr, ad = (json.load(open(f"{T}/{d}/steer.json")) for d in ("ablate", "fast", "rerun", "add"))

# numpy reference of the planted model (tools/plant_steer.py reference(): blocks 1.. and every
# MLP add nothing; block 0's attention is uniform and adds gain * mean_s(norm(x_s)[0]) to dim 0)
sys.path.insert(0, "tools")
from plant_steer import reference
resid, metric_r = reference(M, wait)
def metric(ids, edit=None):
    r = resid(ids)
    return metric_r(edit(r) if edit else r)
def ids(i, k): return [int(x) for x in open(f"{T}/ids-{i}-{k}.txt").read().strip().split(",")]
def abl(r): r = r.copy(); r[0] = 0; return r
def add3(r): r = r.copy(); r[0] += 3; return r
md = 0
for i, p in enumerate(ab["pairs"]["per_pair"]):
    v = p["values"]  # unsteered (clean, corr), direction a=0, a=1, random1 a=0, a=1, random2 ...
    ref = [metric(ids(i, "clean")), metric(ids(i, "corrupted"))]
    ref_abl = [metric(ids(i, "clean"), abl), metric(ids(i, "corrupted"), abl)]
    for got, want in ((v[0:2], ref), (v[2:4], ref), (v[4:6], ref_abl)):
        md = max(md, max(abs(g - w) for g, w in zip(got, want)))
    a = ad["pairs"]["per_pair"][i]["values"]
    md = max(md, abs(a[4] - metric(ids(i, "clean"), add3)))
assert md < 1e-4, f"clens vs numpy reference: {md}"

P = ab["pairs"]
eff0 = P["unsteered"]["corrupted"] - P["unsteered"]["clean"]
eff1 = P["direction"]["corrupted"][1] - P["direction"]["clean"][1]
effr = min(d["corrupted"][1] - d["clean"][1] for d in P["random_draws"])
assert eff0 > 8, eff0                       # the planted behaviour
assert abs(eff1) < 1e-4, eff1               # ablation removes it
assert effr > 0.9 * eff0, (effr, eff0)      # random directions do not
assert abs(P["direction"]["corrupted"][0] - P["unsteered"]["corrupted"]) < 1e-6  # alpha 0 = unsteered
G = ab["generation"]
assert G["unsteered"]["error"] == 1.0 and G["unsteered"]["correct"] == 0.0, G["unsteered"]
assert G["ban"]["error"] == 0.0, G["ban"]   # NoWait
assert G["direction"]["error"] == [1.0, 0.0], G["direction"]
assert G["random"]["error"] == [1.0, 1.0], G["random"]
N = ab["neutral"]
assert N["n_texts"] == 2 and N["direction"]["mean_kl"][1] < 1e-9 and N["direction"]["top1_agree"][1] == 1.0, N
# adding e_0 back restores the behaviour on clean prompts; random directions of the same norm do not
A = ad["pairs"]
assert A["direction"]["clean"][1] > -0.01, A["direction"]
assert A["random"]["clean"][1] < A["direction"]["clean"][1] - 2, A["random"]
# fast == rerun (R3: 1e-5)
dm = max(abs(x - y) for a, b in zip(fa["pairs"]["per_pair"], rr["pairs"]["per_pair"]) for x, y in zip(a["values"], b["values"]))
assert dm < 1e-5, dm
for d in ("ablate", "add"):
    s = json.load(open(f"{T}/{d}/settings.json"))
    assert len(s["settings_hash"]) == 64 and "provenance" in s
print(f"steer: planted effect {eff0:.2f} -> {eff1:.2g} ablated, random {effr:.2f}; numpy max diff {md:.2g}; fast vs rerun {dm:.2g}")
PYEOF
check test -s "$T/ablate/steer_pairs.svg"
check test -s "$T/ablate/steer_generation.svg"

# mean-ablate: the component along u moves to its mean over the clean prompts (at the last
# token) instead of 0. A direction with a non-zero clean mean (e0 + e1 + 0.5 e2), against the
# same numpy reference: mu = mean over clean prompts of r.u, r <- r - (r.u - mu) u.
$PY -c 'import numpy as np,sys; v=np.zeros(64,np.float32); v[0]=1; v[1]=1; v[2]=0.5; np.save(sys.argv[1], v)' "$T/dir2.npy"
check $CLENS steer "$M" --direction "$T/dir2.npy" --layers 1 --mode mean-ablate --alpha 0,1 --positions last $COMMON \
  --out "$T/mean" >> "$T/steer.out"
check $PY - "$T" "$M" "$ids" <<'PYEOF'
import json, sys
import numpy as np
T, M, wait = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
res = json.load(open(f"{T}/mean/steer.json"))
sys.path.insert(0, "tools")
from plant_steer import reference
resid, metric = reference(M, wait)
def ids(i, k): return [int(x) for x in open(f"{T}/ids-{i}-{k}.txt").read().strip().split(",")]
u = np.zeros(64); u[0] = 1; u[1] = 1; u[2] = 0.5; u /= np.linalg.norm(u)
pp = res["pairs"]["per_pair"]
mu = np.mean([resid(ids(i, "clean")) @ u for i in range(len(pp))])
assert abs(res["means"]["direction"][0] - mu) < 1e-5 * max(1, abs(mu)), (res["means"], mu)
assert abs(mu) > 0.1, mu  # not the plain ablation in disguise
md = 0
for i, p in enumerate(pp):
    for k, side in enumerate(("clean", "corrupted")):
        r = resid(ids(i, side)); want = metric(r - (r @ u - mu) * u)
        md = max(md, abs(p["values"][4 + k] - want), abs(p["values"][2 + k] - metric(r)))  # alpha 1; alpha 0 = unsteered
assert md < 1e-4, md
P = res["pairs"]; gap = P["direction"]["corrupted"][1] - P["direction"]["clean"][1]
print(f"steer mean-ablate: reference mean {mu:.4f} (clean prompts, last token) == numpy; metrics == numpy (max diff {md:.2g}); corrupted - clean {P['unsteered']['corrupted'] - P['unsteered']['clean']:.2f} -> {gap:.2g}")
PYEOF

# Control vectors: the independent writer's file == the same rows from a .npy.
check $PY tools/gguf_write_ref.py "$T/rows.npy" "$T/ref.gguf" --alignment 64 --extra-kv
CV="--mode add --alpha 1 --positions all --prompts $T/prompts.jsonl --max-new 4 --k 4 --random 0 --samples 2 --quiet"
check $CLENS steer "$M" --direction "$T/ref.gguf" $CV --pairs "$T/pairs.jsonl" --out "$T/cv-gguf" >> "$T/steer.out"
check $CLENS steer "$M" --direction "$T/rows.npy" $CV --pairs "$T/pairs.jsonl" --layers 1,2 --out "$T/cv-npy" >> "$T/steer.out"
check $CLENS steer "$M" --control-vector "$T/ref.gguf:1" $CV --out "$T/cv-flag" >> "$T/steer.out"
check $CLENS generate "$M" --text "So 3 + 5 = 8 apples." --max-new 4 --control-vector "$T/ref.gguf" > "$T/gen-cv.out"
check $CLENS generate "$M" --text "So 3 + 5 = 8 apples." --max-new 4 --control-vector "$T/ref.gguf:1" \
  --control-vector-layer-range 1 1 > "$T/gen-cv-l1.out"
check $CLENS generate "$M" --text "So 3 + 5 = 8 apples." --max-new 4 > "$T/gen.out"
check $PY - "$T" "$ids" <<'PYEOF'
import json, sys
T, wait = sys.argv[1], {int(x) for x in sys.argv[2].split(",")}
g, n, f = (json.load(open(f"{T}/{d}/steer.json")) for d in ("cv-gguf", "cv-npy", "cv-flag"))
assert g["layers"] == [1, 2] and n["layers"] == [1, 2], (g["layers"], n["layers"])
assert g["pairs"]["per_pair"] == n["pairs"]["per_pair"], "gguf and npy directions differ"
assert g["direction_norms"] == n["direction_norms"] == [0.25, 3.0], g["direction_norms"]
samp = lambda d, c: [s["ids"] for s in d["generation"]["samples"] if s["condition"] == c and s["kind"] == "correct"]
gen = lambda p: json.loads(open(p).read().splitlines()[0])["ids"]
cv, cv1, plain = gen(f"{T}/gen-cv.out"), gen(f"{T}/gen-cv-l1.out"), gen(f"{T}/gen.out")
assert samp(f, "direction alpha=1") == [cv], (samp(f, "direction alpha=1"), cv)
assert samp(f, "unsteered") == [plain]
assert wait & set(cv) and not wait & set(plain), (cv, plain)   # +3 e_0 at block 2 says Wait
assert not wait & set(cv1)                                   # range 1..1: only the small row 1
print("steer: control vector from the reference writer == .npy rows; generate --control-vector == steer add")
PYEOF

# probe.json contract (clens probe): "layers": [{"layer": L, "direction_npy": relative path}], other keys ignored.
mkdir -p "$T/probe"
cp "$T/dir.npy" "$T/probe/d1.npy"
echo '{"layers": [{"layer": 1, "direction_npy": "d1.npy", "auroc": 0.9}, {"layer": 3, "direction_npy": "none.npy"}], "other": 1}' \
  > "$T/probe/probe.json"
check $CLENS steer "$M" --direction "$T/probe/probe.json" --mode ablate --alpha 0,1 --positions last $COMMON --out "$T/probe-run" >> "$T/steer.out"
check $PY -c 'import json,sys; a,b=(json.load(open(sys.argv[i]+"/steer.json")) for i in (1,2)); assert a["layers"]==[1], a["layers"]; assert a["pairs"]["per_pair"]==b["pairs"]["per_pair"]' "$T/probe-run" "$T/fast"
# The probe.json `clens probe` really writes (clens-probe/1, docs/probe.md): the DoM direction is
# layers[].diff_of_means.file (the logistic weights, width + 1, are not a direction).
mkdir -p "$T/probe2/directions"
cp "$T/dir.npy" "$T/probe2/directions/blocks.1.hook_resid_pre.dom.npy"
echo '{"schema": "clens-probe/1", "layers": [{"hook": "blocks.-1.hook_embed", "layer": -1, "diff_of_means": {"file": "none.npy"}}, {"hook": "blocks.1.hook_resid_pre", "layer": 1, "width": 64, "diff_of_means": {"file": "directions/blocks.1.hook_resid_pre.dom.npy", "norm": 2.0, "auroc": 0.9}, "logreg": {"file": "directions/blocks.1.hook_resid_pre.lr.npy"}}]}' \
  > "$T/probe2/probe.json"
check $CLENS steer "$M" --direction "$T/probe2/probe.json" --mode ablate --alpha 0,1 --positions last $COMMON --out "$T/probe2-run" >> "$T/steer.out"
check $PY -c 'import json,sys; a,b=(json.load(open(sys.argv[i]+"/steer.json")) for i in (1,2)); assert a["layers"]==[1], a["layers"]; assert a["pairs"]["per_pair"]==b["pairs"]["per_pair"]' "$T/probe2-run" "$T/fast"

# A probe.json of `clens probe` with its default sites (docs/probe.md) also holds the final
# residual blocks.{L-1}.hook_resid_post under layer L-1: entries are read at their "depth"
# (resid_pre numbering), the activation they were found in: steering block 1 at resid_pre takes
# depth 1 (resid_pre 1's direction), at resid_post depth 2 (blocks.1.hook_resid_post's), and an
# entry off the residual stream (depth null) is skipped.
$PY -c 'import numpy as np,sys; np.save(sys.argv[1], np.random.default_rng(7).standard_normal(64).astype(np.float32))' "$T/probe2/directions/other.npy"
echo '{"schema": "clens-probe/1", "layers": [{"hook": "blocks.1.hook_resid_pre", "layer": 1, "depth": 1, "diff_of_means": {"file": "directions/blocks.1.hook_resid_pre.dom.npy"}}, {"hook": "blocks.1.hook_resid_post", "layer": 1, "depth": 2, "diff_of_means": {"file": "directions/other.npy"}}, {"hook": "blocks.1.hook_mlp_out", "layer": 1, "depth": null, "diff_of_means": {"file": "directions/other.npy"}}]}' \
  > "$T/probe2/probe-depth.json"
same_steer='import json,sys; a,b=(json.load(open(sys.argv[i]+"/steer.json")) for i in (1,2)); assert a["layers"]==[1], a["layers"]; assert a["pairs"]["per_pair"]==b["pairs"]["per_pair"], (sys.argv[1], sys.argv[2])'
for hook in resid_post resid_pre; do
  npy=$T/probe2/directions/other.npy; [ $hook = resid_pre ] && npy=$T/dir.npy
  check $CLENS steer "$M" --direction "$T/probe2/probe-depth.json" --layers 1 --hook $hook --mode ablate --alpha 0,1 --positions last $COMMON --out "$T/probe3-$hook" >> "$T/steer.out"
  check $CLENS steer "$M" --direction "$npy" --layers 1 --hook $hook --mode ablate --alpha 0,1 --positions last $COMMON --out "$T/npy3-$hook" >> "$T/steer.out"
  check $PY -c "$same_steer" "$T/probe3-$hook" "$T/npy3-$hook"
done

# kill -9 mid-run, rerun: steer.json and both curves byte-identical to an uninterrupted run's.
# Each finished pair, generation condition and neutral direction is a line of the journal
# (steer.partial.jsonl, fsync'd); 30 pairs (the 3 above under new ids) keep the run long enough.
$PY -c '
import json, sys
src = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for k in range(10):
        for p in src: f.write(json.dumps(dict(p, id=p["id"] + "-r%d" % k)) + "\n")' "$T/pairs.jsonl" "$T/pairs-many.jsonl"
KARGS=(--direction "$T/dir.npy" --layers 1 --mode ablate --alpha 0,1 --positions all --pairs "$T/pairs-many.jsonl"
       --max-new 3 --k 2 --random 2 --samples 2 --neutral "$T/neutral.txt" --threads 1)
check $CLENS steer "$M" "${KARGS[@]}" --quiet --out "$T/kfull" >/dev/null
$CLENS steer "$M" "${KARGS[@]}" --quiet --out "$T/killed" >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 2000); do
  [ -s "$T/killed/steer.partial.jsonl" ] && [ "$(wc -l < "$T/killed/steer.partial.jsonl")" -ge 4 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
kill -STOP $pid 2>/dev/null; alive=$?
n_before=$(($(wc -l < "$T/killed/steer.partial.jsonl" 2>/dev/null || echo 1) - 1))
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ $alive != 0 ] || [ -e "$T/killed/steer.json" ]; then echo "FAIL: the kill did not land mid-run"; fail=1; fi
$CLENS steer "$M" "${KARGS[@]}" --out "$T/killed" >/dev/null 2>"$T/resume.err"
check test $? -eq 0
check grep -q "steer: resuming: $n_before finished units" "$T/resume.err"
same=1
for f in steer.json steer_pairs.svg steer_generation.svg; do
  cmp -s "$T/kfull/$f" "$T/killed/$f" || { echo "FAIL: resumed steer differs: $f"; fail=1; same=0; }
done
check test ! -e "$T/killed/steer.partial.jsonl"
[ $same = 1 ] && echo "steer: kill -9 after $n_before of 44 units (30 pairs, 8 generation conditions, 6 neutral directions), resumed: steer.json and SVGs byte-identical"
# a journal whose input files changed since (same paths, other contents) is refused naming it
cp "$T/neutral.txt" "$T/neutral2.txt"
KARGS2=("${KARGS[@]/$T\/neutral.txt/$T/neutral2.txt}")
$CLENS steer "$M" "${KARGS2[@]}" --quiet --out "$T/kedit" >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 2000); do
  [ -s "$T/kedit/steer.partial.jsonl" ] && [ "$(wc -l < "$T/kedit/steer.partial.jsonl")" -ge 3 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -e "$T/kedit/steer.json" ]; then echo "FAIL: the kill did not land mid-run (edit)"; fail=1; fi
echo "A third neutral text." >> "$T/neutral2.txt"
$CLENS steer "$M" "${KARGS2[@]}" --quiet --out "$T/kedit" >/dev/null 2>"$T/kedit.err"
check test $? -eq 1
check grep -q "steer.partial.jsonl: the journal of other input files" "$T/kedit.err"
# a journal of other settings is refused naming the file
mkdir -p "$T/kforeign"; cp "$T/killed/settings.json" "$T/kforeign/"
echo '{"settings_hash":"0000"}' > "$T/kforeign/steer.partial.jsonl"
$CLENS steer "$M" "${KARGS[@]}" --quiet --out "$T/kforeign" >/dev/null 2>"$T/kforeign.err"
check test $? -eq 1
check grep -q "steer.partial.jsonl: the journal of other settings" "$T/kforeign.err"

# Folder rules and bad input.
$CLENS steer "$M" --direction "$T/dir.npy" --layers 1 --mode ablate --alpha 0,0.5 --positions last $COMMON \
  --out "$T/fast" 2> "$T/refuse.err" && { echo "FAIL: other settings accepted"; fail=1; }
check grep -q "holds a steer run with other settings: settings.alphas is" "$T/refuse.err"
check $CLENS steer "$M" --direction "$T/dir.npy" --layers 1 --mode ablate --alpha 0,1 --positions last $COMMON --out "$T/fast" >> "$T/steer.out"
head -c 100 "$T/ref.gguf" > "$T/cut.gguf"
$CLENS steer "$M" --direction "$T/cut.gguf" --neutral "$T/neutral.txt" --out "$T/bad1" 2> "$T/bad1.err"
check test $? -eq 1
check grep -q "cut.gguf" "$T/bad1.err"
$PY -c 'import numpy as np,sys; np.save(sys.argv[1], np.zeros(63, np.float32))' "$T/w63.npy"
$CLENS steer "$M" --direction "$T/w63.npy" --neutral "$T/neutral.txt" --out "$T/bad2" 2> "$T/bad2.err"
check test $? -eq 1
check grep -q "w63.npy: width 63" "$T/bad2.err"
$CLENS steer "$M" --direction "$T/dir.npy" --mode sideways --neutral "$T/neutral.txt" --out "$T/bad3" 2>/dev/null
check test $? -eq 2
# sampling with a control vector: the same seed draws the same tokens (the library's own check of
# draw-for-draw equality with clens_generate is tests/unit/test_steer.c)
g1=$($CLENS generate "$M" --text hi --control-vector "$T/ref.gguf" --temperature 0.8 --top-k 20 --seed 3 --max-new 8 2>/dev/null)
check test $? -eq 0
g2=$($CLENS generate "$M" --text hi --control-vector "$T/ref.gguf" --temperature 0.8 --top-k 20 --seed 3 --max-new 8 2>/dev/null)
check test "$g1" = "$g2"
check test -n "$g1"
# Organisms (trained by `make demo`; skipped when absent; docs/organism-results.md section 2). Per
# organism: held-out pairs of its own distribution (the recipe's trace flags), the difference-of-
# means direction of the final residual blocks.{L-1}.hook_resid_post (clens capture + probe: where
# the probe separates the classes, AUROC >= 0.98, and where patching places the decision), ablated
# at every position. Asserted at alpha = 1: P(correction | error) falls by >= 0.3 (absolute) below
# the unsteered rate while the mean of the random directions stays within 0.1 of it; on error-free
# traces the KL to the unsteered model is <= 0.6 nats a position and top-1 agreement >= 0.9.
ORG=${CLENS_ORGANISMS:-$ROOT/build/organisms/models}
org_dir() { for d in "$ORG/$1" "$ORG/$1"-*; do [ -f "$d/config.json" ] && [ -f "$d/tokenizer.json" ] && { echo "$d"; return; }; done; }
norgs=0
RECIPE="--min-steps 2 --max-steps 4 --max-operand 9 --max-mul 9 --max-value 30"
for n in qwen2-a qwen2-b olmo3-c; do
  d=$(org_dir $n); [ -n "$d" ] || continue
  if [ $norgs = 0 ]; then
    $CLENS organism traces --split heldout --seed 21 --n 200 $RECIPE --out "$T/org-heldout.jsonl" >/dev/null || fail=1
    $CLENS pairs --data "$T/org-heldout.jsonl" --format gsm8k --limit 40 --out "$T/org-pairs.jsonl" >/dev/null 2>&1 || fail=1
    $CLENS organism traces --split train --seed 12 --n 40 --error-frac 0 --annotate 0 $RECIPE --out "$T/org-clean.jsonl" >/dev/null || fail=1
    $PY -c "import json,sys; [print(json.dumps({'text': json.loads(l)['organism']['text']})) for l in open(sys.argv[1])]" "$T/org-clean.jsonl" > "$T/org-neutral.jsonl"
  fi
  norgs=$((norgs + 1))
  L=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['num_hidden_layers'] - 1)" "$d/config.json")
  check $CLENS capture "$d" --pairs "$T/org-pairs.jsonl" --prompt raw --sites blocks.-1.hook_resid_post --quiet --out "$T/org-cap-$n" >/dev/null
  check $CLENS probe "$T/org-cap-$n" --out "$T/org-probe-$n" --bootstrap 50 --permutations 2 --random-dirs 2 >/dev/null
  check $CLENS steer "$d" --direction "$T/org-probe-$n/directions/blocks.$L.hook_resid_post.dom.npy" --layers $L \
    --hook resid_post --mode ablate --alpha 0,1 --positions all --pairs "$T/org-pairs.jsonl" --neutral "$T/org-neutral.jsonl" \
    --random 2 --max-new 8 --k 8 --quiet --out "$T/org-steer-$n" >/dev/null
  check $PY - "$T/org-steer-$n/steer.json" "$n" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1])); n = sys.argv[2]
g, ne = s["generation"], s["neutral"]
u = g["unsteered"]["error"]
d1, r1 = g["direction"]["error"][1], g["random"]["error"][1]
kl, top1, rkl = ne["direction"]["mean_kl"][1], ne["direction"]["top1_agree"][1], ne["random"]["mean_kl"][1]
print(f"  organism {n}: ablate final residual, alpha 1: P(corr|error) {u:.2f} -> {d1:.2f} (random {r1:.2f}), "
      f"P(corr|correct) {g['unsteered']['correct']:.2f} -> {g['direction']['correct'][1]:.2f}; "
      f"KL error-free {kl:.3f} (random {rkl:.3f}), top-1 agree {top1:.3f}")
assert u >= 0.8 and d1 <= u - 0.3 and r1 >= u - 0.1, (u, d1, r1)
assert kl <= 0.6 and top1 >= 0.9, (kl, top1)
PYEOF
done
[ $norgs = 0 ] && echo "SKIP organism steering: no trained qwen2-a / qwen2-b / olmo3-c folder under $ORG (make demo; set CLENS_ORGANISMS)"
echo "steer: $(( $(date +%s) - t0 )) s"
exit $fail
