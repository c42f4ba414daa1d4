#!/usr/bin/env bash
# 74-probe: clens capture / probe / transfer / lens on generated models with a direction planted
# THROUGH THE WEIGHTS (tools/plant_direction.py: the marker digit's embedding row = the base
# digit's row + alpha |row| v; corrupted prompts alone hold the marker). Checks, each against an
# independent computation:
#  - capture arrays == `clens activations` == the torch reference (tools/ref_forward.py), 1e-4;
#  - the difference-of-means direction has cosine >= 0.9 with v and AUROC >= 0.95 at every layer
#    at the error position; AUROC == 0.5 where the plant cannot be seen (final position, layer 0,
#    before any attention) and <= 0.6 on the unplanted control model;
#  - folds grouped by pair: no pair split across folds (from probe.json row_fold + index.json);
#  - the logistic probe (liblinear) == a numpy Newton fit of the same objective, |dw| <= 1e-3 max|w|;
#  - transfer, same width: A's direction on B (same v planted in another model) AUROC >= 0.95,
#    cosine >= 0.9; on the control model <= 0.6;
#  - transfer, other width: the ridge map W, c and held-out R^2 == numpy closed form (1e-3 rel);
#  - lens: top-k probabilities and correction log-mass == numpy (final norm + lm_head of the
#    captured residual), 1e-4; the last lens layer == the model's logits.
#  - the default sites are the residual stream at every depth (resid_pre 0..L: the last is
#    blocks.{L-1}.hook_resid_post), with its spellings blocks.-1.* and blocks.{L}.hook_resid_pre;
#  - organisms (when trained ones exist in $CLENS_ORGANISMS, default build/organisms/models):
#    AUROC >= 0.9 at the best depth, transfer qwen2-a -> qwen2-b and qwen2-a -> olmo3-c (below);
#    else SKIPPED with a message.
. "$ROOT/tests/suites/lib.sh"
suite_begin probe

$CLENS organism tokenizer --out "$T/tok" >/dev/null 2>&1 || exit 1
ids=$($PY -c "import json,sys; v=json.load(open(sys.argv[1]))['model']['vocab']; print(v['6'], v['7'])" "$T/tok/tokenizer.json")
set -- $ids; BASE=$1; MARK=$2
gen() { # name hidden seed
  $PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --hidden $2 --heads 4 --kv-heads 2 --intermediate 128 \
      --vocab 320 --untied --seed $3 --quiet --out "$T/$1" || exit 1
  cp "$T/tok/tokenizer.json" "$T/tok/tokenizer_config.json" "$T/$1/"
}
gen a 64 5; gen b 64 6; gen ctl 64 5; gen wide 96 7
$PY tools/plant_direction.py "$T/a" --base-token $BASE --marker-token $MARK --alpha 10 --seed 1 \
    --vector-out "$T/v.npy" --pairs-out "$T/pairs.jsonl" --n-pairs 40 || exit 1
$PY tools/plant_direction.py "$T/b" --base-token $BASE --marker-token $MARK --alpha 10 --seed 1 --vector-out "$T/vb.npy" || exit 1
$PY tools/plant_direction.py "$T/ctl" --base-token $BASE --marker-token $MARK --alpha 0 --seed 1 --vector-out "$T/v0.npy" || exit 1
$PY tools/plant_direction.py "$T/wide" --base-token $BASE --marker-token $MARK --alpha 10 --seed 2 --vector-out "$T/vw.npy" || exit 1

SITES=blocks.*.hook_resid_pre,blocks.3.hook_resid_post
for m in a b ctl wide; do
  check $CLENS capture "$T/$m" --pairs "$T/pairs.jsonl" --prompt raw --positions error --sites "$SITES" --quiet --out "$T/cap-$m" >/dev/null
done
check $CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --positions final --sites "$SITES" --quiet --out "$T/cap-a-final" >/dev/null
for c in a ctl a-final; do
  check $CLENS probe "$T/cap-$c" --out "$T/probe-$c" --bootstrap 200 --permutations 5 --random-dirs 5 >/dev/null
done

