#!/usr/bin/env python3
"""Tables of docs/organism-results.md from the output folders of the organism runs.
Usage: /usr/bin/python3 tools/organism_results.py DIR > tables.md
DIR holds the folders of the commands in docs/organism-results.md ("Commands"): probe-NAME/,
tr-a-b/, tr-a-b-map/, tr-a-b-map-clean/, tr-a-c/, lens-a/, steer-NAME-{ablate,add}/, dyn-NAME/, patch-NAME-{fast,atp}/
and times.txt ("NAME METHOD SECONDS" lines of the patch runs). A missing folder is skipped with a
note. Reads only the JSON files the clens commands wrote; the one computation, the Pearson r of
the per-pair effects of exact vs attribution patching, is tools/atp_vs_exact.py."""
import json, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atp_vs_exact  # noqa: E402 (the one AtP-vs-exact computation)

B = sys.argv[1]
ORGS = ["qwen2-a", "qwen2-b", "olmo3-c"]


def J(*p):
    path = os.path.join(B, *p)
    if not os.path.exists(path):
        print(f"\n(missing: {os.path.join(*p)})\n")
        return None
    return json.load(open(path))


def f3(x):
    return "–" if x is None else "%.3f" % x


print("### Probe AUROC per depth (final position; 5-fold CV grouped by pair; out of fold)\n")
best_rows = []
for n in ORGS:
    p = J("probe-" + n, "probe.json")
    if not p:
        continue
    print("**%s** (%d pairs, %d rows)\n" % (n, p["n_pairs"], p["n_rows"]))
    print("| depth | hook | DoM AUROC [95% CI] | LR AUROC [95% CI] | perm-null p95 (p) | random-dir p95 |")
    print("|---|---|---|---|---|---|")
    for L in p["layers"]:
        d, r = L["diff_of_means"], L["logreg"]
        print("| %s | %s | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %.3f (%.3f) | %.3f |" % (
            L.get("depth"), L["hook"], d["auroc"], *d["auroc_ci95"], r["auroc"], *r["auroc_ci95"],
            L["permutation_null"]["p95"], L["permutation_null"]["p_value"], L["random_direction"]["p95"]))
    best = max(p["layers"], key=lambda L: L["logreg"]["auroc"])
    best_rows.append((n, best))
    print("\nbest depth (LR): %s (%s), AUROC %.3f\n" % (best.get("depth"), best["hook"], best["logreg"]["auroc"]))

print("### Transfer\n")
t = J("tr-a-b", "transfer.json")
if t:
    print("**qwen2-a → qwen2-b, same width, direct** (A's directions on B's rows; random-direction p95 on B):\n")
    print("| A hook | B hook | DoM AUROC [95% CI] | LR AUROC [95% CI] | cos(d_A, d_B) | random-dir p95 |")
    print("|---|---|---|---|---|---|")
    for r in t["pairs"]:
        if r["a_hook"] != r["b_hook"]:
            continue
        print("| %s | %s | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %s | %s |" % (
            r["a_hook"], r["b_hook"], r["dom_auroc"], *r["dom_auroc_ci95"], r["lr_auroc"], *r["lr_auroc_ci95"],
            f3(r["cosine"]), f3(r["random_direction_p95"])))
    bd = max(t["pairs"], key=lambda r: r["dom_auroc"])
    print("\nbest DoM AUROC over all %d layer pairs: %.3f (%s → %s, random-dir p95 %s)\n" % (
        len(t["pairs"]), bd["dom_auroc"], bd["a_hook"], bd["b_hook"], f3(bd["random_direction_p95"])))
for key, title in (("tr-a-b-map", "qwen2-a → qwen2-b, same width, through a ridge map fitted on training traces (half with a correction)"),
                   ("tr-a-b-map-clean", "qwen2-a → qwen2-b, the same map fitted on error-free training traces only"),
                   ("tr-a-c", "qwen2-a → olmo3-c, widths 64 → 48, through a ridge map fitted on training traces (half with a correction)")):
    t = J(key, "transfer.json")
    if not t:
        continue
    print("**%s** (%d texts, %d aligned by token; pairing: %s):\n" % (title, t["n_texts"], t["n_texts_aligned"],
                                                                       t["layer_pairing"]))
    print("| A hook | B hook | map R² (held out) | DoM AUROC [95% CI] | LR AUROC | random-map mean | random-map p95 |")
    print("|---|---|---|---|---|---|---|")
    for r in t["pairs"]:
        print("| %s | %s | %s | %.3f [%.3f, %.3f] | %.3f | %s | %s |" % (
            r["a_hook"], r["b_hook"], f3(r["r2_heldout"]), r["dom_auroc"], *r["dom_auroc_ci95"], r["lr_auroc"],
            f3(r["random_map_mean"]), f3(r["random_map_p95"])))
    print()

lens = J("lens-a", "lens.json")
if lens:
    seqs = lens["sequences"]
    print("### Logit lens, qwen2-a, pair %s (final position)\n" % seqs[0].get("pair"))
    print("| depth | hook | clean: correction log-mass | clean: top-1 (p) | corrupted: correction log-mass | corrupted: top-1 (p) |")
    print("|---|---|---|---|---|---|")
    for li, L in enumerate(seqs[0]["layers"]):
        cells = []
        for s in seqs[:2]:
            row = s["layers"][li]["rows"][0]
            top = row["top"][0]
            cells.append("%.3f | `%s` (%.2f)" % (row["correction_logprob"], top["token"].replace("\n", "\\n").replace("Ċ", "\\n"), top["prob"]))
        print("| %d | %s | %s |" % (L["layer"], L["hook"], " | ".join(cells)))
    print()

