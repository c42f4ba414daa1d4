#!/usr/bin/python3
"""Compares two activation folders (reference vs candidate) of .npy files.

Every .npy in the reference must exist in the candidate with the same shape; extra candidate
files are listed and ignored. Prints the max abs diff per file (with --verbose) and per hook
kind (blocks.{L}.hook_resid_pre -> blocks.*.hook_resid_pre), then one SUMMARY line.

Tolerances:
  --f32   every file: max |cand - ref| <= 1e-4.
  --bf16  logits: top-1 equal at every position and max abs diff <= 2e-2;
          other hooks: max abs diff <= 2e-2 * max(1, max|ref|) of that file.
          Why relative for hooks: bf16 models are run with fp32 activations (rulings R1), so
          the error is fp32 accumulation error, which scales with the magnitude of the tensor;
          residual streams grow with depth (and OLMo's post-norm residual is not normalised)
          while logits, the quantity the user reads, keep the absolute bound. A position whose
          two best reference logits are within 1e-6 is a tie and does not count as a top-1 flip.
NaN/Inf in the candidate always fails.

Usage: compare_acts.py REF_DIR CAND_DIR (--f32 | --bf16) [--label NAME] [--verbose] [--json FILE]
Example: compare_acts.py /tmp/ref/qwen2-f32 /tmp/clens/qwen2-f32 --f32 --label qwen2-f32
Exit codes: 0 pass, 1 fail (with a report), 2 usage.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

TIE = 1e-6


def kind_of(name):
    return re.sub(r"^blocks\.\d+\.", "blocks.*.", name)


def layer_of(name):
    m = re.match(r"^blocks\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


def compare(ref_dir, cand_dir, mode, verbose=False):
    """Returns (ok, report lines, summary dict)."""
    lines, problems = [], []
    ref_files = sorted(f for f in os.listdir(ref_dir) if f.endswith(".npy"))
    if not ref_files:
        return False, ["%s: no .npy files in the reference folder" % ref_dir], {}
    if not os.path.isdir(cand_dir):
        return False, ["%s: candidate folder does not exist" % cand_dir], {}
    cand_files = set(f for f in os.listdir(cand_dir) if f.endswith(".npy"))
    extra = sorted(cand_files - set(ref_files))
    per_file = {}
    kinds = {}
    top1 = None
    for fn in sorted(ref_files, key=lambda f: (layer_of(f[:-4]), f)):
        name = fn[:-4]
        if fn not in cand_files:
            problems.append("%s: missing in candidate %s" % (fn, cand_dir))
            continue
        r = np.load(os.path.join(ref_dir, fn)).astype(np.float64)
        try:
            c = np.load(os.path.join(cand_dir, fn))
        except (ValueError, OSError) as e:
            problems.append("%s: candidate file unreadable: %s" % (fn, e))
            continue
        if c.shape != r.shape:
            problems.append("%s: shape %s, reference %s" % (fn, list(c.shape), list(r.shape)))
            continue
        c = c.astype(np.float64)
        if not np.isfinite(c).all():
            problems.append("%s: candidate has %d NaN/Inf values" % (fn, int((~np.isfinite(c)).sum())))
            continue
        d = float(np.abs(c - r).max()) if r.size else 0.0
        scale = float(np.abs(r).max()) if r.size else 0.0
        if mode == "f32":
            tol = 1e-4
        elif name == "logits":
            tol = 2e-2
        else:
            tol = 2e-2 * max(1.0, scale)
        worst = np.unravel_index(int(np.abs(c - r).argmax()), r.shape) if r.size else ()
        per_file[name] = {"max_abs": d, "max_ref": scale, "tol": tol, "where": [int(i) for i in worst]}
        k = kind_of(name)
        kd = kinds.setdefault(k, {"max_abs": 0.0, "file": name, "max_ref": 0.0, "n": 0, "fail": 0})
        kd["n"] += 1
        kd["max_ref"] = max(kd["max_ref"], scale)
        if d >= kd["max_abs"]:
            kd["max_abs"], kd["file"] = d, name
        if not d <= tol:
            kd["fail"] += 1
            problems.append("%s: max abs diff %.3e > tolerance %.3e at %s (ref %.6g, cand %.6g; max|ref| %.4g)"
                            % (fn, d, tol, list(worst), r[worst], c[worst], scale))
        if verbose:
            lines.append("  %-36s max_abs %.3e  max|ref| %8.4g  tol %.1e%s"
                         % (name, d, scale, tol, "" if d <= tol else "  FAIL"))
        if name == "logits" and r.ndim == 2:
            rt = r.argmax(-1)
            ct = c.argmax(-1)
            flips = []
            for pos in np.nonzero(rt != ct)[0]:
                gap = r[pos, rt[pos]] - r[pos, ct[pos]]
                if gap > TIE:
                    flips.append((int(pos), int(rt[pos]), int(ct[pos]), float(gap)))
            top1 = {"positions": int(r.shape[0]), "agree": int((rt == ct).sum()), "flips": flips}
            if mode == "bf16" and flips:
                problems.append("logits: top-1 differs at %d of %d positions: %s"
                                % (len(flips), r.shape[0],
                                   ", ".join("pos %d ref %d cand %d (ref gap %.3g)" % f for f in flips[:8])))
    lines.append("  %-28s %5s %12s %12s  %s" % ("hook kind", "files", "max_abs", "max|ref|", "worst file"))
    order = sorted(kinds, key=lambda k: (k.startswith("blocks."), k))
    for k in order:
        kd = kinds[k]
        lines.append("  %-28s %5d %12.3e %12.4g  %s%s" % (k, kd["n"], kd["max_abs"], kd["max_ref"], kd["file"],
                                                         "  FAIL(%d)" % kd["fail"] if kd["fail"] else ""))
    if top1:
        lines.append("  logits top-1: %d/%d positions agree%s"
                     % (top1["agree"], top1["positions"],
                        "" if top1["agree"] == top1["positions"] else
                        " (%d real flips, the rest ties within %.0e)" % (len(top1["flips"]), TIE)))
    if extra:
        lines.append("  candidate-only files (ignored): %s" % ", ".join(extra[:10]) +
                     (" ..." if len(extra) > 10 else ""))
    summary = {
        "mode": mode,
        "files": len(ref_files),
        "max_abs_logits": per_file.get("logits", {}).get("max_abs"),
        "max_abs_hooks": max((v["max_abs"] for n, v in per_file.items() if n != "logits"), default=None),
        "kinds": {k: kinds[k]["max_abs"] for k in order},
        "top1": top1,
        "problems": problems,
    }
    return not problems, lines, summary


def main(argv=None):
    ap = argparse.ArgumentParser(prog="compare_acts.py", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n\n")[0],
                                 epilog="Example: compare_acts.py ref/ cand/ --bf16 --label olmo3-bf16")
    ap.add_argument("ref", help="reference folder of .npy files (path)")
    ap.add_argument("cand", help="candidate folder of .npy files (path)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--f32", action="store_true", help="f32 tolerance: max abs diff <= 1e-4 (flag)")
    g.add_argument("--bf16", action="store_true",
                   help="bf16 tolerance: logits top-1 + 2e-2; hooks 2e-2*max(1,max|ref|) (flag)")
    ap.add_argument("--label", default=None, help="name printed in the report (string, default: cand path)")
    ap.add_argument("--verbose", action="store_true", help="one line per file (flag)")
    ap.add_argument("--json", default=None, help="also write the summary as JSON to this file (path)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if not os.path.isdir(a.ref):
        print("compare_acts.py: %s: reference folder does not exist" % a.ref, file=sys.stderr)
        return 2
    mode = "f32" if a.f32 else "bf16"
    label = a.label or a.cand
    ok, lines, summary = compare(a.ref, a.cand, mode, verbose=a.verbose)
    print("compare %s (%s tolerance): %s" % (label, mode, "PASS" if ok else "FAIL"))
    for ln in lines:
        print(ln)
    for p in summary.get("problems", []) if summary else []:
        print("  FAIL %s" % p)
    if summary:
        la = summary["max_abs_logits"]
        hk = summary["max_abs_hooks"]
        t1 = summary["top1"]
        print("SUMMARY %s %s %s max_abs_logits=%s max_abs_hooks=%s top1=%s"
              % (label, mode, "PASS" if ok else "FAIL",
                 "%.3e" % la if la is not None else "-", "%.3e" % hk if hk is not None else "-",
                 "%d/%d" % (t1["agree"], t1["positions"]) if t1 else "-"))
        if a.json:
            summary["label"] = label
            summary["pass"] = ok
            with open(a.json, "w") as f:
                json.dump(summary, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
