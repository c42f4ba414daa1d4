#!/usr/bin/env bash
# 41-on-policy: `clens pairs --on-policy MODEL`. A Qwen2 model with the real
# Qwen2.5 tokenizer has a token chain planted through its weights
# (tools/plant_chain.py), so that after the raw prompt's final ":" greedy
# decoding writes " 12*5=60 apples\nSo total" and then <|endoftext|>. Checks:
# the generated text and ids equal `clens generate` (same greedy path), the
# stop id comes from generation_config.json, the error is injected into the
# generated text (site 12*5=60 -> 61, cut after the line), the raw-prompt
# rendering of the pair reproduces the generated tokens, the generations file
# resumes after a cut-off last line with an identical result, other settings
# are refused, and a random model (no arithmetic in its text) gives no pairs.
# Env (tests/run.sh): CLENS, ROOT, SHARED, PY, CLENS_TEST_TMP.
set -u
t0=$(date +%s%N)
T="$CLENS_TEST_TMP/on-policy-suite"
rm -rf "$T" && mkdir -p "$T"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
Q="$SHARED/tokenizers/qwen2.5"

M="$T/planted"
$PY tools/gen_model.py --arch qwen2 --dtype bf16 --layers 2 --hidden 64 --vocab 151936 --untied \
    --seed 11 --quiet --out "$M" || exit 1
cp "$Q/vocab.json" "$Q/merges.txt" "$Q/tokenizer_config.json" "$M/"
echo '{"eos_token_id": 151643}' >"$M/generation_config.json"
chain=$("$CLENS" tokenize "$M" --no-special --text $'Solution: 12*5=60 apples\nSo total') || exit 1
# drop "Solution" (the chain starts at ":"), end with <|endoftext|>
chain="${chain#*,},151643"
$PY tools/plant_chain.py "$M" --chain "$chain" || exit 1

# three problems; the reference answers are not 60
cat >"$T/data.jsonl" <<'EOF'
{"id": "p1", "problem": "What is $12 \\cdot 5 + 7$?", "solution": "We get $12\\cdot 5 + 7 = \\boxed{67}$."}
{"id": "p2", "problem": "How many apples?", "solution": "There are $\\boxed{60}$."}
{"id": "p3", "problem": "Compute $2+2$.", "solution": "$2+2=\\boxed{4}$"}
EOF
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/pairs.jsonl" --on-policy "$M" \
    --batch 2 >"$T/run1.txt" 2>&1 || { cat "$T/run1.txt"; bad "on-policy run failed"; }
sed 's/^/    /' "$T/run1.txt"
G="$T/pairs.jsonl.generations.jsonl"
[ "$(wc -l <"$G")" -eq 4 ] || bad "generations file: expected a header and 3 lines"
[ "$(wc -l <"$T/pairs.jsonl")" -eq 2 ] || bad "expected 2 pairs (p2: the reference answer 60 excludes the site)"

# the same greedy text as `clens generate` on the raw prompt
prompt=$'Solve this math problem step by step:\n\nHow many apples?\n\nSolution:'
"$CLENS" generate "$M" --text "$prompt" --max-new 40 >"$T/gen.txt" 2>"$T/gen.err" || bad "clens generate"
$PY - "$G" "$T/pairs.jsonl" "$T/gen.txt" "$chain" <<'EOF' || bad "on-policy content"
import json, sys
gen = [json.loads(l) for l in open(sys.argv[1])]
pairs = [json.loads(l) for l in open(sys.argv[2])]
want_ids = [int(x) for x in sys.argv[4].split(",")[1:]]
hdr = gen[0]
assert hdr["clens_generations"] == 1 and hdr["settings"]["stop_ids"] == [151643], hdr
assert hdr["settings"]["max_new_tokens"] == 512 and hdr["settings"]["prompt"] == "raw"
for g in gen[1:]:
    assert g["ids"] == want_ids, (g["ids"], want_ids)
    assert g["stopped"] is True and g["new_tokens"] == len(want_ids)
    assert g["text"] == "12*5=60 apples\nSo total", repr(g["text"])
