#!/usr/bin/python3
"""Independent reference for `clens patch` (issue 22 item 1; checked by tests/suites/51-patch-ref.sh).

Recomputes every metric value in a `clens patch` output folder from the pair texts alone, with
nothing taken from clens but the list of sites and candidates to check:

- Prompts (docs/patch-output.md, "How the result is checked"): raw = "Solve this math problem step
  by step:\\n\\n" + problem + "\\n\\nSolution: " + prefix, tokenized with the tokenizer's special
  tokens (BOS if its post-processor adds one); chat = the model's chat template rendered by
  python3-jinja2 in transformers' apply_chat_template environment (tools/template_ref.py) for one
  user message (the problem) with add_generation_prompt, + prefix, tokenized without special tokens.
- Token ids: Hugging Face `tokenizers` (the Rust library through its Node binding, tools/tok_ref.js),
  never clens' tokenizer.
- Correction ids (the same section; the seed's study §3.2 and §5.7): logprob_mass = every single-token form among
  {w, " "+w, lower(w), " "+lower(w)} of Wait, But, Actually, Hmm, deduplicated; logit_mean = the
  first sub-token of each of the seed's 7 strings Wait, But, Actually, Hmm, wait, but, actually
  (no leading space, no special tokens).
- Metrics on the final position's float64 logits z: logprob_mass = log(sum_{t in ids} softmax(z)_t),
  logit_mean = mean_{t in ids} z_t.
- Runs: the clean and corrupted prompts through tools/ref_forward.py's float64 model (written from
  transformers, never from clens' C), every hook captured; then for each site a full forward of the
  corrupted prompt with that one activation replaced at the final position by the clean run's
  (forward(patch=...)): resid_pre L (L = n_layers: the residual after the last block), resid_post
  L, attn_out L and mlp_out L (what the block adds to the residual stream, after OLMo's post
  norms), z L.H (head H's slice of the attention output before o_proj). No KV-cache reuse, no
  batching: nothing shared with clens' fast path.

Compared with each record of DIR/records.jsonl: the token ids (with "clens_ids"), n_tokens, shared_prefix (fast method), the drop
reason for token-level drops, the correction ids of settings.json, and every clean, corr and
patched value of both metrics (absolute tolerance --tol, default 1e-4). Prints the max abs diff per
site type; exit 0 if all agree, 1 otherwise (or on error), 2 usage.

Usage:
  ref_patch.py --jobs jobs.json [--tol 1e-4] [--clens CLENS]
     jobs.json = [{"label": "qwen2-chat", "model": DIR, "tokenizer_json": PATH, "run": CLENS_OUT_DIR,
                   "pairs": pairs.jsonl[, "tokens": [strings given to --tokens]]}, ...]
  Optional job key "clens_ids": the output of tools/patch_prompt_ids.c (the ids clens patch uses
  for each pair), compared with the reference ids token for token.
  With --clens, chat jobs also check that `clens chat MODEL --json` renders the same text as
  jinja2, and that `clens tokenize` gives the HF ids for every prompt text.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_forward  # noqa: E402  (sibling tool: the float64 model written from transformers)
import template_ref  # noqa: E402  (sibling tool: jinja2 in apply_chat_template's environment)

TOOLS = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORDS = ["Wait", "But", "Actually", "Hmm"]
SEED_WORDS = ["Wait", "But", "Actually", "Hmm", "wait", "but", "actually"]
SITE_HOOK = {"resid_pre": "blocks.%d.hook_resid_pre", "resid_post": "blocks.%d.hook_resid_post",
             "attn_out": "blocks.%d.hook_attn_out", "mlp_out": "blocks.%d.hook_mlp_out",
             "z": "blocks.%d.attn.hook_z"}
RAW_HEAD = "Solve this math problem step by step:\n\n"


class Mismatch(Exception):
    pass


def hf_encode(tokenizer_json, texts, special):
    """HF tokenizers ids of each text (one Node process)."""
    if not texts:
        return []
    with tempfile.TemporaryDirectory(prefix="clens-refpatch-") as tmp:
        src, dst = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        cmd = ["node", os.path.join(TOOLS, "tok_ref.js"), tokenizer_json] + ([] if special else ["--no-special"])
        r = subprocess.run(cmd + ["--encode", src, dst], capture_output=True)
        if r.returncode != 0:
            raise ref_forward.RefError("tok_ref.js %s failed: %s" % (tokenizer_json, r.stderr.decode()[-500:]))
        with open(dst, encoding="utf-8") as f:
            out = [json.loads(line)["ids"] for line in f if line.strip()]
    if len(out) != len(texts):
        raise ref_forward.RefError("tok_ref.js returned %d lines for %d texts" % (len(out), len(texts)))
    return out


def correction_ids(tokenizer_json, words=None):
    """(mass ids, mass strings, mean ids, mean strings) from the correction strings: the defaults,
    or `words` (clens patch --tokens), which then also replace the seed's 7 for logit_mean."""
    forms = []
    for w in words or DEFAULT_WORDS:
        forms += [w, " " + w, w.lower(), " " + w.lower()]
    mean_words = list(words) if words else list(SEED_WORDS)
    enc = hf_encode(tokenizer_json, forms + mean_words, special=False)
    mass, mass_s = [], []
    for s, ids in zip(forms, enc[:len(forms)]):
        if len(ids) == 1 and ids[0] not in mass:
            mass.append(ids[0])
            mass_s.append(s)
    mean = [ids[0] for ids in enc[len(forms):] if ids]
    return mass, mass_s, mean, mean_words


