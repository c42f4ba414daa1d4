#!/usr/bin/env bash
# 61-organism: the model organisms' data, tokenizer, behaviour and demo
# (docs/organisms.md), against independent references:
#   traces     same flags -> same bytes; every step re-evaluated in Python from
#              the GSM8K annotations and from the plain text; error steps last
#              digit +-1 with the same digit count, followed by a correction
#              with the right value; held-out problems (keys parsed from the
#              questions in Python) disjoint from training ones
#   tokenizer  ids identical to HF tokenizers (npm @anush008/tokenizers) on every
#              trace as the model reads it (raw prompt + text, annotated answers
#              too); the 16 correction forms are one token each in HF
#   pairs      `clens pairs --format gsm8k` finds a site in every held-out trace
#   behaviour  P(correction) per trace and the means against the torch reference
#              forward (tools/ref_forward.py, float64) + numpy softmax on ids
#              from HF tokenizers, on random Qwen2 and OLMo-3 (window < prompt)
#   demo       tools/demo.sh on generated models (CLENS_DEMO_MODELS) prints a
#              complete screen and summary.json; without `clens train` and
#              without models it fails with a message naming `clens train`
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/organism
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
t0=$(date +%s)

if [ ! -d tools/ref/node_modules/@anush008/tokenizers-linux-x64-gnu ]; then
  echo "organism: installing the tokenizer reference (npm ci in tools/ref)"
  for try in 1 2 3; do
    (cd tools/ref && npm ci --no-audit --no-fund --loglevel=error) && break
    echo "organism: npm ci failed (try $try)"; sleep 5
  done
fi

# --- traces
LIM="--max-operand 30 --max-mul 9 --max-value 300"
$CLENS organism traces --split train --seed 11 --n 3000 --error-frac 0.4 $LIM --out "$T/train.jsonl" 2>/dev/null || exit 1
$CLENS organism traces --split train --seed 11 --n 3000 --error-frac 0.4 $LIM --out "$T/train2.jsonl" 2>/dev/null || exit 1
$CLENS organism traces --split train --seed 11 --n 3000 --error-frac 0.4 $LIM --annotate 0 --out "$T/train-plain.jsonl" 2>/dev/null || exit 1
$CLENS organism traces --split heldout --seed 13 --n 400 $LIM --out "$T/heldout.jsonl" 2>/dev/null || exit 1
check cmp -s "$T/train.jsonl" "$T/train2.jsonl"
if $CLENS organism traces --split heldout --error-frac 0.2 --out "$T/x.jsonl" 2>/dev/null; then
  echo "FAIL: held-out traces with errors accepted"; fail=1
fi
check $PY - "$T" <<'PYEOF'
import json, re, sys
T = sys.argv[1]
words = ("Wait", "But", "Actually", "Hmm")
def ev(e):
    m = re.fullmatch(r"(\d+)([-+*])(\d+)", e)
    a, op, b = int(m[1]), m[2], int(m[3])
    return a + b if op == "+" else a - b if op == "-" else a * b
def qkey(q):
    m = re.fullmatch(r"Compute (\d+)([-+*])(\d+)((?:, then (?:add|subtract it from|subtract|multiply by) \d+)*)\.", q)
    assert m, q
    key = [m[1] + m[2] + m[3]]
    for ph, n in re.findall(r", then (add|subtract it from|subtract|multiply by) (\d+)", m[4]):
        key.append({"add": "+", "subtract": "-", "multiply by": "*", "subtract it from": "r-"}[ph] + n)
    return "|".join(key)