out = open(sys.argv[3]).read()
assert ",".join(map(str, want_ids)) in out.replace(" ", ""), out
# p1 (answer 67) and p3 (answer 4) give pairs; p2 (answer 60) does not
assert [p["id"] for p in pairs] == ["p1", "p3"], [p["id"] for p in pairs]
for p in pairs:
    x = {"p1": "59", "p3": "61"}[p["id"]]  # plus-minus-one: the direction drawn from seed 0 and the id
    assert p["clean_prefix"] == "12*5=60 apples\n" and p["corrupted_prefix"] == "12*5=%s apples\n" % x, p
    assert p["site"] == {"start": 5, "end": 7, "expr": "12*5", "clean_value": "60", "corrupted_value": x}
    assert p["solution_source"] == "on-policy" and p["generator"]["stopped"] is True
    assert p["generator"]["settings_sha256"] == hdr["settings_sha256"]
print("    on-policy content ok: 3 generations, pairs p1 and p3, site 12*5=60 -> 59 / 61")
EOF

# the pair renders (raw prompt) to the generated tokens
$PY - "$T/pairs.jsonl" >"$T/render.txt" <<'EOF'
import json, sys
p = json.loads(open(sys.argv[1]).readline())
sys.stdout.write("Solve this math problem step by step:\n\n%s\n\nSolution: %s" % (p["problem"], p["clean_prefix"]))
EOF
ids=$("$CLENS" tokenize "$M" --file "$T/render.txt") || bad "tokenize render"
case ",$ids," in
  *",25,220,16,17,9,20,28,21,15,40676,198,") ;;
  *) bad "raw rendering of the pair does not end with the generated tokens: $ids" ;;
esac

# resume: cut the file inside its last line; the rerun regenerates one text
cp "$T/pairs.jsonl" "$T/pairs.first.jsonl"
size=$(stat -c %s "$G")
truncate -s $((size - 20)) "$G"
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/pairs.jsonl" --on-policy "$M" \
    --batch 2 >"$T/run2.txt" 2>&1 || { cat "$T/run2.txt"; bad "resume run failed"; }
grep -q "dropped an unfinished last line" "$T/run2.txt" || bad "resume did not report the cut line"
grep -q "1 solutions generated this run" "$T/run2.txt" || { cat "$T/run2.txt"; bad "resume regenerated more than the lost text"; }
cmp -s "$T/pairs.jsonl" "$T/pairs.first.jsonl" || bad "resumed pairs differ"
[ "$(wc -l <"$G")" -eq 4 ] || bad "resumed generations file has $(wc -l <"$G") lines"
# a complete file: nothing generated
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/pairs3.jsonl" --on-policy "$M" \
    --batch 2 --generations "$G" >"$T/run3.txt" 2>&1 || bad "third run failed"
grep -q "0 solutions generated this run" "$T/run3.txt" || bad "complete file regenerated"
cmp -s "$T/pairs3.jsonl" "$T/pairs.first.jsonl" || bad "reused pairs differ"
# the seed's rules on the same generations (pair rules are not generation settings: nothing is
# generated); p2's site is its reference answer (60), kept by the seed's rule, not verified
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/seed.jsonl" --on-policy "$M" --batch 2 \
    --generations "$G" --site seed --corrupt plus-one --cut chars-raw:20 >"$T/run5.txt" 2>&1 || bad "--site seed run"
grep -q "0 solutions generated this run" "$T/run5.txt" || bad "--site seed regenerated"
$PY - "$T/seed.jsonl" <<'EOF2' || bad "--site seed pairs"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
assert [p["id"] for p in ps] == ["p1", "p2", "p3"], ps
for p in ps:
    assert p["clean_prefix"] == "12*5=60 apples\nSo total" and p["corrupted_prefix"] == "12*5=61 apples\nSo total", p
    assert p["site_rule"] == "seed" and p["site_verified"] == (p["id"] != "p2"), p