def metrics_of(last_logits, mass, mean):
    z = last_logits.reshape(-1)
    lp = float(torch.logsumexp(z[mass], 0) - torch.logsumexp(z, 0))
    lm = float(z[mean].mean())
    return {"logprob_mass": lp, "logit_mean": lm}


def prompt_texts(job, settings, pairs):
    """{candidate: (clean text, corrupted text)}, the add_special flag and the chat header (or None)."""
    mode = settings["prompt"]
    texts = {}
    headers = {}
    if mode == "raw":
        for c, p in pairs.items():
            base = RAW_HEAD + p["problem"] + "\n\nSolution: "
            texts[c] = (base + p["clean_prefix"], base + p["corrupted_prefix"])
        return texts, True, headers
    if mode != "chat":
        raise ref_forward.RefError("settings.prompt %r unknown" % mode)
    src, _, special = template_ref.load_template(job["model"])
    env = template_ref.make_env(0)
    for c, p in pairs.items():
        kind, head = template_ref.render(env, src, special, [{"role": "user", "content": p["problem"]}], True)
        if kind != "ok":
            raise ref_forward.RefError("jinja2 render of pair %d: %s %s" % (c, kind, head))
        headers[c] = head
        texts[c] = (head + p["clean_prefix"], head + p["corrupted_prefix"])
    return texts, False, headers


def token_reason(a, b):
    """The drop reason a pair gets before any model runs (docs/patch-output.md: length_mismatch, final_token_mismatch, identical), or None."""
    if len(a) != len(b):
        return "length_mismatch"
    if not a or a[-1] != b[-1]:
        return "final_token_mismatch"
    if a == b:
        return "identical"
    return None


def check_clens_cli(clens, job, headers, texts, special, ref_ids, problems):
    """Chat text of `clens chat` == jinja2's; `clens tokenize` ids == HF ids. Returns failures."""
    bad = []
    with tempfile.TemporaryDirectory(prefix="clens-refpatch-") as tmp:
        for c, head in headers.items():
            mf = os.path.join(tmp, "m.json")
            with open(mf, "w", encoding="utf-8") as f:
                json.dump([{"role": "user", "content": problems[c]}], f, ensure_ascii=False)
            r = subprocess.run([clens, "chat", job["model"], "--messages", mf, "--add-generation-prompt",
                                "--now", "0"], capture_output=True)
            if r.returncode != 0 or r.stdout.decode("utf-8") != head:
                bad.append("candidate %d: `clens chat` text differs from jinja2's render (rc %d)" % (c, r.returncode))
        src = os.path.join(tmp, "t.jsonl")
        order = sorted(texts)
        with open(src, "w", encoding="utf-8") as f:
            for c in order:
                for t in texts[c]:
                    f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        r = subprocess.run([clens, "tokenize", job["model"], "--jsonl", src, "--threads", "1"]
                           + ([] if special else ["--no-special"]), capture_output=True)
        got = [json.loads(x)["ids"] for x in r.stdout.decode().splitlines() if x.strip()] if r.returncode == 0 else []
        want = [ids for c in order for ids in ref_ids[c]]
        if got != want:
            bad.append("`clens tokenize` ids of the prompt texts differ from HF tokenizers' (rc %d)" % r.returncode)
    return bad