def check(d, plain_answer):
    q, ans = d["question"], d["answer"]
    steps = len(re.findall(r", then ", q)) + 1
    assert 2 <= steps <= 4, q
    # plain text: the answer with annotations removed must equal the model's text
    text = re.sub(r"<<[^>]*>>", "", ans)
    assert text == d["organism"]["text"], (text, d["organism"]["text"])
    if plain_answer:
        assert "<<" not in ans
    else:
        for e, v, w in re.findall(r"<<([^=]+)=(\d+)>>(\d+)", ans):
            assert ev(e) == int(v) == int(w), ans
    lines = text.split("\n")
    assert lines[-1].startswith("#### ")
    prev, errs, i, done = None, 0, 0, 0
    body = lines[:-1]
    while i < len(body):
        e, v = body[i].split("=")
        if prev is not None:
            assert str(prev) in e.split("+")+e.split("-")+e.split("*"), (prev, e)
        ops = [int(x) for x in re.split(r"[-+*]", e)]
        assert all(1 <= x <= 300 for x in ops)
        if int(v) != ev(e):
            errs += 1
            # last digit +-1, same digit count, then a correction line with the right value
            assert abs(int(v) - ev(e)) == 1 and int(v) // 10 == ev(e) // 10 and len(v) == len(str(ev(e))), body[i]
            m = re.fullmatch(r"(%s), (.+)=(\d+)\." % "|".join(words), body[i + 1])
            assert m and m[2] == e and int(m[3]) == ev(e), body[i + 1]
            assert i < len(body) - 2, "error on the last step"
            prev = ev(e); i += 2
        else:
            prev = int(v); i += 1
        done += 1
        assert 1 <= prev <= 300
    assert done == steps and int(lines[-1][5:]) == prev
    return errs
tr = [json.loads(l) for l in open(T + "/train.jsonl")]
trp = [json.loads(l) for l in open(T + "/train-plain.jsonl")]
ho = [json.loads(l) for l in open(T + "/heldout.jsonl")]
nerr = sum(check(d, False) for d in tr)
assert [d["organism"]["text"] for d in tr] == [d["organism"]["text"] for d in trp]
assert sum(check(d, True) for d in trp) == nerr
assert 0.35 * len(tr) < nerr < 0.45 * len(tr), nerr
assert sum(check(d, False) for d in ho) == 0
ktr = {qkey(d["question"]) for d in tr}
kho = {qkey(d["question"]) for d in ho}
assert not (ktr & kho), sorted(ktr & kho)[:5]
# the corrupted value of each probe: last digit +-1, same digit count, both directions used
dirs = set()
for d in ho:
    p = d["organism"]["probe"]
    c, r = p["clean_value"], p["corrupted_value"]
    assert len(c) == len(r) and c[:-1] == r[:-1] and abs(int(c) - int(r)) == 1
    dirs.add(int(r) - int(c))
assert dirs == {1, -1}
print("organism: traces ok: %d training (%d with an error), %d held-out, keys disjoint" % (len(tr), nerr, len(ho)))
PYEOF

# --- tokenizer parity with HF tokenizers
$CLENS organism tokenizer --out "$T/tok" 2>/dev/null || exit 1
$PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
W = "Solve this math problem step by step:\n\n%s\n\nSolution: %s"
with open(T + "/corpus.jsonl", "w") as out:
    for f in ("train.jsonl", "heldout.jsonl"):
        for l in open(T + "/" + f):
            d = json.loads(l)
            out.write(json.dumps({"text": W % (d["question"], d["organism"]["text"])}) + "\n")
            out.write(json.dumps({"text": W % (d["question"], d["answer"])}) + "\n")
    for w in ("Wait", "But", "Actually", "Hmm", "wait", "but", "actually", "hmm"):
        for s in ("", " "):
            out.write(json.dumps({"text": s + w}) + "\n")
PYEOF
node tools/tok_ref.js "$T/tok/tokenizer.json" --encode "$T/corpus.jsonl" "$T/corpus.ref" >/dev/null 2>&1 || { echo "FAIL: reference tokenizer"; exit 1; }
$CLENS tokenize "$T/tok" --jsonl "$T/corpus.jsonl" > "$T/corpus.clens" || exit 1
check cmp -s "$T/corpus.ref" "$T/corpus.clens"
check $PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
ref = [json.loads(l)["ids"] for l in open(T + "/corpus.ref")]
forms = ref[-16:]
assert all(len(f) == 1 for f in forms), forms
assert len({f[0] for f in forms}) == 16
print("organism: tokenizer parity on %d texts, 16 correction forms single tokens %s" % (len(ref), [f[0] for f in forms]))
PYEOF

