#!/usr/bin/env bash
# 50-patch: `clens patch` end to end on generated models carrying real
# tokenizers (Qwen2.5 files; dolma2 for OLMo-3) with pairs from `clens pairs`:
# results invariants, fast == rerun, resume after kill -9 == an uninterrupted
# run, 3 shards merged == 1 run (byte for byte apart from timings), settings
# mismatch refused, bad input rejected.
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/patch
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
t0=$(date +%s)

# Models: real vocabularies, tiny bodies, f32 so that fast vs rerun is exact.
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --vocab 151936 --seed 3 --quiet --out "$T/qwen2" || exit 1
cp "$SHARED/tokenizers/qwen2.5/vocab.json" "$SHARED/tokenizers/qwen2.5/merges.txt" \
   "$SHARED/tokenizers/qwen2.5/tokenizer_config.json" "$T/qwen2/"
$PY tools/gen_model.py --arch olmo3 --dtype f32 --layers 4 --sliding-window 16 --vocab 100278 --seed 4 --quiet \
   --out "$T/olmo3" || exit 1
cp "$SHARED/tokenizers/dolma2/tokenizer.json" "$T/olmo3/"

$CLENS pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 40 --out "$T/pairs.jsonl" >/dev/null || exit 1
$CLENS pairs --data "$SHARED/data/math_algebra/test.jsonl" --format math --limit 20 --out "$T/pairs-math.jsonl" >/dev/null || exit 1

strip_timing() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("timing",None); print(json.dumps(d,sort_keys=True))' "$1"; }

for m in qwen2 olmo3; do
  M=$T/$m
  # qwen2: the default chat prompt (Qwen2.5's template); olmo3 (dolma2 tokenizer.json only): raw
  OPTS="--n 6 --min-diff 0 --sites resid_pre,attn_out,z --quiet"
  [ $m = olmo3 ] && OPTS="$OPTS --prompt raw"
  check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/$m-fast" $OPTS
  check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/$m-rerun" $OPTS --method rerun
  # invariants and fast == rerun
  check $PY - "$T/$m-fast" "$T/$m-rerun" <<'PYEOF'
import json, sys
fast, rerun = (json.load(open(d + "/results.json")) for d in sys.argv[1:3])
L = max(int(k) for k in fast["layer_stats"])
last = fast["layer_stats"][str(L)]
assert last["mean_recovery"] == 100.0 and last["median"] == 100.0, last
assert fast["n_pairs"] == 6, fast["n_pairs"]
def recs(d):
    return [json.loads(l) for l in open(d + "/records.jsonl")]
fr, rr = recs(sys.argv[1]), recs(sys.argv[2])
assert [r["candidate"] for r in fr] == [r["candidate"] for r in rr]
md = 0.0
for a, b in zip(fr, rr):
    for met in ("logprob_mass", "logit_mean"):
        if "metrics" not in a: continue
        x, y = a["metrics"][met], b["metrics"][met]
        md = max(md, abs(x["clean"] - y["clean"]), abs(x["corr"] - y["corr"]))
        for st, vals in x.get("patched", {}).items():
            flat = lambda v: [u for w in v for u in (w if isinstance(w, list) else [w])]
            for u, w in zip(flat(vals), flat(y["patched"][st])):
                md = max(md, abs(u - w))
print(f"  fast vs rerun: {len(fr)} records, max |diff| = {md:.3g}; resid_pre after the last block = {last['mean_recovery']}%")
assert md <= 1e-5
PYEOF
done

# Resume after kill -9 equals an uninterrupted run.
M=$T/qwen2
OPTS="--n 8 --min-diff 0 --sites resid_pre,mlp_out --quiet --method rerun"
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/full" $OPTS
$CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/killed" $OPTS &
pid=$!
for i in $(seq 1 200); do
  [ -s "$T/killed/records.jsonl" ] && [ "$(wc -l < "$T/killed/records.jsonl")" -ge 2 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
n_before=$(wc -l < "$T/killed/records.jsonl" 2>/dev/null || echo 0)
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/killed" $OPTS
echo "  kill -9 after $n_before records, then resumed"
check [ "$(strip_timing "$T/full/results.json")" = "$(strip_timing "$T/killed/results.json")" ]

# Three shards merged equal one run.
for i in 0 1 2; do
  check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/shard$i" --shard $i/3 $OPTS
done
check $CLENS merge "$T/shard0" "$T/shard1" "$T/shard2" --out "$T/merged" -q
check [ "$(strip_timing "$T/full/results.json")" = "$(strip_timing "$T/merged/results.json")" ]
echo "  3 shards merged == 1 run"

# A rerun with other settings into the same folder is refused.
$CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/full" --n 9 --min-diff 0 --quiet 2>"$T/err.txt"
rc=$?
check [ $rc -eq 1 ]
check grep -q "different settings" "$T/err.txt"

# MATH pairs, default metric and filter (random models rarely pass it): runs to exhaustion cleanly.
check $CLENS patch "$T/olmo3" --pairs "$T/pairs-math.jsonl" --out "$T/math" --quiet --n 3 --prompt raw
# Chat prompt on a model without a template: a clear error.
$CLENS patch "$T/olmo3" --pairs "$T/pairs.jsonl" --out "$T/chat" --prompt chat --quiet 2>"$T/err2.txt"
check [ $? -eq 1 ]
check grep -q "chat" "$T/err2.txt"
# Bad input.
printf '{"id": 1}\n' > "$T/bad.jsonl"
$CLENS patch "$M" --pairs "$T/bad.jsonl" --out "$T/bad" --quiet 2>"$T/err3.txt"
check [ $? -eq 1 ]
check grep -q "bad.jsonl:1" "$T/err3.txt"
echo "50-patch: $(( $(date +%s) - t0 )) s"
exit $fail
