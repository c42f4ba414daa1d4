#!/usr/bin/env bash
# 15-hostile: the red-team's hostile inputs that the reliability work fixed
# (issue 23 items 3, 6, 7, 8, 9), as data: tests/data/hostile/cases.tsv (CLI
# cases: exit code + message fragment, each under a timeout so a hang fails)
# and tests/data/hostile/templates.tsv (chat-template formatting edge cases
# rendered by both clens and Debian python3-jinja2, bytes compared). Inputs
# are written by tools/hostile_gen.py; FIFOs are made here. Also item 2's
# output checks in every command and the red-team categories rerun on the
# commands that landed after the report (capture, probe, transfer, lens,
# steer, dynamics, compare, train, organism, GGUF control vectors).
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/hostile
H=$T/h
rm -rf "$T"; mkdir -p "$T" "$H"
fail=0
$PY tools/hostile_gen.py --out "$H" --shared "$SHARED" || { echo "FAIL: hostile_gen.py"; exit 1; }

# FIFOs where a file is expected (open(2) of a FIFO without a writer blocks)
for d in fifo_st fifo_cfg fifo_idx fifo_gen; do cp -r "$H/m" "$H/$d"; done
rm "$H/fifo_st/model.safetensors" && mkfifo "$H/fifo_st/model.safetensors"
rm "$H/fifo_cfg/config.json" && mkfifo "$H/fifo_cfg/config.json"
mkfifo "$H/fifo_idx/model.safetensors.index.json"
mkfifo "$H/fifo_gen/generation_config.json"
mkdir -p "$H/fifo_tok" "$H/fifo_tcfg"
mkfifo "$H/fifo_tok/tokenizer.json"
cp "$SHARED/tokenizers/dolma2/tokenizer.json" "$H/fifo_tcfg/" && mkfifo "$H/fifo_tcfg/tokenizer_config.json"
mkfifo "$H/fifo.jinja" "$H/fifo_in"
mkdir -p "$H/tkdir/tokenizer.json"
cp -r "$SHARED/tokenizers/qwen2.5" "$H/vfifo" && chmod -R u+w "$H/vfifo" && rm "$H/vfifo/vocab.json" && mkfifo "$H/vfifo/vocab.json"
cp -r "$H/m" "$H/zero" && rm "$H/zero/model.safetensors" && ln -s /dev/zero "$H/zero/model.safetensors"
printf '{{ messages[0].content }}' >"$H/ok.jinja"
printf '{{ strftime_now("%%Y-%%m-%%d") }}' >"$H/now.jinja"
printf '{{ 1 // 0 }}' >"$H/runtime.jinja"
M=$T/msgs.json
printf '[{"role": "user", "content": "hi"}]' >"$M"

# Outputs and the commands that landed after the red-team report (issue 23
# item 2 leftovers and its rerun): R holds a small model with the organism
# tokenizer, planted pairs, a capture and a probe, plus broken copies.
R=$T/r
mkdir -p "$R"
"$CLENS" organism tokenizer --out "$R/tok" >/dev/null 2>&1 || { echo "FAIL: organism tokenizer"; exit 1; }
read -r BASE MARK < <($PY -c "import json,sys; v=json.load(open(sys.argv[1]))['model']['vocab']; print(v['6'], v['7'])" "$R/tok/tokenizer.json")
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 2 --hidden 64 --heads 4 --kv-heads 2 --intermediate 128 \
    --vocab 320 --untied --seed 5 --quiet --out "$R/a" || exit 1
cp "$R/tok/tokenizer.json" "$R/tok/tokenizer_config.json" "$R/a/"
$PY tools/plant_direction.py "$R/a" --base-token "$BASE" --marker-token "$MARK" --alpha 10 --seed 1 \
    --vector-out "$R/v.npy" --pairs-out "$R/pairs.jsonl" --n-pairs 8 >/dev/null || exit 1
"$CLENS" capture "$R/a" --pairs "$R/pairs.jsonl" --prompt raw --out "$R/cap" --quiet >/dev/null 2>&1 || { echo "FAIL: capture"; exit 1; }
"$CLENS" probe "$R/cap" --out "$R/pr" >/dev/null 2>&1 || { echo "FAIL: probe"; exit 1; }
$PY - "$R" <<'PYEOF' || exit 1
import glob, shutil, sys
import numpy as np
r = sys.argv[1]
np.save(f"{r}/vinf.npy", np.full(64, np.inf, np.float32))
np.save(f"{r}/rows.npy", np.ones((2, 64), np.float32))
np.save(f"{r}/rowsnan.npy", np.full((2, 64), np.nan, np.float32))
shutil.copytree(f"{r}/cap", f"{r}/cap_nan")
for f in glob.glob(f"{r}/cap_nan/*.npy"):
    a = np.load(f); a[...] = np.nan; np.save(f, a)