# --- capture == clens activations == torch reference
$PY - "$T" <<'PYEOF' > "$T/jobs.json" || fail=1
import json, sys
T = sys.argv[1]
ix = json.load(open(f"{T}/cap-a/index.json"))
jobs = []
for k, s in enumerate(ix["sequences"][:2]):
    json.dump(s["ids"], open(f"{T}/ids{k}.json", "w"))
    jobs.append({"model": f"{T}/a", "ids": s["ids"], "out": f"{T}/ref{k}"})
print(json.dumps(jobs))
PYEOF
for k in 0 1; do check $CLENS activations "$T/a" --ids-file "$T/ids$k.json" --hooks "$SITES" --out "$T/act$k" >/dev/null; done
check $PY tools/ref_forward.py --jobs "$T/jobs.json" --quiet --no-identities
check $PY - "$T" <<'PYEOF'
import json, sys
import numpy as np
T = sys.argv[1]
ix = json.load(open(f"{T}/cap-a/index.json"))
worst = 0.0
for k, s in enumerate(ix["sequences"][:2]):
    rows = [r for r in ix["rows"] if r["pair"] == s["pair"] and r["label"] == s["label"]]
    for f in ix["files"]:
        cap = np.load(f"{T}/cap-a/{f['file']}")
        act = np.load(f"{T}/act{k}/{f['file']}")
        ref = np.load(f"{T}/ref{k}/{f['file']}")
        for r in rows:
            assert r["token_id"] == s["ids"][r["position"]]
            a, b, c = cap[r["row"]], act[r["position"]], ref[r["position"]]
            worst = max(worst, float(np.abs(a - b).max()), float(np.abs(a - c).max()))
assert worst <= 1e-4, worst
# the error position, recomputed from the ids: the last index where clean and corrupted differ
seqs = {(s["pair"], s["label"]): s["ids"] for s in ix["sequences"]}
for r in ix["rows"]:
    c, k = seqs[(r["pair"], "clean")], seqs[(r["pair"], "corrupted")]
    assert r["position"] == max(t for t in range(len(c)) if c[t] != k[t]), r
print(f"capture == activations == torch reference: max |diff| {worst:.2e}; error positions checked")
PYEOF

# --- planted direction recovered; invisible where it cannot be seen; folds grouped; LR == numpy
check $PY - "$T" <<'PYEOF'
import json, sys
import numpy as np
T = sys.argv[1]
v = np.load(f"{T}/v.npy").astype(np.float64)
p = json.load(open(f"{T}/probe-a/probe.json"))
for l in p["layers"]:
    d = np.load(f"{T}/probe-a/{l['diff_of_means']['file']}").astype(np.float64)
    cos = float(d @ v / np.linalg.norm(d))
    assert abs(np.linalg.norm(d) - 1) < 1e-5, l["hook"]
    assert cos >= 0.9, (l["hook"], cos)
    assert l["diff_of_means"]["auroc"] >= 0.95 and l["logreg"]["auroc"] >= 0.95, l
    print(f"{l['hook']}: cos(dom, v) {cos:.3f}  AUROC dom {l['diff_of_means']['auroc']:.3f} lr {l['logreg']['auroc']:.3f}")
f_all = json.load(open(f"{T}/probe-a-final/probe.json"))["layers"]
f = f_all[0]
assert f["hook"] == "blocks.0.hook_resid_pre" and abs(f["logreg"]["auroc"] - 0.5) < 1e-9 and abs(f["diff_of_means"]["auroc"] - 0.5) < 1e-9, f
for l in json.load(open(f"{T}/probe-ctl/probe.json"))["layers"]:
    assert l["logreg"]["auroc"] <= 0.6 and l["diff_of_means"]["auroc"] <= 0.6, (l["hook"], l["logreg"]["auroc"])
print("unseen: final position layer 0 AUROC 0.5; control model <= 0.6 at every layer")
# at the final position the plant arrives through attention, weakly: the probe must beat its nulls there
for l in f_all[1:4]:
    assert l["logreg"]["auroc"] > l["permutation_null"]["p95"], (l["hook"], l["logreg"]["auroc"], l["permutation_null"])
    print(f"final position {l['hook']}: LR AUROC {l['logreg']['auroc']:.3f} > permutation-null p95 {l['permutation_null']['p95']:.3f}")