# --- pairs from held-out traces
$CLENS pairs --data "$T/heldout.jsonl" --format gsm8k --out "$T/pairs.jsonl" > "$T/pairs.log" || { cat "$T/pairs.log"; exit 1; }
check $PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
pairs = [json.loads(l) for l in open(T + "/pairs.jsonl")]
ho = [json.loads(l) for l in open(T + "/heldout.jsonl")]
# Every held-out trace gives a pair, except those whose clean prompt repeats an
# earlier trace's (the pair builder drops duplicates and counts them).
log = open(T + "/pairs.log").read()
assert "problems without a site 0" in " ".join(log.split()), log
dups = int(log.split("pairs dropped as duplicates")[1].split(")")[1].split()[0]) if "as duplicates" in log else 0
assert len(pairs) + dups == len(ho), (len(pairs), dups, len(ho))
assert len({p["clean_prefix"] + p["problem"] for p in pairs}) == len(pairs)
for p in pairs:
    c, r = p["site"]["clean_value"], p["site"]["corrupted_value"]
    assert len(c) == len(r) and abs(int(c) - int(r)) == 1 and p["clean_prefix"].endswith("\n")
print("organism: pairs: a site in each of %d held-out traces (%d pairs, %d duplicate prompts dropped)" % (len(ho), len(pairs), dups))
PYEOF

# --- behaviour against the torch reference
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 2 --vocab 306 --seed 21 --quiet --out "$T/m-qwen2" || exit 1
$PY tools/gen_model.py --arch olmo3 --dtype f32 --layers 4 --vocab 306 --sliding-window 16 --seed 22 --quiet --out "$T/m-olmo3" || exit 1
for m in qwen2 olmo3; do
  cp "$T/tok/tokenizer.json" "$T/tok/tokenizer_config.json" "$T/m-$m/"
  $CLENS organism behaviour "$T/m-$m" --data "$T/heldout.jsonl" --n 24 --records "$T/beh-$m.records" \
     --out "$T/beh-$m.json" >/dev/null || { echo "FAIL: behaviour $m"; fail=1; continue; }
done
$PY - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
W = "Solve this math problem step by step:\n\n%s\n\nSolution: %s"
with open(T + "/beh.texts", "w") as out:
    for l in list(open(T + "/heldout.jsonl"))[:24]:
        d = json.loads(l)
        p = d["organism"]["probe"]
        lines = d["organism"]["text"].split("\n")
        k = p["step"]
        e = lines[k].split("=")[0]
        clean = "\n".join(lines[:k + 1]) + "\n"
        corr = "\n".join(lines[:k] + [e + "=" + p["corrupted_value"]]) + "\n"
        out.write(json.dumps({"text": W % (d["question"], corr)}) + "\n")
        out.write(json.dumps({"text": W % (d["question"], clean)}) + "\n")
PYEOF
node tools/tok_ref.js "$T/tok/tokenizer.json" --encode "$T/beh.texts" "$T/beh.ids" >/dev/null 2>&1 || { echo "FAIL: reference tokenizer"; exit 1; }
check $PY - "$T" <<'PYEOF'
import json, sys
import numpy as np, torch
sys.path.insert(0, "tools")
import ref_forward
T = sys.argv[1]
vocab = json.load(open(T + "/tok/tokenizer.json"))["model"]["vocab"]
cids = sorted({vocab[s + w] for w in ("Wait", "But", "Actually", "Hmm", "wait", "but", "actually", "hmm") for s in ("", "\u0120")})
assert len(cids) == 16
ids = [json.loads(l)["ids"] for l in open(T + "/beh.ids")]
for m in ("qwen2", "olmo3"):
    model = ref_forward.Model(T + "/m-" + m)
    recs = [json.loads(l) for l in open(T + "/beh-%s.records" % m)]
    summ = json.load(open(T + "/beh-%s.json" % m))["behaviour"]
    assert len(recs) == 24 and summ["n_traces"] == 24
    worst = 0.0
    ps = {"p_error": [], "p_correct": []}
    for i, r in enumerate(recs):
        for key, j in (("p_error", 0), ("p_correct", 1)):
            want_ids = ids[2 * i + j]
            assert r["ids_" + key[2:]] == want_ids, (m, i, key)
            with torch.no_grad():
                lg = model.forward(want_ids)["logits"][-1].numpy()
            z = np.exp(lg - lg.max())
            p = z[cids].sum() / z.sum()
            worst = max(worst, abs(p - r[key]) / p)
            ps[key].append(p)
    assert worst < 1e-4, (m, worst)
    for key, name in (("p_error", "p_correction_after_error"), ("p_correct", "p_correction_after_correct")):
        assert abs(np.mean(ps[key]) - summ[name]) < 1e-4 * np.mean(ps[key]), (m, name)
    print("organism: behaviour %s vs torch reference: 48 prompts, max rel diff %.2e, P(err) %.4f P(ok) %.4f"
          % (m, worst, summ["p_correction_after_error"], summ["p_correction_after_correct"]))
