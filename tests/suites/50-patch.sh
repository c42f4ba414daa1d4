#!/usr/bin/env bash
# 50-patch: `clens patch` end to end on generated models carrying real
# tokenizers (Qwen2.5 files; dolma2 for OLMo-3) with pairs from `clens pairs`:
# results invariants, fast == rerun, a kill -9 that lands mid-run then resume
# == an uninterrupted run, a torn last line dropped on resume, a full disk
# mid-append (tmpfs, or a file-size limit) reported and resumable, 3 shards
# merged == 1 run (byte for byte apart from timings), a resume or merge with
# other settings or another setup (template, tokenizer, config, kernel path,
# --max-tokens, CLENS_KERNEL=avx512-bf16) refused naming the key, NaN weights
# giving non_finite drops and a results.json, bad input rejected.
set -u
cd "$ROOT"
. "$ROOT/tests/suites/lib.sh"
T=$CLENS_TEST_TMP/patch
umount "$T/disk" 2>/dev/null; rm -rf "$T"; mkdir -p "$T"
fail=0
t0=$(date +%s)

# Models: real vocabularies, tiny bodies, f32 so that fast vs rerun is exact.
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --vocab 151936 --seed 3 --quiet --out "$T/qwen2" || exit 1
qwen_tokenizer "$T/qwen2"
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
import subprocess
assert fast["clens_version"] == json.load(open(sys.argv[1] + "/settings.json"))["clens_version"], fast.get("clens_version")
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

# Resume after kill -9 equals an uninterrupted run. The kill must land
# mid-run: the process alive, fewer records than the full run, no results.json.
M=$T/qwen2
OPTS="--n 8 --min-diff 0 --sites resid_pre,mlp_out --quiet --method rerun"
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/full" $OPTS
n_full=$(wc -l < "$T/full/records.jsonl")
$CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/killed" $OPTS &
pid=$!
for i in $(seq 1 800); do
  [ -s "$T/killed/records.jsonl" ] && [ "$(wc -l < "$T/killed/records.jsonl")" -ge 2 ] && break
  sleep 0.025
done
kill -STOP $pid 2>/dev/null; alive=$?
n_before=$(wc -l < "$T/killed/records.jsonl" 2>/dev/null || echo 0)
[ -e "$T/killed/results.json" ] && had_results=1 || had_results=0
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ $alive -ne 0 ] || [ "$n_before" -ge "$n_full" ] || [ $had_results -ne 0 ]; then
  echo "FAIL: the kill did not land mid-run (alive: $((alive == 0)), $n_before of $n_full records, results.json: $had_results)"
  fail=1
fi
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/killed" $OPTS
echo "  kill -9 after $n_before of $n_full records, then resumed"
check [ "$(strip_timing "$T/full/results.json")" = "$(strip_timing "$T/killed/results.json")" ]
same_records() {
  $PY - "$1" "$2" <<'PYEOF'
import json, sys
def recs(d):
    out = []
    for l in open(d + "/records.jsonl"):
        if l.strip():
            r = json.loads(l); r.pop("seconds"); out.append(r)
    return out
a, b = recs(sys.argv[1]), recs(sys.argv[2])
assert a == b, f"{sys.argv[2]}: {len(b)} records differ from {sys.argv[1]}'s {len(a)}"
PYEOF
}
check same_records "$T/full" "$T/killed"

# A torn last line (a write cut by a kill or a crash) is dropped, said so, and the run resumes.
mkdir -p "$T/torn"
cp "$T/full/settings.json" "$T/torn/"
head -n 6 "$T/full/records.jsonl" > "$T/torn/records.jsonl"
sed -n 7p "$T/full/records.jsonl" | head -c 57 >> "$T/torn/records.jsonl"
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/torn" $OPTS 2>"$T/torn.err"
check grep -q "records.jsonl: dropped an unfinished last line (57 bytes)" "$T/torn.err"
check same_records "$T/full" "$T/torn"
check [ "$(strip_timing "$T/full/results.json")" = "$(strip_timing "$T/torn/results.json")" ]