# folds never split a pair (the pairing read from index.json, not from the probe)
ix = json.load(open(f"{T}/cap-a/index.json"))
rf = p["folds"]["row_fold"]
assert len(rf) == len(ix["rows"])
fold_of = {}
for r in ix["rows"]:
    assert fold_of.setdefault(r["pair"], rf[r["row"]]) == rf[r["row"]], ("pair split", r["pair"])
sizes = np.bincount(list(fold_of.values()))
assert len(sizes) == p["folds"]["k"] and sizes.max() - sizes.min() <= 1, sizes
# the logistic probe against an independent numpy Newton fit of liblinear's objective
# min 0.5|w|^2 + C sum log(1 + exp(-y w.[x,1])), y = +1 corrupted / -1 clean, bias regularised
y = np.array([1.0 if r["y"] else -1.0 for r in ix["rows"]])
for l in p["layers"][:3]:
    X = np.load(f"{T}/cap-a/{l['hook']}.npy").astype(np.float64)
    Xt = np.hstack([X, np.ones((len(X), 1))])
    C = l["logreg"]["C"]
    w = np.zeros(Xt.shape[1])
    for it in range(100):
        z = y * (Xt @ w)
        s = 1 / (1 + np.exp(z))
        g = w - C * Xt.T @ (y * s)
        H = np.eye(len(w)) + C * (Xt.T * (s * (1 - s))) @ Xt
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-12: break
    wc = np.load(f"{T}/probe-a/{l['logreg']['file']}").astype(np.float64)
    err = np.abs(wc - w).max() / np.abs(w).max()
    assert err <= 1e-3, (l["hook"], err)
    print(f"{l['hook']}: liblinear vs numpy Newton, max |dw| / max |w| = {err:.1e}")
PYEOF

# --- transfer, same width
check $CLENS transfer --from "$T/probe-a" --to "$T/cap-b" --out "$T/tr-b" --bootstrap 200 --random-maps 5 >/dev/null
check $CLENS transfer --from "$T/probe-a" --to "$T/cap-ctl" --out "$T/tr-ctl" --bootstrap 200 --random-maps 5 >/dev/null
check $PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
b = json.load(open(f"{T}/tr-b/transfer.json"))
diag = [r for r in b["pairs"] if r["a_hook"] == r["b_hook"]]
assert len(diag) == 5, len(diag)
for r in diag:
    assert r["dom_auroc"] >= 0.95 and r["cosine"] >= 0.9, r
c = json.load(open(f"{T}/tr-ctl/transfer.json"))
for r in c["pairs"]:
    assert r["dom_auroc"] <= 0.6 and r["lr_auroc"] <= 0.6, r
print("same-width transfer: planted B AUROC >= 0.95, cos >= 0.9; control <= 0.6")
PYEOF

# --- transfer across widths through a ridge map fitted on neutral texts
$PY - "$T/neutral.jsonl" <<'PYEOF'
import json, random, sys
rng = random.Random(3)
with open(sys.argv[1], "w") as f:
    for i in range(40):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        f.write(json.dumps({"text": f"Then {a} and {b} make {a + b}, so we add {rng.randint(1, 99)} more."}) + "\n")
