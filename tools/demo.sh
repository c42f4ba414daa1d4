#!/usr/bin/env bash
# make demo: the study on clens's own model organisms, end to end
# (docs/organisms.md). Needs only build/clens (the Makefile installs the build
# packages and builds it first; no torch, no npm).
#   1. the organism tokenizer and the traces of the recipe (data/organisms.json)
#   2. the organisms, trained by `clens train` into $DEMO_DIR/models/NAME-HASH12,
#      or reused when a folder with the same settings hash is complete
#   3. pairs from the held-out traces (`clens pairs --format gsm8k`)
#   4. per organism shown: `clens patch --prompt raw` and the behaviour rates
#   5. one screen: behaviour, recovery bar line, critical layer, where results are
# Environment:
#   DEMO_DIR            output folder (default build/organisms)
#   CLENS               the clens binary (default build/clens)
#   CLENS_DEMO_RECIPE   recipe file (default data/organisms.json)
#   CLENS_DEMO_MODELS   folder of pre-made organisms DIR/NAME (HF folders): no training
#   CLENS_DEMO_PATCH_ARGS   replace the recipe's `clens patch` flags
#   CLENS_DEMO_BEHAVIOUR_N  held-out traces for the behaviour (default 500)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLENS=${CLENS:-build/clens}
case "$CLENS" in /*) ;; *) CLENS="$ROOT/$CLENS" ;; esac
RECIPE=${CLENS_DEMO_RECIPE:-data/organisms.json}
D=${DEMO_DIR:-build/organisms}
BEH_N=${CLENS_DEMO_BEHAVIOUR_N:-500}
T0=$(date +%s)
say() { printf 'demo [%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

[ -x "$CLENS" ] || die "$CLENS not found: run 'make demo' (it builds it) or set CLENS"
mkdir -p "$D/traces" "$D/models" "$D/runs"

say "tokenizer -> $D/tokenizer"
"$CLENS" organism tokenizer --out "$D/tokenizer" 2>/dev/null

"$CLENS" organism recipe "$RECIPE" > "$D/recipe.txt" || die "cannot read the recipe $RECIPE"

# --- traces (cheap and deterministic: rewritten only when their flags change)
while read -r kind name flags; do
  [ "$kind" = traces ] || continue
  out="$D/traces/$name.jsonl"
  if [ -f "$out" ] && [ "$(cat "$out.flags" 2>/dev/null)" = "$flags" ]; then
    say "traces $name: up to date ($out)"
  else
    say "traces $name: clens organism traces $flags"
    # shellcheck disable=SC2086
    "$CLENS" organism traces $flags --out "$out" 2>/dev/null
    echo "$flags" > "$out.flags"
  fi
done < "$D/recipe.txt"
[ -f "$D/traces/heldout.jsonl" ] || die "$RECIPE has no 'heldout' traces"

# --- organisms
declare -A MODEL HASH SHOW LABEL INIT
ORDER=()
train_flags() { awk -v n="$1" '$1 == "train" && $2 == n { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$D/recipe.txt"; }
while read -r kind name hash data init show label; do
  [ "$kind" = organism ] || continue
  ORDER+=("$name"); INIT[$name]=$init; HASH[$name]=$hash; SHOW[$name]=$show; LABEL[$name]=$label
  if [ -n "${CLENS_DEMO_MODELS:-}" ]; then
    m="$CLENS_DEMO_MODELS/$name"
    if [ "$show" != 1 ] && [ ! -f "$m/config.json" ]; then say "organism $name: not shown, skipped"; continue; fi
    [ -f "$m/config.json" ] || die "CLENS_DEMO_MODELS: $m/config.json not found (one HF folder per organism name)"
    say "organism $name: pre-made $m (CLENS_DEMO_MODELS; not trained)"
    MODEL[$name]=$m
    continue
  fi
  m="$D/models/$name-${hash:0:12}"
  MODEL[$name]=$m
  if [ -f "$m/config.json" ] && [ "$(cat "$m/clens-organism-hash" 2>/dev/null)" = "$hash" ]; then
    say "organism $name: trained, settings hash matches (${hash:0:12}); reusing $m"
    continue
  fi
  if ! "$CLENS" train --help >/dev/null 2>&1; then
    die "organism $name needs 'clens train' (issue 15 item 3), which this build of clens does not have.
  To run the rest of the demo on pre-made organisms, set CLENS_DEMO_MODELS=DIR with one Hugging Face
  folder per organism (DIR/$name, ...) using the tokenizer in $D/tokenizer."
  fi
  args=(--data "$D/traces/$data.jsonl" --tokenizer "$D/tokenizer" --out "$m")
  if [ "$init" != - ]; then
    [ -n "${MODEL[$init]:-}" ] || die "organism $name: its base $init must come earlier in $RECIPE"
    args+=(--init "${MODEL[$init]}")
  fi
  flags=$(train_flags "$name")
  say "organism $name: training (${label}): clens train ${args[*]} $flags"
  # shellcheck disable=SC2086
  "$CLENS" train "${args[@]}" $flags || die "clens train failed for organism $name (rerun 'make demo' to resume)"
  [ -f "$m/config.json" ] || die "clens train wrote no $m/config.json"
  [ -f "$m/tokenizer.json" ] || cp "$D/tokenizer/tokenizer.json" "$D/tokenizer/tokenizer_config.json" "$m/"
  echo "$hash" > "$m/clens-organism-hash"
done < "$D/recipe.txt"

# --- pairs from held-out traces
say "pairs: clens pairs --data $D/traces/heldout.jsonl --format gsm8k"
"$CLENS" pairs --data "$D/traces/heldout.jsonl" --format gsm8k --out "$D/pairs.jsonl" >/dev/null

PATCH_FLAGS=${CLENS_DEMO_PATCH_ARGS:-$(awk '$1 == "patch" { $1 = ""; sub(/^ +/, ""); print }' "$D/recipe.txt")}
case " $PATCH_FLAGS " in *" --prompt "*) ;; *) PATCH_FLAGS="$PATCH_FLAGS --prompt raw" ;; esac

# --- study per organism shown
SUMMARIES=()
for name in "${ORDER[@]}"; do
  [ "${SHOW[$name]}" = 1 ] || continue
  m=${MODEL[$name]}
  if [ -n "${CLENS_DEMO_MODELS:-}" ]; then run="$D/runs/$name-premade"; rm -rf "$run"
  else run="$D/runs/$name-${HASH[$name]:0:12}"; fi
  say "organism $name: clens patch $PATCH_FLAGS -> $run"
  # shellcheck disable=SC2086
  "$CLENS" patch "$m" --pairs "$D/pairs.jsonl" --out "$run" $PATCH_FLAGS >/dev/null \
    || die "clens patch failed for organism $name"
  say "organism $name: behaviour on $BEH_N held-out traces"
  "$CLENS" organism behaviour "$m" --data "$D/traces/heldout.jsonl" --n "$BEH_N" --out "$run/behaviour.json" >/dev/null \
    || die "clens organism behaviour failed for organism $name"
  SUMMARIES+=("$name|$run")
done

# --- comparison of the organisms' profiles (docs/compare.md): report.html
CMP="$D/compare"
cmp_args=()
for s in "${SUMMARIES[@]}"; do
  name=${s%%|*}; run=${s#*|}
  training=distilled
  [ "${INIT[$name]}" != - ] && training=SFT
  cmp_args+=("$run" --label "$run=$name" --training "$run=$training")
done
say "compare: clens compare (${#SUMMARIES[@]} organisms) -> $CMP"
rm -rf "$CMP"
"$CLENS" compare "${cmp_args[@]}" --out "$CMP" --quiet || die "clens compare failed"

# --- one screen
{
  echo
  echo "================================ clens model organisms ================================"
  echo "recipe $RECIPE, held-out traces $D/traces/heldout.jsonl, pairs $D/pairs.jsonl"
  echo
  parts=()
  for s in "${SUMMARIES[@]}"; do
    name=${s%%|*}; run=${s#*|}
    "$CLENS" organism summary --name "$name" --label "${LABEL[$name]}" --run "$run" \
      --behaviour "$run/behaviour.json" --json "$run/summary.json"
    parts+=("$run/summary.json")
    echo
  done
  # summary.json: every organism's block (behaviour beside its profile, rulings R4)
  { echo "["; first=1; for p in "${parts[@]}"; do [ $first = 1 ] || echo ","; first=0; cat "$p"; done; echo "]"; } \
    > "$D/summary.json.tmp" && mv "$D/summary.json.tmp" "$D/summary.json"
  echo "results: $D/summary.json (all organisms); per organism: results.json, results.md, records.jsonl,"
  echo "behaviour.json in $D/runs/NAME-HASH12; organisms in ${CLENS_DEMO_MODELS:-$D/models}"
  # the comparison's summary table (profile label by docs/compare.md's rule, critical layer
  # with its CI, main jump), as comparison.md writes it
  echo "profiles compared (clens compare; label rule: docs/compare.md):"
  awk '/^## Summary/ { on = 1; next } on && /^## / { exit } on && /^\|/ && !/^\|---/' "$CMP/comparison.md" \
    | awk -F'|' '{ for (i = 2; i <= 9; i++) gsub(/^ +| +$/, "", $i);
                   printf "  %-9s %-10s %-15s %-34s %s\n", $2, $3, $9, $6, $8 }' | sed 's/  *$//'
  echo
  echo "comparison of the organisms' profiles: $CMP/comparison.md"
  echo "HTML report: $CMP/report.html"
  echo "total $(( $(date +%s) - T0 )) s"
}