# A full disk during a records append: the error says so (not a stale errno),
# the partial line is removed, and once there is space the run resumes to the
# same result. records.jsonl is padded with a blank line so that the next
# record crosses a page (tmpfs) or the file-size limit 100 bytes in.
pad_records() {  # FILE UNIT: pad FILE to a multiple of UNIT minus 100 bytes
  $PY - "$1" "$2" <<'PYEOF'
import os, sys
f, unit = sys.argv[1], int(sys.argv[2])
n = os.path.getsize(f)
pad = (unit - 100 - n) % unit or unit
open(f, "a").write(" " * (pad - 1) + "\n")
print((n + pad) // unit + 1)
PYEOF
}
check_whole_lines() {
  $PY - "$1" <<'PYEOF'
import json, sys
t = open(sys.argv[1]).read()
assert t.endswith("\n"), "records.jsonl ends in a torn line"
for l in t.splitlines():
    if l.strip(): json.loads(l)
PYEOF
}
D=$T/disk
mkdir -p "$D"
if mount -t tmpfs -o size=64k tmpfs "$D" 2>/dev/null; then
  mkdir "$D/run"; cp "$T/full/settings.json" "$D/run/"; head -n 5 "$T/full/records.jsonl" > "$D/run/records.jsonl"
  pad_records "$D/run/records.jsonl" 4096 >/dev/null
  dd if=/dev/zero of="$D/filler" bs=4096 2>/dev/null
  $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$D/run" $OPTS 2>"$T/full.err"
  check [ $? -eq 1 ]
  check grep -q "records.jsonl: append failed after 100 of .*No space left on device (the partial line was removed" "$T/full.err"
  check check_whole_lines "$D/run/records.jsonl"
  rm -f "$D/filler"
  check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$D/run" $OPTS
  check [ "$(strip_timing "$T/full/results.json")" = "$(strip_timing "$D/run/results.json")" ]
  umount "$D"
  echo "  full disk (64 KiB tmpfs) mid-append: $(head -c 160 "$T/full.err")"
else
  mkdir -p "$D/run"; cp "$T/full/settings.json" "$D/run/"; head -n 5 "$T/full/records.jsonl" > "$D/run/records.jsonl"
  kb=$(pad_records "$D/run/records.jsonl" 1024)
  (trap '' XFSZ; ulimit -f $((kb - 1)); exec $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$D/run" $OPTS) 2>"$T/full.err"
  check [ $? -eq 1 ]
  check grep -q "records.jsonl: append failed after 100 of .*File too large (the partial line was removed" "$T/full.err"
  check check_whole_lines "$D/run/records.jsonl"
  check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$D/run" $OPTS
  check [ "$(strip_timing "$T/full/results.json")" = "$(strip_timing "$D/run/results.json")" ]
  echo "  file-size limit mid-append (no tmpfs here): $(head -c 160 "$T/full.err")"
fi

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
check grep -q "holds a run with other settings: settings\." "$T/err.txt"

# A resume with another setup is refused, naming the key that differs.
refused() {  # KEY ENV... : resume $T/full with the environment/flags given, expect a refusal naming KEY
  local key=$1; shift
  env "$@" $CLENS patch "${MODEL:-$M}" --pairs "$T/pairs.jsonl" --out "$T/full" $OPTS $EXTRA 2>"$T/ref.err"
  local rc=$?
  if [ $rc -ne 1 ] || ! grep -q "other settings: $key is" "$T/ref.err"; then
    echo "FAIL: resume with $* $EXTRA: exit $rc, want 1 naming $key: $(head -2 "$T/ref.err")"; fail=1
  fi
}
EXTRA="--max-tokens 1000" refused settings.max_tokens
EXTRA=""
cp "$M/tokenizer_config.json" "$T/tc.bak"
$PY -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["chat_template"] += "{# changed #}"; json.dump(d, open(p, "w"))' "$M/tokenizer_config.json"
refused provenance.template_sha256
cp "$T/tc.bak" "$M/tokenizer_config.json"
cp "$M/merges.txt" "$T/merges.bak"; echo >> "$M/merges.txt"
refused provenance.tokenizer_sha256
cp "$T/merges.bak" "$M/merges.txt"
cp "$M/config.json" "$T/config.bak"
$PY -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["x_clens_test"] = 1; json.dump(d, open(p, "w"))' "$M/config.json"
refused provenance.config_sha256
cp "$T/config.bak" "$M/config.json"
kernel=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["provenance"]["kernel"])' "$T/full/settings.json")
if [ "$kernel" != portable ]; then refused provenance.kernel CLENS_KERNEL=portable
else echo "  (default kernel path is portable here: the kernel-path refusal is not exercised)"; fi
has_bf16=0; grep -qw avx512_bf16 /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && has_bf16=1
if [ $has_bf16 = 1 ]; then refused settings.matmul CLENS_KERNEL=avx512-bf16; fi
mkdir -p "$T/qcopy"; cp "$M"/* "$T/qcopy/"
MODEL=$T/qcopy refused settings.model
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/full" $OPTS   # unchanged setup: resumes (done)
echo "  resume refused naming settings.model, settings.max_tokens, provenance.{template,tokenizer,config}_sha256, provenance.kernel, settings.matmul"

# CLENS_KERNEL=avx512-bf16 rounds activations: the effective mode is in the settings (so in the hash).
SMALL="--n 1 --min-diff 0 --sites resid_pre --layers 0 --quiet --prompt raw"
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/k-default" $SMALL
CLENS_KERNEL=avx512-bf16 $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/k-bf16" $SMALL || { echo "FAIL: bf16 run"; fail=1; }
check $PY - "$T/k-default" "$T/k-bf16" $has_bf16 <<'PYEOF'
import json, sys
a, b = (json.load(open(d + "/settings.json")) for d in sys.argv[1:3])
if sys.argv[3] == "1":
    assert b["provenance"]["kernel"] == "avx512-bf16" and b["settings"]["matmul"] == "bf16", b["settings"]["matmul"]
    assert a["settings_hash"] != b["settings_hash"]
else:
    assert b["provenance"]["kernel"] != "avx512-bf16" and b["settings"]["matmul"] == "default"
assert a["settings"]["matmul"] == "default"
PYEOF

# Merge refuses shards of different setups, naming the key.
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/m0" --shard 0/2 $SMALL
if [ "$kernel" != portable ]; then
  check env CLENS_KERNEL=portable $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/m1k" --shard 1/2 $SMALL
  $CLENS merge "$T/m0" "$T/m1k" --out "$T/mk" -q 2>"$T/merge.err"
  check [ $? -eq 1 ]
  check grep -q "ran different setups: provenance.kernel differs" "$T/merge.err"
fi
check $CLENS patch "$M" --pairs "$T/pairs.jsonl" --out "$T/m1t" --shard 1/2 $SMALL --max-tokens 1000
$CLENS merge "$T/m0" "$T/m1t" --out "$T/mt" -q 2>"$T/merge.err"
check [ $? -eq 1 ]
check grep -q "different studies.*settings.max_tokens is" "$T/merge.err"

# NaN weights: every pair that runs the model is dropped as non_finite, and results.json is written.
mkdir -p "$T/qnan"
cp "$M"/*.json "$M"/merges.txt "$T/qnan/"
$PY - "$M/model.safetensors" "$T/qnan/model.safetensors" <<'PYEOF'
import json, struct, sys
src, dst = sys.argv[1:3]
b = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["model.norm.weight"]
assert t["dtype"] == "F32"
lo, hi = t["data_offsets"]
b[8 + n + lo:8 + n + lo + 4] = struct.pack("<f", float("nan"))
open(dst, "wb").write(b)
PYEOF
head -n 3 "$T/pairs.jsonl" > "$T/pairs3.jsonl"
check $CLENS patch "$T/qnan" --pairs "$T/pairs3.jsonl" --out "$T/nan" $SMALL
check $PY - "$T/nan" <<'PYEOF'
import json, sys
d = sys.argv[1]
res = json.load(open(d + "/results.json"))
recs = [json.loads(l) for l in open(d + "/records.jsonl")]
# The forward pass stops at the first NaN (CLENS_E_NONFINITE), so these
# records carry no metrics; every pair that reached the model is non_finite.
ran = [r for r in recs if r["reason"] not in ("length_mismatch", "final_token_mismatch", "too_long", "identical")]
assert len(recs) == 3 and ran, recs
assert all(r["status"] == "dropped" and r["reason"] == "non_finite" for r in ran), ran
assert res["n_pairs"] == 0 and res["counts"]["dropped"].get("non_finite") == len(ran), res["counts"]
print(f"  NaN weights: {len(ran)} of {len(recs)} pairs dropped as non_finite; results.json written")
PYEOF

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
$PY - "$T" <<'PYEOF'
import glob, json, sys
paths = ["portable", "avx2", "avx512", "avx512-bf16"]
ran = sorted({json.load(open(f))["provenance"]["kernel"] for f in glob.glob(sys.argv[1] + "/**/settings.json", recursive=True)})
flags = open("/proc/cpuinfo").read().split()
lacks = [p for p, need in (("avx2", ["avx2", "fma", "f16c"]), ("avx512", ["avx512f", "avx512bw", "avx512vl", "f16c"]),
                           ("avx512-bf16", ["avx512f", "avx512bw", "avx512vl", "avx512_bf16"]))
         if not all(f in flags for f in need)]
print(f"  kernel paths run: {', '.join(ran)}; not run (CPU lacks): {', '.join(lacks) or 'none'}; "
      f"not run (not selected): {', '.join(p for p in paths if p not in ran and p not in lacks) or 'none'}")
PYEOF
echo "50-patch: $(( $(date +%s) - t0 )) s"
exit $fail