EOF2
# --fidelity seed sets the seed's pair choices at once (the preset table of src/data/fidelity.c):
# the same file as the explicit flags above, byte for byte, and the summary says which mode
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/fid.jsonl" --on-policy "$M" --batch 2 \
    --generations "$G" --fidelity seed >"$T/run6.txt" 2>&1 || { cat "$T/run6.txt"; bad "--fidelity seed run"; }
cmp -s "$T/fid.jsonl" "$T/seed.jsonl" || bad "--fidelity seed differs from --site seed --corrupt plus-one --cut chars-raw:20"
grep -q "0 solutions generated this run" "$T/run6.txt" || bad "--fidelity seed regenerated (gen prompt raw, max-new 512 expected)"
grep -q "mode                    seed fidelity (--fidelity seed" "$T/run6.txt" || bad "--fidelity seed: mode line"
grep -q "mode                    clens default" "$T/run5.txt" || bad "explicit flags: mode line"
# a flag the preset sets, given with the same value, is accepted; another value is refused naming it (exit 2)
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/fid2.jsonl" --on-policy "$M" --batch 2 \
    --generations "$G" --fidelity seed --site seed --max-new 512 --quiet || bad "--fidelity seed with agreeing flags"
cmp -s "$T/fid2.jsonl" "$T/seed.jsonl" || bad "--fidelity seed with agreeing flags differs"
for flag in "--cut line" "--corrupt last-digit" "--site random" "--max-new 30" "--gen-prompt chat" "--prompt chat"; do
  "$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --on-policy "$M" --fidelity seed $flag 2>"$T/err6.txt"
  [ $? -eq 2 ] || bad "--fidelity seed $flag: not exit 2"
  grep -q -- "--fidelity seed sets ${flag%% *} .*, but $flag was given" "$T/err6.txt" || { cat "$T/err6.txt"; bad "--fidelity seed $flag: message"; }
done
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --fidelity seed 2>"$T/err7.txt"
[ $? -eq 2 ] && grep -q "give --on-policy MODEL" "$T/err7.txt" || bad "--fidelity seed without --on-policy"
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --fidelity exact 2>/dev/null
[ $? -eq 2 ] || bad "--fidelity exact is not exit 2"
[ -e "$T/x.jsonl" ] && bad "a refused --fidelity run wrote its output"
echo "    --fidelity seed == explicit seed flags (byte for byte); 6 contradicting flags refused naming the flag (exit 2)"
# other settings are refused, with exit 1 and the file named
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/pairs4.jsonl" --on-policy "$M" \
    --batch 2 --max-new 30 --generations "$G" 2>"$T/err.txt"
[ $? -eq 1 ] || bad "other settings not refused"
grep -q "written with other settings" "$T/err.txt" || { cat "$T/err.txt"; bad "settings message"; }
# --limit stops early; --pool caps the problems
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/lim.jsonl" --on-policy "$M" \
    --batch 1 --limit 1 --quiet || bad "--limit run"
[ "$(wc -l <"$T/lim.jsonl.generations.jsonl")" -eq 2 ] || bad "--limit 1 generated more than needed"
# usage errors
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --on-policy "$M" --batch 0 2>/dev/null
[ $? -eq 2 ] || bad "--batch 0 is not exit 2"
# --gen-prompt chat: the model's template (Qwen2.5's, from tokenizer_config.json) and its generation prompt
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/chat.jsonl" --on-policy "$M" --gen-prompt chat \
    --max-new 4 --quiet || bad "--gen-prompt chat"
$PY - "$T/chat.jsonl.generations.jsonl" <<'EOF2' || bad "chat generations header"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[0]["settings"]
assert s["prompt"] == "chat" and s["template_sha256"], s
assert len(lines) == 4 and all(l["prompt_tokens"] > 20 for l in lines[1:]), lines
EOF2
# ... and a clear error without a template
mkdir -p "$T/notpl"
ln -s "$M/model.safetensors" "$M/config.json" "$M/vocab.json" "$M/merges.txt" "$T/notpl/"
$PY -c 'import json,sys; c=json.load(open(sys.argv[1])); c.pop("chat_template",None); json.dump(c,open(sys.argv[2],"w"))' \
    "$M/tokenizer_config.json" "$T/notpl/tokenizer_config.json"
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --on-policy "$T/notpl" --gen-prompt chat 2>"$T/err.txt"
[ $? -eq 1 ] || bad "--gen-prompt chat without a template is not exit 1"
grep -q "template" "$T/err.txt" || { cat "$T/err.txt"; bad "no-template message"; }
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --on-policy "$T/nope" 2>/dev/null
[ $? -eq 1 ] || bad "missing model is not exit 1"