PYEOF
check $CLENS transfer --from "$T/probe-a" --to "$T/cap-wide" --map "$T/neutral.jsonl" --out "$T/tr-wide" --bootstrap 200 --random-maps 5 >/dev/null
check $PY - "$T" <<'PYEOF'
import json, sys
import numpy as np
T = sys.argv[1]
t = json.load(open(f"{T}/tr-wide/transfer.json"))
assert t["mode"] == "affine_map" and t["n_texts_aligned"] == t["n_texts"], t
for r in t["pairs"]:
    h = r["a_hook"]
    XA = np.load(f"{T}/tr-wide/maps/{h}.XA.npy").astype(np.float64)
    XB = np.load(f"{T}/tr-wide/maps/{h}.XB.npy").astype(np.float64)
    n = r["map_rows_train"]
    A, B = XA[:n], XB[:n]
    ma, mb = A.mean(0), B.mean(0)
    Ac, Bc = A - ma, B - mb
    W = np.linalg.solve(Ac.T @ Ac + r["lambda"] * np.eye(A.shape[1]), Ac.T @ Bc)
    c = mb - ma @ W
    Wc = np.load(f"{T}/tr-wide/maps/{h}.W.npy"); cc = np.load(f"{T}/tr-wide/maps/{h}.c.npy")
    ew = np.abs(Wc - W).max() / np.abs(W).max(); ec = np.abs(cc - c).max() / np.abs(c).max()
    P = XA[n:] @ W + c
    r2 = 1 - ((XB[n:] - P) ** 2).sum() / ((XB[n:] - XB[n:].mean(0)) ** 2).sum()
    assert ew <= 1e-3 and ec <= 1e-3 and abs(r2 - r["r2_heldout"]) <= 1e-4, (h, ew, ec, r2, r["r2_heldout"])
    print(f"{h} -> {r['b_hook']}: W, c rel err {ew:.1e} {ec:.1e}; R2 {r2:.4f}; AUROC {r['dom_auroc']:.3f} vs random-map p95 {r['random_map_p95']:.3f}")
PYEOF

# --- logit lens against numpy
check $CLENS lens "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --limit 1 --top-k 5 --out "$T/lens" >/dev/null
check $CLENS activations "$T/a" --ids-file "$T/ids0.json" --hooks blocks.0.hook_resid_pre --out "$T/act-lens" >/dev/null
check $PY - "$T" <<'PYEOF'
import json, struct, sys
import numpy as np
T = sys.argv[1]
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
W = tensors(f"{T}/a/model.safetensors"); cfg = json.load(open(f"{T}/a/config.json"))
g, U, eps = W["model.norm.weight"].astype(np.float64), W["lm_head.weight"].astype(np.float64), cfg["rms_norm_eps"]
lens = json.load(open(f"{T}/lens/lens.json"))
corr = lens["correction_tokens"]["ids"]
ix = json.load(open(f"{T}/cap-a-final/index.json"))
worst = 0.0
for si, seq in enumerate(lens["sequences"][:2]):
    row = si  # cap-a-final rows: pair 0 clean (0), pair 0 corrupted (1)
    assert ix["rows"][row]["label"] == seq["label"] and ix["rows"][row]["position"] == seq["positions"][0]
    nl = lens["n_layers"]
    assert [L["layer"] for L in seq["layers"]] == list(range(nl + 1))
    for L in seq["layers"]:
        # the residual the lens must read at this layer, named independently of the lens output
        l = L["layer"]
        name = f"blocks.{l}.hook_resid_pre" if l < nl else f"blocks.{nl - 1}.hook_resid_post"
        x = np.load(f"{T}/cap-a-final/{name}.npy")[row].astype(np.float64)
        z = (x / np.sqrt((x * x).mean() + eps) * g) @ U.T
        lp = z - z.max() - np.log(np.exp(z - z.max()).sum())
        top = np.argsort(-z, kind="stable")[:5]
        got = L["rows"][0]
        assert [t["id"] for t in got["top"]] == list(top), (name, [t["id"] for t in got["top"]], list(top))
        worst = max(worst, max(abs(t["prob"] - np.exp(lp[t["id"]])) for t in got["top"]))
        worst = max(worst, abs(got["correction_logprob"] - np.log(np.exp(lp[corr]).sum())))
    # the last lens layer is the model's own logits (rulings R3)
    if si == 0:
        lg = np.load(f"{T}/act-lens/logits.npy")[seq["positions"][0]].astype(np.float64)
        lpm = lg - lg.max() - np.log(np.exp(lg - lg.max()).sum())
        last = seq["layers"][-1]["rows"][0]
        worst = max(worst, max(abs(t["prob"] - np.exp(lpm[t["id"]])) for t in last["top"]))
