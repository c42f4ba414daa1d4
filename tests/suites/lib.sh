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