# early token check (`--model`): the same check patch applies, as a report
"$CLENS" pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --out "$T/chk.jsonl" --limit 200 --corrupt plus-one \
    --model "$M" --prompt raw >"$T/chk.txt" 2>&1 || { cat "$T/chk.txt"; bad "--model check"; }
$PY - "$T/chk.txt" "$T/chk.jsonl" "$M" <<'EOF2' || bad "--model check counts"
import json, os, re, subprocess, sys
out = open(sys.argv[1]).read()
m = re.search(r"token check with .* \(--prompt raw\): (\d+) of (\d+) pairs usable", out)
assert m and int(m.group(2)) == 200 and int(m.group(1)) < 200, out

# recount independently: render raw prompts, tokenize with clens (JSONL corpus mode), compare
pairs = [json.loads(l) for l in open(sys.argv[2])]
lines = []
for p in pairs:
    for pre in (p["clean_prefix"], p["corrupted_prefix"]):
        lines.append(json.dumps({"text": "Solve this math problem step by step:\n\n%s\n\nSolution: %s" % (p["problem"], pre)}))
r = subprocess.run([os.environ["CLENS"], "tokenize", sys.argv[3], "--jsonl", "-"],
                   input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
ids = [json.loads(l)["ids"] for l in r.stdout.splitlines()]
ok = sum(1 for i in range(0, len(ids), 2) if len(ids[i]) == len(ids[i + 1]) and ids[i][-1] == ids[i + 1][-1] and ids[i] != ids[i + 1])
assert ok == int(m.group(1)), (ok, out)
print("    --model check: %s of 200 usable (plus-one changes lengths), recounted independently" % ok)
EOF2

# a prompt longer than the context: exit 1 naming the file, line and problem
S="$T/shortctx"; mkdir -p "$S"
for f in "$M"/*; do [ "$(basename "$f")" = config.json ] || ln -s "$f" "$S/"; done
$PY -c 'import json,sys; c=json.load(open(sys.argv[1])); c["max_position_embeddings"]=16; json.dump(c,open(sys.argv[2],"w"))' \
    "$M/config.json" "$S/config.json"
"$CLENS" pairs --data "$T/data.jsonl" --format math --out "$T/x.jsonl" --on-policy "$S" 2>"$T/err.txt"
[ $? -eq 1 ] || bad "prompt longer than the context is not exit 1"
grep -q "data.jsonl:1 (p1): the generation prompt has .* tokens, the model's context (max_position_embeddings) is 16" "$T/err.txt" \
  || { cat "$T/err.txt"; bad "context message"; }

# a random model writes no arithmetic: generations, no pairs, no error
R="$T/random"
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 2 --vocab 151936 --seed 12 --quiet --out "$R" || exit 1
cp "$Q/vocab.json" "$Q/merges.txt" "$Q/tokenizer_config.json" "$R/"
"$CLENS" pairs --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --out "$T/rand.jsonl" --on-policy "$R" \
    --pool 3 --max-new 16 >"$T/rand.txt" 2>&1 || { cat "$T/rand.txt"; bad "random model run"; }
[ "$(wc -l <"$T/rand.jsonl.generations.jsonl")" -eq 4 ] || bad "random model: expected 3 generations"
grep -q "problems read           3" "$T/rand.txt" || { cat "$T/rand.txt"; bad "random model summary"; }

ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "41-on-policy: $((ms / 1000)).$(((ms % 1000) / 100)) s"
exit $fail