assert worst <= 1e-4, worst
print(f"lens == numpy (final norm + lm_head of the captured residual): max |diff| {worst:.2e}")
PYEOF

# --- default sites: the residual stream at every depth, resid_pre 0..L (issue 17: a probe that
# never sees the output of the last block misses where a small model decides); the spellings
# of the final residual give the same array as blocks.3.hook_resid_post
check $CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --positions final --quiet --out "$T/cap-default" >/dev/null
check $CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --positions final --sites blocks.4.hook_resid_pre --quiet --out "$T/cap-l4" >/dev/null
check $CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --positions final --sites blocks.-1.hook_resid_post,blocks.-4.hook_resid_pre --quiet --out "$T/cap-neg" >/dev/null
# short names, as `clens patch --sites` spells them: every layer of the point
check $CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --positions final --sites resid_pre,mlp_out,ln_final --quiet --out "$T/cap-short" >/dev/null
check $PY - "$T" <<'PYEOF'
import json, sys
import numpy as np
T = sys.argv[1]
got = [f["hook"] for f in json.load(open(f"{T}/cap-short/index.json"))["files"]]
want = [f"blocks.{l}.hook_resid_pre" for l in range(4)] + [f"blocks.{l}.hook_mlp_out" for l in range(4)] + ["ln_final.hook_normalized"]
assert got == want, got
for l in range(4):
    assert np.array_equal(np.load(f"{T}/cap-short/blocks.{l}.hook_resid_pre.npy"), np.load(f"{T}/cap-a-final/blocks.{l}.hook_resid_pre.npy")), l
print("short site names: resid_pre,mlp_out,ln_final = every layer's blocks.L.hook_resid_pre, hook_mlp_out, ln_final")
PYEOF
check $PY - "$T" <<'PYEOF'
import json, sys
import numpy as np
T = sys.argv[1]
ix = json.load(open(f"{T}/cap-default/index.json"))
hooks = [(f["hook"], f["depth"]) for f in ix["files"]]
assert hooks == [(f"blocks.{l}.hook_resid_pre", l) for l in range(4)] + [("blocks.3.hook_resid_post", 4)], hooks
ref = np.load(f"{T}/cap-a-final/blocks.3.hook_resid_post.npy")
for d, names in (("cap-default", [h for h, _ in hooks]), ("cap-l4", ["blocks.3.hook_resid_post"]),
                 ("cap-neg", ["blocks.3.hook_resid_post", "blocks.0.hook_resid_pre"])):
    got = [f["hook"] for f in json.load(open(f"{T}/{d}/index.json"))["files"]]
    assert got == names, (d, got)
    assert np.array_equal(np.load(f"{T}/{d}/blocks.3.hook_resid_post.npy"), ref), d
p = json.load(open(f"{T}/probe-a-final/probe.json"))
assert [l["depth"] for l in p["layers"]] == [0, 1, 2, 3, 4], [l["depth"] for l in p["layers"]]
print("default sites = resid_pre 0..3 + blocks.3.hook_resid_post (depth 4); blocks.4.hook_resid_pre and blocks.-1.* resolve to it")
PYEOF
for bad in blocks.5.hook_resid_pre blocks.-5.hook_resid_post blocks.4.hook_mlp_out; do
  $CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --sites $bad --quiet --out "$T/cap-bad-$bad" >/dev/null 2>"$T/errs.txt"
  [ $? = 1 ] && grep -q "unknown hook" "$T/errs.txt" || { echo "FAIL: --sites $bad must be refused"; fail=1; }
done

# --- kill -9 mid-capture, rerun: the files of an uninterrupted capture, byte for byte. Each
# pair is committed to a journal (capture.partial.*) as it is done; 600 pairs (the 40 above
# under new ids) x every hook x every position keep the run long enough for the kill to land.
$PY - "$T/pairs.jsonl" "$T/pairs-many.jsonl" <<'PYEOF'
import json, sys
src = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for k in range(15):
        for p in src:
            f.write(json.dumps(dict(p, id=f"{p['id']}-r{k}")) + "\n")