print("### Steering dose–response (with random-direction controls)\n")
print("| organism | edit | alpha | P(corr\\|error) dir | random | P(corr\\|correct) dir | random | corrupted metric dir | random | clean metric dir | random | KL neutral dir | random | top-1 agree dir | random |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
ban = {}
for n in ORGS:
    for mode in ("ablate", "add"):
        s = J("steer-%s-%s" % (n, mode), "steer.json")
        if not s:
            continue
        g, pr, ne = s["generation"], s["pairs"], s["neutral"]
        ban[n] = (g["unsteered"], g["ban"], pr["n_pairs"], g["n_error"])
        edit = "%s %s %s" % ("ablate" if mode == "ablate" else "add", s["hook"], ",".join(map(str, s["layers"])))
        for i, a in enumerate(s["alphas"]):
            print("| %s | %s | %g | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %.3f | %.3f | %.4f | %.4f | %.3f | %.3f |" % (
                n, edit, a, g["direction"]["error"][i], g["random"]["error"][i],
                g["direction"]["correct"][i], g["random"]["correct"][i],
                pr["direction"]["corrupted"][i], pr["random"]["corrupted"][i],
                pr["direction"]["clean"][i], pr["random"]["clean"][i],
                ne["direction"]["mean_kl"][i], ne["random"]["mean_kl"][i],
                ne["direction"]["top1_agree"][i], ne["random"]["top1_agree"][i]))
print("\nNoWait ban (the correction ids' logits −inf at every generated step), greedy:\n")
print("| organism | pairs | unsteered P(corr\\|error) | P(corr\\|correct) | ban P(corr\\|error) | ban P(corr\\|correct) |")
print("|---|---|---|---|---|---|")
for n in ORGS:
    if n in ban:
        u, b, npairs, _ = ban[n]
        print("| %s | %d | %.2f | %.2f | %.2f | %.2f |" % (n, npairs, u["error"], u["correct"], b["error"], b["correct"]))

print("\n### Dynamics (all checkpoints, --n 20, behaviour on 100 held-out traces)\n")
for n in ORGS:
    d = J("dyn-" + n, "dynamics.json")
    if not d:
        continue
    h = d.get("headline")
    print("**%s**: headline resid_pre %s, verdict **%s**\n" % (n, h and h["layer_resid_pre"], h and h["verdict"]))
    print("| resid_pre | verdict | first → last recovery | ΔBIC | location [95% CI] | 10–90% window in steps | checkpoints in window |")
    print("|---|---|---|---|---|---|---|")
    for L in d["layers"]:
        lg = L.get("logistic") or {}
        rec = [x for x in L.get("recovery", []) if x is not None]
        ci = lg.get("location_ci95")
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            L["layer_resid_pre"], L["verdict"],
            ("%.0f%% → %.0f%%" % (rec[0], rec[-1])) if rec else "–",
            "%.1f" % L["delta_bic"] if L.get("delta_bic") is not None else "–",
            ("%.0f" % lg["location"] + (" [%s, %s]" % tuple("%.0f" % v if v is not None else "–" for v in ci) if ci else ""))
            if lg.get("location") is not None else "–",
            ("%.0f–%.0f" % tuple(lg["window_10_90"])) if lg.get("window_10_90") else "–",
            lg.get("checkpoints_in_window", "–")))
    beh = []
    for c in d["checkpoints"]:
        b = c.get("behaviour") or {}
        b = b.get("behaviour", b)
        if b.get("p_correction_after_error") is not None:
            beh.append("%d: %.2f / %.2f" % (c["step"], b["p_correction_after_error"], b["p_correction_after_correct"]))
    if beh:
        print("\nbehaviour P(corr|error) / P(corr|correct) by step: " + "; ".join(beh))
    print()

print("### Attribution patching vs exact (Pearson r of per-pair effects m_patched − m_corr over pairs × layers (× heads))\n")
print("| organism | metric | pairs | resid_pre | resid_post | attn_out | mlp_out | z | time exact (s) | time atp (s) |")
print("|---|---|---|---|---|---|---|---|---|---|")
times = {}
if os.path.exists(os.path.join(B, "times.txt")):
    for line in open(os.path.join(B, "times.txt")):
        w = line.split()
        times[(w[0], w[1])] = float(w[2])
for n in ORGS:
    runs = [os.path.join(B, "patch-%s-%s" % (n, m)) for m in ("fast", "atp")]
    if not all(os.path.exists(os.path.join(r, "records.jsonl")) for r in runs):
        continue
    ids, r = atp_vs_exact.correlations(*map(atp_vs_exact.kept_records, runs))
    for metric in atp_vs_exact.METRICS:
        row = ["–" if np.isnan(r[(metric, site)]) else "%.3f" % r[(metric, site)] for site in atp_vs_exact.SITES]
        print("| %s | %s | %d | %s | %.2f | %.2f |" % (n, metric, len(ids), " | ".join(row),
                                                   times.get((n, "fast"), float("nan")),
                                                   times.get((n, "atp"), float("nan"))))