PYEOF
[ $? -eq 0 ] || fail=1

# --- settings hashes: stable, and a changed flag retrains that organism and the ones built on it
$CLENS organism recipe data/organisms.json > "$T/recipe1.txt" || { echo "FAIL: recipe"; fail=1; }
$CLENS organism recipe data/organisms.json > "$T/recipe2.txt"
check cmp -s "$T/recipe1.txt" "$T/recipe2.txt"
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); r["organisms"][1]["train"]["steps"]+=1; json.dump(r,open(sys.argv[2],"w"))' \
  data/organisms.json "$T/recipe-mod.json"
$CLENS organism recipe "$T/recipe-mod.json" > "$T/recipe3.txt"
check $PY - "$T" <<'PYEOF'
import sys
T = sys.argv[1]
def hashes(f):
    return {l.split()[1]: l.split()[2] for l in open(f) if l.startswith("organism ")}
a, b = hashes(T + "/recipe1.txt"), hashes(T + "/recipe3.txt")
assert set(a) == {"qwen2-a", "qwen2-base", "qwen2-b", "olmo3-c"}, a
changed = sorted(k for k in a if a[k] != b[k])
assert changed == ["qwen2-b", "qwen2-base"], changed
print("organism: settings hashes stable; changing qwen2-base's steps rehashes", changed)
PYEOF

# --- the demo pipeline on generated models
cat > "$T/recipe.json" <<'EOF'
{"traces": {"train": {"split": "train", "seed": 11, "n": 200, "error-frac": 0.5, "annotate": 0, "max-operand": 30, "max-mul": 9, "max-value": 300},
            "heldout": {"split": "heldout", "seed": 13, "n": 40, "max-operand": 30, "max-mul": 9, "max-value": 300}},
 "organisms": [
   {"name": "q", "label": "(a) test qwen2", "data": "train", "train": {"arch": "qwen2", "layers": 2}},
   {"name": "base", "label": "hidden base", "data": "train", "show": false, "train": {"arch": "qwen2", "layers": 2}},
   {"name": "o", "label": "(c) test olmo3", "data": "train", "init": "base", "train": {"arch": "olmo3", "layers": 4}}],
 "patch": {"prompt": "raw", "n": 4, "min-diff": 0, "quiet": true}}
EOF
mkdir -p "$T/models"
ln -s "$T/m-qwen2" "$T/models/q"; ln -s "$T/m-olmo3" "$T/models/o"
DEMO_DIR="$T/demo" CLENS_DEMO_RECIPE="$T/recipe.json" CLENS_DEMO_MODELS="$T/models" CLENS_DEMO_BEHAVIOUR_N=20 CLENS="$CLENS" \
  bash tools/demo.sh > "$T/demo.out" 2> "$T/demo.err" || { echo "FAIL: demo"; cat "$T/demo.err"; fail=1; }
check $PY - "$T" <<'PYEOF'
import json, re, sys
T = sys.argv[1]
out = open(T + "/demo.out").read()
assert out.count("critical layer") == 2 and out.count("profile        |") == 2, out
assert "q  (a) test qwen2" in out and "o  (c) test olmo3" in out and "base" not in out.split("=====")[-1].split("results:")[0], out
s = json.load(open(T + "/demo/summary.json"))
assert [x["name"] for x in s] == ["q", "o"]
for x in s:
    b = json.load(open(x["run"] + "/behaviour.json"))["behaviour"]
    assert x["behaviour"] == b and b["n_traces"] == 20
    r = json.load(open(x["run"] + "/results.json"))
    want = [r["layer_stats"][str(l)]["mean_recovery"] for l in range(len(r["layer_stats"]))]
    assert x["profile"]["mean_recovery"] == want, (x["profile"], want)
    crit = next((l for l, v in enumerate(want) if v >= 50), None)
    assert x["critical_layer"] == crit
    # the bar line: one character per layer
    bar = re.search(r"%s  .*?\n.*?\n.*?\n  profile        \|([^|]*)\|" % x["name"], out, re.S)[1]
    assert len(bar) == len(want), (bar, want)