PYEOF
CAPK=(--pairs "$T/pairs-many.jsonl" --prompt raw --positions all --sites all --threads 1 --quiet)
check $CLENS capture "$T/a" "${CAPK[@]}" --out "$T/cap-full" >/dev/null
$CLENS capture "$T/a" "${CAPK[@]}" --out "$T/cap-killed" >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 2000); do
  [ -s "$T/cap-killed/capture.partial.jsonl" ] && [ "$(wc -l < "$T/cap-killed/capture.partial.jsonl")" -ge 3 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
kill -STOP $pid 2>/dev/null; alive=$?
n_before=$(wc -l < "$T/cap-killed/capture.partial.jsonl" 2>/dev/null || echo 0)
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ $alive != 0 ] || [ -e "$T/cap-killed/index.json" ]; then
  echo "FAIL: the kill did not land mid-capture ($n_before of 600 pairs committed)"; fail=1
fi
# a journal line edited after the fact (a token id) no longer matches the pair's rendering: refused
cp -r "$T/cap-killed" "$T/cap-tamper"
sed -i '1s/"ids":\[\[[0-9]*/"ids":[[99999/' "$T/cap-tamper/capture.partial.jsonl"
$CLENS capture "$T/a" "${CAPK[@]}" --out "$T/cap-tamper" >/dev/null 2>"$T/err6.txt"
[ $? = 1 ] && grep -q "capture.partial.jsonl:1: pair '.*' does not render as the journal says" "$T/err6.txt" || { echo "FAIL: edited journal"; cat "$T/err6.txt"; fail=1; }
# a torn last line (a kill inside write()) is cut and that pair runs again
printf '{"i": 99999, "pair": "torn' >> "$T/cap-killed/capture.partial.jsonl"
$CLENS capture "$T/a" --pairs "$T/pairs-many.jsonl" --prompt raw --positions all --sites all --threads 1 \
    --out "$T/cap-killed" >/dev/null 2>"$T/resume.txt"