shutil.copytree(f"{r}/cap", f"{r}/cap_trunc")
f = sorted(glob.glob(f"{r}/cap_trunc/*.npy"))[0]
open(f, "r+b").truncate(150)
PYEOF
$PY tools/gguf_write_ref.py "$R/rowsnan.npy" "$R/cvnan.gguf" --alignment 64 >/dev/null || exit 1
$PY tools/gguf_write_ref.py "$R/rows.npy" "$R/cv.gguf" --alignment 64 >/dev/null || exit 1
head -c 200 "$R/cv.gguf" >"$R/cvtrunc.gguf"
: >"$R/empty.jsonl"
printf '[1, 2, 3]' >"$R/ids.json"
printf '{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=<<3+4=7>>7\\n#### 7"}\n' >"$R/gsm.jsonl"
mkfifo "$R/fifo"
ln -s "$R/ids.json" "$R/link.npy"
# a device node where an output goes (root only; a FIFO otherwise: the same refusal)
mknod "$R/dev" c 1 3 2>/dev/null || mkfifo "$R/dev"
mkdir -p "$R/withfifo" "$R/runfifo" "$R/withlink" "$R/fakerun"
mkfifo "$R/withfifo/x.npy" "$R/runfifo/records.jsonl"
ln -s "$R/ids.json" "$R/withlink/results.json"
printf '{}' >"$R/fakerun/results.json"
export CLENS H T M SHARED R

n=0
while IFS=$'\t' read -r want frag cmd; do
  case "$want" in ''|'#'*) continue ;; esac
  n=$((n+1))
  timeout 30 bash -c "$cmd" >"$T/out" 2>&1 </dev/null
  rc=$?
  if [ $rc -ne "$want" ] || { [ "$frag" != - ] && ! grep -qF -- "$frag" "$T/out"; }; then
    echo "FAIL: [$cmd] exit $rc (want $want), want '$frag' in: $(head -c 400 "$T/out")"
    fail=1
  fi
done < tests/data/hostile/cases.tsv
echo "  hostile: $n CLI cases"

# Chat-template formatting edge cases against jinja2.
mkdir -p "$T/tpl"
$PY - "$T/tpl" <<'PYEOF' || { echo "FAIL: jinja2 reference"; fail=1; }
import json, sys
from datetime import datetime, timezone
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
out = sys.argv[1]
NOW = 86400 * 365 + 3723
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
    x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env.globals["strftime_now"] = lambda f: datetime.fromtimestamp(NOW, timezone.utc).strftime(f)
k = 0
for line in open("tests/data/hostile/templates.tsv", encoding="utf-8"):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    mode, frag, src = line.split("\t", 2)
    k += 1
    open(f"{out}/{k}.jinja", "w", encoding="utf-8").write(src)
    open(f"{out}/{k}.mode", "w").write(mode + "\t" + frag)
    if mode != "ref":
        continue
    try:
        r = env.from_string(src).render(messages=[{"role": "user", "content": "hi"}]).encode("utf-8")
        open(f"{out}/{k}.ref", "wb").write(r)
    except Exception as e:
        open(f"{out}/{k}.referr", "w").write(f"{type(e).__name__}: {e}")
open(f"{out}/count", "w").write(str(k))
PYEOF
nt=$(cat "$T/tpl/count" 2>/dev/null || echo 0)
for k in $(seq 1 "$nt"); do
  IFS=$'\t' read -r mode frag <"$T/tpl/$k.mode"
  timeout 30 "$CLENS" chat "$T/tpl/$k.jinja" --messages "$M" --now $((86400 * 365 + 3723)) >"$T/tpl/$k.got" 2>"$T/tpl/$k.err"
  rc=$?
  src=$(head -c 120 "$T/tpl/$k.jinja")
  if [ "$mode" = err ]; then
    if [ $rc -ne 1 ] || ! grep -qF -- "$frag" "$T/tpl/$k.err"; then
      echo "FAIL: template $src: exit $rc (want 1 with '$frag'): $(head -c 300 "$T/tpl/$k.err")"; fail=1; fi
  elif [ -f "$T/tpl/$k.ref" ]; then
    if [ $rc -ne 0 ] || ! cmp -s "$T/tpl/$k.ref" "$T/tpl/$k.got"; then
      echo "FAIL: template $src: exit $rc, clens $(head -c 100 "$T/tpl/$k.got" | od -c | head -2) vs jinja2 $(head -c 100 "$T/tpl/$k.ref")"
      head -c 300 "$T/tpl/$k.err"; fail=1; fi
  elif [ $rc -ne 1 ]; then
    echo "FAIL: template $src: jinja2 fails ($(cat "$T/tpl/$k.referr")), clens exit $rc: $(head -c 100 "$T/tpl/$k.got")"; fail=1
  fi
done
echo "  hostile: $nt template cases against jinja2"
exit $fail