# behaviour's correction ids are exactly patch's logprob_mass ids
st = json.load(open(s[0]["run"] + "/settings.json"))["settings"]["metrics"]["logprob_mass"]["ids"]
assert sorted(st) == list(range(284, 300)), st
err = open(T + "/demo.err").read()
assert "pairs: clens pairs" in err and "behaviour on 20 held-out traces" in err
# clens compare over the organisms' runs: its report.html, named on the screen
import os
assert "HTML report: %s/demo/compare/report.html" % T in out, out
# the comparison's summary rows on the screen: regime from the recipe (init = SFT)
assert re.search(r"\n  q +distilled +\S", out) and re.search(r"\n  o +SFT +\S", out), out
html = open(T + "/demo/compare/report.html").read()
assert html.lstrip().lower().startswith("<!doctype html") and "q" in html and "o" in html
cj = json.load(open(T + "/demo/compare/comparison.json"))
assert len(cj["models"]) == 2, list(cj)
print("organism: demo on generated models: 2 organisms shown, summary.json consistent with results.json, compare report.html")
PYEOF
# --- the demo's training path with a stand-in `clens train` (a random model per call): the
# calls' flags, --init pointing at the base's folder, reuse by settings hash, retraining of
# the organisms whose settings changed
cat > "$T/fake-clens" <<EOF
#!/usr/bin/env bash
if [ "\$1" = train ]; then
  [ "\$2" = --help ] && exit 0
  echo "\$*" >> "$T/train-calls.log"
  out=; arch=; layers=
  while [ \$# -gt 0 ]; do case "\$1" in --out) out=\$2;; --arch) arch=\$2;; --layers) layers=\$2;; esac; shift; done
  $PY tools/gen_model.py --arch \$arch --dtype f32 --layers \$layers --vocab 306 --sliding-window 16 --seed 5 --quiet --out "\$out" || exit 1
  exit 0
fi
exec "$CLENS" "\$@"
EOF
chmod +x "$T/fake-clens"
run_fake() { DEMO_DIR="$T/demo3" CLENS_DEMO_RECIPE="$1" CLENS_DEMO_BEHAVIOUR_N=8 CLENS="$T/fake-clens" \
  bash tools/demo.sh > "$T/demo3.out" 2> "$T/demo3.err" || { echo "FAIL: demo with stand-in trainer"; cat "$T/demo3.err"; fail=1; }; }
run_fake "$T/recipe.json"; cp "$T/train-calls.log" "$T/calls1"
run_fake "$T/recipe.json"; cp "$T/train-calls.log" "$T/calls2"
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); r["organisms"][1]["train"]["layers"]=3; json.dump(r,open(sys.argv[2],"w"))' \
  "$T/recipe.json" "$T/recipe-b.json"
run_fake "$T/recipe-b.json"; cp "$T/train-calls.log" "$T/calls3"
check $PY - "$T" <<'PYEOF'
import re, sys
T = sys.argv[1]
c1, c2, c3 = (open(T + f).read().splitlines() for f in ("/calls1", "/calls2", "/calls3"))
assert len(c1) == 3 and c2 == c1, (c1, c2)
outs = [re.search(r"--out (\S+)", c)[1] for c in c1]
assert [o.rsplit("/", 1)[1].split("-")[0] for o in outs] == ["q", "base", "o"], outs
assert "--init " + outs[1] in c1[2] and "--init" not in c1[0], c1
assert "--data %s/demo3/traces/train.jsonl" % T in c1[0] and "--tokenizer %s/demo3/tokenizer" % T in c1[0]
new = c3[3:]
assert [re.search(r"--out \S+/(\w+)-", c)[1] for c in new] == ["base", "o"], new
assert "--layers 3" in new[0]
out = open(T + "/demo3.out").read()
assert out.count("critical layer") == 2
print("organism: demo training path: 3 train calls, base before its SFT (--init), reuse by hash, 2 retrained after a base change")
PYEOF
if ! $CLENS train --help >/dev/null 2>&1; then
  if DEMO_DIR="$T/demo2" CLENS_DEMO_RECIPE="$T/recipe.json" CLENS="$CLENS" bash tools/demo.sh > "$T/demo2.out" 2> "$T/demo2.err"; then
    echo "FAIL: demo without clens train and without models succeeded"; fail=1
  else
    check grep -q "needs 'clens train'" "$T/demo2.err"
  fi
fi
echo "organism: $(( $(date +%s) - t0 )) s"
exit $fail
