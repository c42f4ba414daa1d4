# lib.sh: the scaffolding the suites share; each suite sources it
# (`. "$ROOT/tests/suites/lib.sh"`), tests/run.sh does not run it.
#   suite_begin NAME   cd $ROOT; a fresh T=$CLENS_TEST_TMP/NAME; fail=0; t0 = now (s)
#   check CMD...       runs CMD; a failure prints "FAIL: CMD" and sets fail=1
#   qwen_tokenizer DIR copies the Qwen2.5 tokenizer files (vocab, merges, config) into DIR
#   study_models       three random f32 models with tokenizers under $T: qwen2-4, qwen2-6
#                      (Qwen2, 4 / 6 layers) and olmo3-8 (OLMo-3, 8 layers, window 16)

suite_begin() {
  set -u
  cd "$ROOT" || exit 1
  T=$CLENS_TEST_TMP/$1
  rm -rf "$T"; mkdir -p "$T"
  fail=0
  t0=$(date +%s)
}

check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }

qwen_tokenizer() {
  cp "$SHARED/tokenizers/qwen2.5/vocab.json" "$SHARED/tokenizers/qwen2.5/merges.txt" \
     "$SHARED/tokenizers/qwen2.5/tokenizer_config.json" "$1/"
}

study_models() {
  $PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --vocab 151936 --seed 3 --quiet --out "$T/qwen2-4" || exit 1
  $PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 6 --vocab 151936 --seed 5 --quiet --out "$T/qwen2-6" || exit 1
  qwen_tokenizer "$T/qwen2-4"
  qwen_tokenizer "$T/qwen2-6"
  $PY tools/gen_model.py --arch olmo3 --dtype f32 --layers 8 --sliding-window 16 --vocab 100278 --seed 4 --quiet \
     --out "$T/olmo3-8" || exit 1
  cp "$SHARED/tokenizers/dolma2/tokenizer.json" "$T/olmo3-8/"
}

# switch_endpoints DIR N: the two end points of a planted switch (76-dynamics' construction, used
# by 72-study and 73-slurm too): in DIR, the organism tokenizer (tok/), N held-out traces and their
# pairs (pairs.jsonl), a random 4-layer Qwen2 (base/) with its MLPs off, layer 2's attention a copy
# of layer 0's and layers 1 and 3 moving nothing; A has layer 0's o_proj at layer 2, B at layer 0
# (tools/plant_transition.py interpolates between them).
switch_endpoints() {
  local d=$1 n=$2
  mkdir -p "$d"
  $CLENS organism tokenizer --out "$d/tok" 2>/dev/null || exit 1
  $CLENS organism traces --split heldout --seed 13 --n "$n" --out "$d/heldout.jsonl" 2>/dev/null || exit 1
  $CLENS pairs --data "$d/heldout.jsonl" --format gsm8k --out "$d/pairs.jsonl" >/dev/null || exit 1
  $PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --vocab 306 --seed 31 --quiet --out "$d/base" || exit 1
  cp "$d/tok/tokenizer.json" "$d/tok/tokenizer_config.json" "$d/base/"
  $PY - "$d" <<'PYEOF' || exit 1
import os, shutil, sys
sys.path.insert(0, "tools")
import st_file as pt
T = sys.argv[1]
W = {k: v.copy() for k, v in pt.read_f32(T + "/base/model.safetensors").items()}
for k in list(W):
    if "down_proj" in k:
        W[k] = W[k] * 0                                   # MLPs off
    if "model.layers.2.self_attn" in k or "model.layers.2.input_layernorm" in k:
        W[k] = W[k.replace("layers.2.", "layers.0.")].copy()   # layer 2's attention = layer 0's
    if "o_proj" in k and (".1." in k or ".3." in k):
        W[k] = W[k] * 0                                   # layers 1 and 3 move nothing
o = W["model.layers.0.self_attn.o_proj.weight"]
for name, on in (("A", 2), ("B", 0)):
    d = T + "/" + name
    os.makedirs(d)
    for f in os.listdir(T + "/base"):
        if f != "model.safetensors":
            shutil.copy(T + "/base/" + f, d)
    w = dict(W)
    for l in (0, 2):
        w["model.layers.%d.self_attn.o_proj.weight" % l] = o if l == on else o * 0
    pt.write_f32(d + "/model.safetensors", w)
PYEOF
}