[ $? = 0 ] && grep -q "resuming from the journal" "$T/resume.txt" || { echo "FAIL: capture did not resume"; cat "$T/resume.txt"; fail=1; }
same=1
for f in "$T"/cap-full/*.npy "$T/cap-full/index.json"; do
  cmp -s "$f" "$T/cap-killed/$(basename "$f")" || { echo "FAIL: resumed capture differs: $(basename "$f")"; fail=1; same=0; }
done
ls "$T/cap-killed" | grep -q partial && { echo "FAIL: the journal outlived index.json"; fail=1; }
[ $same = 1 ] && echo "  capture: kill -9 after $n_before of 600 pairs, resumed: every array and index.json byte-identical"
# a finished folder is left alone; a journal of other pairs is refused naming the file
$CLENS capture "$T/a" "${CAPK[@]}" --out "$T/cap-killed" | grep -q "nothing recomputed" || { echo "FAIL: finished capture recomputed"; fail=1; }
cp -r "$T/cap-killed" "$T/cap-foreign"; rm "$T/cap-foreign/index.json"
printf '{"i":0,"pair":"someone-else","drop":"x"}\n' > "$T/cap-foreign/capture.partial.jsonl"
$CLENS capture "$T/a" "${CAPK[@]}" --out "$T/cap-foreign" >/dev/null 2>"$T/err5.txt"
[ $? = 1 ] && grep -q "capture.partial.jsonl:1: not the journal of this capture" "$T/err5.txt" || { echo "FAIL: foreign journal"; cat "$T/err5.txt"; fail=1; }

# --- refusals and usage
$CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt raw --positions final --sites "$SITES" --quiet --out "$T/cap-a" >/dev/null 2>"$T/err.txt"
[ $? = 1 ] && grep -q "holds a result with other settings: settings.positions is" "$T/err.txt" || { echo "FAIL: rerun with other settings not refused naming the key"; fail=1; }
$CLENS capture "$T/a" --pairs "$T/pairs.jsonl" --prompt chat --out "$T/x" >/dev/null 2>&1; [ $? = 1 ] || { echo "FAIL: --prompt chat without a template must exit 1"; fail=1; }
$CLENS probe "$T/cap-a" --out "$T/x2" --folds 1 >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: --folds 1 must be a usage error"; fail=1; }
$CLENS transfer --from "$T/probe-a" --to "$T/cap-wide" --out "$T/x3" >/dev/null 2>"$T/err3.txt"; [ $? = 1 ] && grep -q -- "--map" "$T/err3.txt" || { echo "FAIL: different widths without --map"; fail=1; }
# a truncated array is an error naming the file
cp -r "$T/cap-a" "$T/cap-bad"; head -c 500 "$T/cap-a/blocks.1.hook_resid_pre.npy" > "$T/cap-bad/blocks.1.hook_resid_pre.npy"
$CLENS probe "$T/cap-bad" --out "$T/x4" >/dev/null 2>"$T/err4.txt"; [ $? = 1 ] && grep -q "blocks.1.hook_resid_pre.npy" "$T/err4.txt" || { echo "FAIL: truncated .npy"; fail=1; }
for c in capture probe transfer lens; do $CLENS $c --help | grep -q "example:" || { echo "FAIL: $c --help"; fail=1; }; done

# --- organisms (trained by `make demo`; skipped when absent). The organisms' own data
# distribution (the recipe's trace flags, data/organisms.json: operands <= 9, results <= 30);
# held-out problems (seed 21, not the demo's 13) for the probe pairs; training traces, half of
# them with a wrong step and its correction line, for the transfer map's texts (disjoint from
# the held-out problems by construction; a map fitted on error-free text alone never sees the
# states that separate the classes, docs/organism-results.md). Each check:
#  - per organism, LR AUROC >= 0.9 at the best depth of the default sites (resid_pre 0..L, the
#    last = the output of the last block), above the permutation null there;
#  - qwen2-a -> qwen2-b (same width): direct transfer reported (two independently trained models
#    share no basis); through a ridge map fitted on the texts, the final residual's transferred
#    DoM AUROC is above its random-map p95;
#  - qwen2-a -> olmo3-c (widths 64 -> 48): the map is fitted (held-out R^2 >= 0.2 at every layer
#    pair, measured 0.39-0.63 beyond the embedding) and the transferred AUROC printed beside its
#    random-map null; it is not asserted above it (measured: it is not, docs/organism-results.md).
ORG=${CLENS_ORGANISMS:-$ROOT/build/organisms/models}
org_dir() { for d in "$ORG/$1" "$ORG/$1"-*; do [ -f "$d/config.json" ] && [ -f "$d/tokenizer.json" ] && { echo "$d"; return; }; done; }
OA=$(org_dir qwen2-a); OB=$(org_dir qwen2-b); OC=$(org_dir olmo3-c)
if [ -z "$OA$OB$OC" ]; then
  echo "SKIP organism probes: no trained qwen2-a / qwen2-b / olmo3-c folder under $ORG (make demo trains them; set CLENS_ORGANISMS)"
else
  RECIPE="--min-steps 2 --max-steps 4 --max-operand 9 --max-mul 9 --max-value 30"
  $CLENS organism traces --split heldout --seed 21 --n 400 $RECIPE --out "$T/org-traces.jsonl" >/dev/null || fail=1
  $CLENS pairs --data "$T/org-traces.jsonl" --format gsm8k --limit 100 --out "$T/org-pairs.jsonl" >/dev/null 2>&1 || fail=1
  $CLENS organism traces --split train --seed 11 --n 200 --error-frac 0.5 --annotate 0 $RECIPE --out "$T/org-train.jsonl" >/dev/null || fail=1
  $PY -c "import json,sys; [print(json.dumps({'text': json.loads(l)['organism']['text']})) for l in open(sys.argv[1])]" "$T/org-train.jsonl" > "$T/org-maptexts.jsonl"
  for e in qwen2-a=$OA qwen2-b=$OB olmo3-c=$OC; do
    n=${e%%=*}; d=${e#*=}
    [ -n "$d" ] || continue
    check $CLENS capture "$d" --pairs "$T/org-pairs.jsonl" --prompt raw --positions final --quiet --out "$T/org-cap-$n" >/dev/null
    check $CLENS probe "$T/org-cap-$n" --out "$T/org-probe-$n" --bootstrap 200 --permutations 5 --random-dirs 5 >/dev/null
    check $PY - "$T/org-probe-$n/probe.json" "$n" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
L = p["n_layers"]
assert [l["depth"] for l in p["layers"]] == list(range(L + 1)), [l["hook"] for l in p["layers"]]
assert p["layers"][-1]["hook"] == f"blocks.{L - 1}.hook_resid_post", p["layers"][-1]["hook"]
prof = " ".join("%.3f" % l["logreg"]["auroc"] for l in p["layers"])
best = max(p["layers"], key=lambda l: l["logreg"]["auroc"])
print(f"{sys.argv[2]}: LR AUROC by depth 0..{L}: {prof}; best {best['hook']} {best['logreg']['auroc']:.3f} "
      f"(permutation-null p95 {best['permutation_null']['p95']:.3f})")
assert best["logreg"]["auroc"] >= 0.9 and best["logreg"]["auroc"] > best["permutation_null"]["p95"], best
PYEOF
  done
  if [ -n "$OA" ] && [ -n "$OB" ]; then
    check $CLENS transfer --from "$T/org-probe-qwen2-a" --to "$T/org-cap-qwen2-b" --out "$T/org-tr-ab" --bootstrap 200 --random-maps 10 >/dev/null
    check $CLENS transfer --from "$T/org-probe-qwen2-a" --to "$T/org-cap-qwen2-b" --map "$T/org-maptexts.jsonl" --out "$T/org-tr-ab-map" --bootstrap 200 --random-maps 10 >/dev/null
    check $PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
d = json.load(open(f"{T}/org-tr-ab/transfer.json"))
fin = [r for r in d["pairs"] if r["a_hook"] == r["b_hook"] == "blocks.3.hook_resid_post"][0]
print(f"qwen2-a -> qwen2-b direct, final residual: DoM AUROC {fin['dom_auroc']:.3f} vs random-direction p95 "
      f"{fin['random_direction_p95']:.3f}, cos(dA, dB) {fin['cosine']:.3f}")
m = json.load(open(f"{T}/org-tr-ab-map/transfer.json"))
fin = [r for r in m["pairs"] if r["a_hook"] == "blocks.3.hook_resid_post"][0]
print(f"qwen2-a -> qwen2-b mapped, final residual: R2 {fin['r2_heldout']:.3f}, DoM AUROC {fin['dom_auroc']:.3f} "
      f"vs random-map p95 {fin['random_map_p95']:.3f}")
assert m["mode"] == "affine_map" and fin["dom_auroc"] > fin["random_map_p95"], fin
PYEOF
  fi
  if [ -n "$OA" ] && [ -n "$OC" ]; then
    check $CLENS transfer --from "$T/org-probe-qwen2-a" --to "$T/org-cap-olmo3-c" --map "$T/org-maptexts.jsonl" --out "$T/org-tr-ac" --bootstrap 200 --random-maps 10 >/dev/null
    check $PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
m = json.load(open(f"{T}/org-tr-ac/transfer.json"))
for r in m["pairs"]:
    print(f"qwen2-a -> olmo3-c {r['a_hook']} -> {r['b_hook']}: R2 {r['r2_heldout']:.3f}, DoM AUROC {r['dom_auroc']:.3f} "
          f"vs random-map p95 {r['random_map_p95']:.3f}")
fin = [r for r in m["pairs"] if r["a_hook"] == "blocks.3.hook_resid_post"][0]
assert m["width_a"] == 64 and m["width_b"] == 48 and fin["b_hook"] == "blocks.5.hook_resid_post", fin
assert all(r["r2_heldout"] is not None and r["r2_heldout"] >= 0.2 for r in m["pairs"]), m["pairs"]
PYEOF
  fi
fi

echo "74-probe: $(( $(date +%s) - t0 )) s"
exit $fail