def run_job(job, tol, clens, log):
    t0 = time.time()
    run = job["run"]
    with open(os.path.join(run, "settings.json")) as f:
        sdoc = json.load(f)
    st = sdoc["settings"]
    recs = [json.loads(line) for line in open(os.path.join(run, "records.jsonl")) if line.strip()]
    if not recs:
        raise Mismatch("%s: no records" % run)
    pairs_all = [json.loads(line) for line in open(job["pairs"], encoding="utf-8") if line.strip()]
    pairs = {r["candidate"]: pairs_all[r["candidate"]] for r in recs}
    fails = []

    # Correction ids from the strings, compared with what clens recorded.
    mass, mass_s, mean, mean_s = correction_ids(job["tokenizer_json"], job.get("tokens"))
    for name, ids, strs in (("logprob_mass", mass, mass_s), ("logit_mean", mean, mean_s)):
        got = st["metrics"][name]
        if got["ids"] != ids:
            fails.append("settings.metrics.%s.ids %s != reference %s (strings %s)" % (name, got["ids"], ids, strs))

    texts, special, headers = prompt_texts(job, st, pairs)
    order = sorted(texts)
    flat = hf_encode(job["tokenizer_json"], [t for c in order for t in texts[c]], special)
    ref_ids = {c: (flat[2 * k], flat[2 * k + 1]) for k, c in enumerate(order)}
    if job.get("clens_ids"):
        # The ids clens patch feeds the model (tools/patch_prompt_ids.c): equal to HF's, token for token.
        got = {}
        for line in open(job["clens_ids"]):
            if line.strip():
                d = json.loads(line)
                got[d["candidate"]] = d
        for c in order:
            d = got.get(c)
            if d is None:
                fails.append("candidate %d: missing from %s" % (c, job["clens_ids"]))
                continue
            for which, ids in (("clean", ref_ids[c][0]), ("corr", ref_ids[c][1])):
                if d[which] != ids:
                    k = next((i for i, (x, y) in enumerate(zip(d[which], ids)) if x != y), min(len(d[which]), len(ids)))
                    fails.append("candidate %d: clens %s ids differ from HF tokenizers' at token %d (lengths %d / %d)"
                                 % (c, which, k, len(d[which]), len(ids)))
            if d["reason"] != token_reason(*ref_ids[c]):
                fails.append("candidate %d: clens token check says %s, reference %s"
                             % (c, d["reason"], token_reason(*ref_ids[c])))
    if clens:
        fails += check_clens_cli(clens, job, headers, texts, special, ref_ids,
                                 {c: p["problem"] for c, p in pairs.items()})

    m = ref_forward.Model(job["model"])
    nL = m.L
    if st["n_heads"] != m.nH:
        fails.append("settings.n_heads %d != config %d" % (st["n_heads"], m.nH))
    maxd = {}
    n_vals = 0

    def cmp(kind, label, got, want):
        nonlocal n_vals
        n_vals += 1
        d = abs(got - want) if got is not None else math.inf
        maxd[kind] = max(maxd.get(kind, 0.0), d)
        if not d <= tol:
            fails.append("%s: %s = %r, reference %r (|diff| %.3g)" % (label, kind, got, want, d))

    for r in recs:
        c = r["candidate"]
        ci, ri = ref_ids[c]
        tag = "candidate %d" % c
        if r["n_tokens"] != len(ci):
            fails.append("%s: n_tokens %d, reference %d" % (tag, r["n_tokens"], len(ci)))
            continue
        reason = token_reason(ci, ri)
        if reason is not None:
            if r["status"] != "dropped" or r["reason"] != reason or "metrics" in r:
                fails.append("%s: reference drops it as %s before the model; record says %s/%s"
                             % (tag, reason, r["status"], r["reason"]))
            continue
        if "metrics" not in r:
            fails.append("%s: no metrics, but the reference keeps it (record reason %s)" % (tag, r["reason"]))
            continue
        if st["method"] == "fast":
            P = 0
            while P < len(ci) - 1 and ci[P] == ri[P]:
                P += 1
            if r["shared_prefix"] != P:
                fails.append("%s: shared_prefix %d, reference %d" % (tag, r["shared_prefix"], P))
        with torch.no_grad():
            clean = m.forward(ci, last_logits_only=True)
            corr = m.forward(ri, last_logits_only=True)
            want = {"clean": metrics_of(clean["logits"], mass, mean), "corr": metrics_of(corr["logits"], mass, mean)}
            patched = {}
            for stype in st["site_types"]:
                vals = []
                for L in st["layers"][stype]:
                    hook = SITE_HOOK[stype] % L
                    if stype == "z":
                        z = clean[hook][-1]
                        heads = []
                        for h in range(m.nH):
                            out = m.forward(ri, patch=(hook, h, z[h * m.D:(h + 1) * m.D]), last_logits_only=True)
                            heads.append(metrics_of(out["logits"], mass, mean))
                        vals.append(heads)
                    else:
                        src = clean[hook] if L < nL else clean["blocks.%d.hook_resid_post" % (nL - 1)]
                        out = m.forward(ri, patch=(hook, None, src[-1]), last_logits_only=True)
                        vals.append(metrics_of(out["logits"], mass, mean))
                patched[stype] = vals
        for met in ("logprob_mass", "logit_mean"):
            rm = r["metrics"][met]
            cmp("clean", "%s %s" % (tag, met), rm["clean"], want["clean"][met])
            cmp("corr", "%s %s" % (tag, met), rm["corr"], want["corr"][met])
            if r["status"] != "kept":
                continue
            for stype, vals in patched.items():
                got = rm["patched"][stype]
                if len(got) != len(vals):
                    fails.append("%s %s: %d %s values, reference %d" % (tag, met, len(got), stype, len(vals)))
                    continue
                for L, g, w in zip(st["layers"][stype], got, vals):
                    if stype == "z":
                        if len(g) != len(w):
                            fails.append("%s %s z layer %d: %d heads, reference %d" % (tag, met, L, len(g), len(w)))
                            continue
                        for h, (gh, wh) in enumerate(zip(g, w)):
                            cmp("z", "%s %s z %d.%d" % (tag, met, L, h), gh, wh[met])
                    else:
                        cmp(stype, "%s %s %s %d" % (tag, met, stype, L), g, w[met])
        # The record's filter decision with --min-diff 0: kept unless D is exactly 0.
        if st["min_diff"] == 0 and r["status"] != "kept":
            fails.append("%s: dropped (%s) with --min-diff 0" % (tag, r["reason"]))
    kinds = ["clean", "corr"] + [k for k in st["site_types"] if k in maxd]
    summary = "  ".join("%s %.2g" % (k, maxd[k]) for k in kinds if k in maxd)
    kept = sum(1 for r in recs if r["status"] == "kept")
    log("ref_patch: %-16s %-4s %d records (%d kept), %d values, max |diff|: %s  (%.1f s)%s"
        % (job["label"], st["prompt"], len(recs), kept, n_vals, summary, time.time() - t0,
           "" if not fails else "  FAIL"))
    return fails, n_vals


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ref_patch.py", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n\n")[0],
                                 epilog="Example: ref_patch.py --jobs /tmp/jobs.json --clens build/clens")
    ap.add_argument("--jobs", required=True, help="JSON list of {label, model, tokenizer_json, run, pairs} (path)")
    ap.add_argument("--tol", type=float, default=1e-4, help="absolute tolerance (float, default 1e-4)")
    ap.add_argument("--clens", help="clens binary: also check `clens chat` / `clens tokenize` (path)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (int, default 1)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    torch.set_num_threads(max(1, a.threads))
    try:
        with open(a.jobs) as f:
            jobs = json.load(f)
        total_fail, total_vals = 0, 0
        for job in jobs:
            fails, n = run_job(job, a.tol, a.clens, print)
            total_vals += n
            for x in fails[:20]:
                print("  FAIL %s: %s" % (job["label"], x))
            if len(fails) > 20:
                print("  ... %d more failures" % (len(fails) - 20))
            total_fail += len(fails)
        print("ref_patch: %d jobs, %d values compared, %d failures" % (len(jobs), total_vals, total_fail))
        return 0 if total_fail == 0 else 1
    except (ref_forward.RefError, Mismatch, OSError, KeyError, ValueError, subprocess.CalledProcessError) as e:
        print("ref_patch.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
