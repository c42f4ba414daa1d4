#!/usr/bin/env python3
"""Tables of docs/organism-results.md from the output folders of the organism runs
(build/org/: capture/probe, transfer, lens, steer, dynamics, patch fast vs atp).
Usage: /usr/bin/python3 tools/organism_results.py build/org > tables.md
Reads only the JSON files the clens commands wrote; the one computation of its own is the
Pearson r of the per-pair effects (m_patched - m_corr) of exact vs attribution patching."""
import json, os, sys
import numpy as np

B = sys.argv[1]
ORGS = ["qwen2-a", "qwen2-b", "olmo3-c"]
J = lambda *p: json.load(open(os.path.join(B, *p)))
f3 = lambda x: "–" if x is None else "%.3f" % x

print("### Probe AUROC per layer (final position, 5-fold CV grouped by pair, out of fold)\n")
for n in ORGS:
    p = J("probe-" + n, "probe.json")
    print("**%s** (%d pairs, %d rows)\n" % (n, p["n_pairs"], p["n_rows"]))
    print("| hook | DoM AUROC [95% CI] | LR AUROC [95% CI] | perm-null p95 (p) | random-dir p95 |")
    print("|---|---|---|---|---|")
    for L in p["layers"]:
        d, r = L["diff_of_means"], L["logreg"]
        print("| %s | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %.3f (%.3f) | %.3f |" % (
            L["hook"], d["auroc"], *d["auroc_ci95"], r["auroc"], *r["auroc_ci95"],
            L["permutation_null"]["p95"], L["permutation_null"]["p_value"], L["random_direction"]["p95"]))
    best = max(p["layers"], key=lambda L: L["logreg"]["auroc"])
    print("\nbest layer (LR): %s, AUROC %.3f\n" % (best["hook"], best["logreg"]["auroc"]))

print("### Steering (DoM direction of the best layer, resid_pre, positions all, 100 pairs)\n")
print("| organism | mode | alpha | P(corr\\|error) dir | random | P(corr\\|correct) dir | random | corrupted metric dir | random | clean metric dir | random | KL neutral dir | random | top-1 agree dir |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
ban = {}
for n in ORGS:
    for mode in ("ablate", "add"):
        s = J("steer-%s-%s" % (n, mode), "steer.json")
        g, pr, ne = s["generation"], s["pairs"], s["neutral"]
        ban[n] = (g["unsteered"], g["ban"], s["layers"])
        for i, a in enumerate(s["alphas"]):
            print("| %s | %s L%s | %g | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %.3f | %.3f | %.4f | %.4f | %.3f |" % (
                n, mode, ",".join(map(str, s["layers"])), a, g["direction"]["error"][i], g["random"]["error"][i],
                g["direction"]["correct"][i], g["random"]["correct"][i],
                pr["direction"]["corrupted"][i], pr["random"]["corrupted"][i],
                pr["direction"]["clean"][i], pr["random"]["clean"][i],
                ne["direction"]["mean_kl"][i], ne["random"]["mean_kl"][i], ne["direction"]["top1_agree"][i]))
print("\nNoWait ban (correction-token logits -inf at every step), greedy, first k=8 of 16 new tokens:\n")
print("| organism | unsteered P(corr\\|error) | P(corr\\|correct) | ban P(corr\\|error) | ban P(corr\\|correct) |")
print("|---|---|---|---|---|")
for n in ORGS:
    u, b, _ = ban[n]
    print("| %s | %.2f | %.2f | %.2f | %.2f |" % (n, u["error"], u["correct"], b["error"], b["correct"]))

print("\n### Dynamics (21 checkpoints, steps 0..4000, --n 20, behaviour on 100 held-out traces)\n")
for n in ORGS:
    d = J("dyn-" + n, "dynamics.json")
    h = d.get("headline")
    print("**%s**: headline resid_pre %s, verdict **%s**\n" % (n, h and h["layer_resid_pre"], h and h["verdict"]))
    print("| resid_pre | verdict | ΔBIC | location | 10–90% window in steps | checkpoints in window |")
    print("|---|---|---|---|---|---|")
    for L in d["layers"]:
        lg = L.get("logistic") or {}
        print("| %s | %s | %s | %s | %s | %s |" % (L["layer_resid_pre"], L["verdict"],
              "%.1f" % L["delta_bic"] if L.get("delta_bic") is not None else "–",
              "%.0f" % lg["location"] if lg.get("location") is not None else "–",
              ("%.0f–%.0f" % tuple(lg["window_10_90"])) if lg.get("window_10_90") else "–",
              lg.get("checkpoints_in_window", "–")))
    print()

print("### Attribution patching vs exact (Pearson r of per-pair effects m_patched − m_corr over pairs × layers (× heads))\n")
print("| organism | metric | pairs | resid_pre | resid_post | attn_out | mlp_out | z | time exact (s) | time atp (s) |")
print("|---|---|---|---|---|---|---|---|---|---|")
times = {}
if os.path.exists(os.path.join(B, "atp.status")):
    for line in open(os.path.join(B, "atp.status")):
        w = line.split()
        times[(w[0], w[1])] = float(w[3].split("=")[1])
for n in ORGS:
    recs = {}
    for m in ("fast", "atp"):
        recs[m] = {r["id"]: r for r in map(json.loads, open(os.path.join(B, "patch-%s-%s" % (n, m), "records.jsonl")))
                   if r["status"] == "kept"}
    ids = sorted(set(recs["fast"]) & set(recs["atp"]))
    for metric in ("logprob_mass", "logit_mean"):
      row = []
      for site in ("resid_pre", "resid_post", "attn_out", "mlp_out", "z"):
        x, y = [], []
        for i in ids:
            for m, acc in (("fast", x), ("atp", y)):
                mm = recs[m][i]["metrics"][metric]
                acc.extend((np.ravel(np.array(mm["patched"][site], float)) - mm["corr"]).tolist())
        x, y = np.array(x), np.array(y)
        row.append("%.3f" % np.corrcoef(x, y)[0, 1] if x.std() > 0 and y.std() > 0 else "–")
      print("| %s | %s | %d | %s | %.2f | %.2f |" % (n, metric, len(ids), " | ".join(row), times.get((n, "fast"), float("nan")),
                                              times.get((n, "atp"), float("nan"))))
