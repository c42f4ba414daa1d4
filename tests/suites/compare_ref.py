#!/usr/bin/python3
"""Independent reference for `clens compare` (tests/suites/70-compare.sh).

Recomputes from the run folders' own files (settings.json, records.jsonl;
docs/patch-output.md), with numpy and no clens code, every statistic that
comparison.json reports, and compares:
  - the kept-pair selection (first settings.n kept records by candidate),
  - per-pair recovery 100*(m_patched - m_corr)/(m_clean - m_corr),
  - resid_pre numbering (resid_post L -> L+1) and relative depth L/n_layers,
  - per-point mean, population SD (np.std), bootstrap 95% CI,
  - increments and their paired bootstrap CIs,
  - the median increment, spikes and the three labels (point, CI low, CI high),
  - the critical layer and its bootstrap CI,
  - the pairwise differences on the depth grid with paired / independent CIs,
  - the number of pairs.csv rows and their values.
The bootstrap uses the same resampling indices as clens (docs/compare.md
"Bootstrap"): xoshiro256** seeded with four splitmix64 outputs, bounded draws
by rejection, written here from the published algorithm (prng.di.unimi.it);
percentiles by np.percentile (linear). Tolerance 1e-9 absolute (sums in the
same order; np.percentile's lerp may differ from C's by an ulp).
usage: compare_ref.py COMPARISON_DIR RUN_DIR... (in the order given to compare)
       compare_ref.py --evidence COMPARISON_DIR RUN_DIR PROBE_DIR ATP_DIR STEER_DIR...
  (the probe / steering / AtP evidence of the first model, docs/compare.md "Probe, steering and
  AtP beside patching": the per-layer join on resid_pre numbering, the probe values, the steering
  effect and random control with their bootstrap CIs from steer.json's per-pair values, and AtP vs
  exact per site from both runs' records: means over the pairs kept in both, Pearson and Spearman
  (average ranks) per site type, the flags)
"""
import csv
import json
import math
import sys

import numpy as np

M64 = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Rng:
    def __init__(self, seed):
        s, self.s = seed & M64, []
        for _ in range(4):
            s = (s + 0x9E3779B97F4A7C15) & M64
            z = s
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        lim = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next()
            if x < lim:
                return x % n


_draws = {}


def draws(seed, B, m):
    key = (seed, B, m)
    if key not in _draws:
        r = Rng(seed)
        _draws[key] = [[r.below(m) for _ in range(m)] for _ in range(B)]
    return _draws[key]


def pct(v):
    return [float(x) for x in np.percentile(np.array(v), [2.5, 97.5])]


def boot_mean_ci(x, seed, B):
    m = len(x)
    means = []
    for d in draws(seed, B, m):
        s = 0.0
        for j in d:
            s += x[j]
        means.append(s / m)
    return pct(means)


def boot_delta_ci(xa, xb, seed, B):
    m = len(xa)
    out = []
    for d in draws(seed, B, m):
        sa = sb = 0.0
        for j in d:
            sb += xb[j]
        for j in d:
            sa += xa[j]
        out.append(sb / m - sa / m)
    return pct(out)


def load_run(d):
    st = json.load(open(d + "/settings.json"))
    s = st["settings"]
    recs = [json.loads(l) for l in open(d + "/records.jsonl") if l.strip()]
    recs.sort(key=lambda r: r["candidate"])
    kept = [r for r in recs if r["status"] == "kept"][: s["n"]]
    ptype = "resid_pre" if "resid_pre" in s["site_types"] else "resid_post"
    offset = 1 if ptype == "resid_post" else 0
    nl = st["provenance"]["n_layers"]
    layers = s["layers"][ptype]
    met = s["metric"]
    rec, ids = [], []
    for r in kept:
        m = r["metrics"][met]
        cl, co = m["clean"], m["corr"]
        row = []
        for v in m["patched"][ptype]:
            row.append(None if v is None or abs(cl - co) < 1e-9 else (100.0 * (v - co)) / (cl - co))
        rec.append(row)
        ids.append(str(r["id"]))
    return dict(settings=s, kept=kept, ptype=ptype, offset=offset, n_layers=nl, layers=layers, rec=rec, ids=ids)


def close(a, b, what, tol=1e-9):
    if a is None or b is None:
        assert a is None and b is None, f"{what}: {a} vs {b}"
        return
    assert abs(a - b) <= tol * max(1.0, abs(a)), f"{what}: clens {a} vs reference {b}"


def label_of(spikes, depth, last, lo, hi):
    mid = any(sp and lo <= depth[i] <= hi for i, sp in spikes.items())
    fin = spikes.get(last, False)
    return "hybrid" if mid and fin else "mid-spike" if mid else "final-spike" if fin else "gradual"


def analyse(run, P):
    B, seed = P["resamples"], P["seed"]
    L = run["layers"]
    n = len(run["rec"])
    pre = [l + run["offset"] for l in L]
    depth = [p / run["n_layers"] for p in pre]
    cols = [[run["rec"][i][j] for i in range(n)] for j in range(len(L))]
    pts = []
    for j, c in enumerate(cols):
        x = [v for v in c if v is not None]
        s = 0.0
        for v in x:
            s += v
        pts.append(dict(layer=L[j], pre=pre[j], depth=depth[j], mean=s / len(x), sd=float(np.std(np.array(x))),
                        ci=boot_mean_ci(x, seed, B), n=len(x)))
    steps = {}
    for j in range(1, len(L)):
        both = [i for i in range(n) if cols[j][i] is not None and cols[j - 1][i] is not None]
        xa, xb = [cols[j - 1][i] for i in both], [cols[j][i] for i in both]
        steps[j] = dict(delta=pts[j]["mean"] - pts[j - 1]["mean"], ci=boot_delta_ci(xa, xb, seed, B),
                        trivial=pre[j] >= run["n_layers"])
    cand = sorted(s["delta"] for s in steps.values() if not s["trivial"])
    k = len(cand)
    med = cand[k // 2] if k % 2 else (cand[k // 2 - 1] + cand[k // 2]) / 2
    last = max(j for j, s in steps.items() if not s["trivial"])
    labels = []
    for which in range(3):
        spikes = {}
        for j, s in steps.items():
            x = s["delta"] if which == 0 else s["ci"][which - 1]
            spikes[j] = (not s["trivial"]) and x >= P["min_jump"] and (s["ci"][0] > med or s["ci"][1] < med)
        labels.append(label_of(spikes, depth, last, P["mid_range"][0], P["mid_range"][1]))
    crit = next((j for j, p in enumerate(pts) if p["mean"] >= P["critical_pct"]), None)
    cvals = []
    for d in draws(seed, B, n):
        c = math.inf
        for j in range(len(L)):
            x = [run["rec"][i][j] for i in d if run["rec"][i][j] is not None]
            if x and sum_seq(x) / len(x) >= P["critical_pct"]:
                c = pre[j]
                break
        cvals.append(c)
    cvals.sort()
    return dict(pts=pts, steps=steps, median=med, labels=labels, crit=crit, crit_vals=cvals, depth=depth, pre=pre)


def sum_seq(x):
    s = 0.0
    for v in x:
        s += v
    return s


def interp(depth, vals, g):
    eps = 1e-12
    if g < depth[0] - eps or g > depth[-1] + eps:
        return None
    for j in range(len(depth)):
        if abs(g - depth[j]) <= eps:
            return vals[j]
        if j + 1 < len(depth) and depth[j] < g < depth[j + 1]:
            t = (g - depth[j]) / (depth[j + 1] - depth[j])
            return vals[j] + t * (vals[j + 1] - vals[j])
    return None


def res_means(run, idx):
    out = []
    for j in range(len(run["layers"])):
        x = [run["rec"][i][j] for i in idx if run["rec"][i][j] is not None]
        out.append(sum_seq(x) / len(x) if x else None)
    return out


def main():
    out, runs = sys.argv[1], sys.argv[2:]
    cmp = json.load(open(out + "/comparison.json"))
    P = cmp["params"]
    B, seed = P["resamples"], P["seed"]
    R = [load_run(d) for d in runs]
    A = [analyse(r, P) for r in R]
    checked = 0
    for r, a, m in zip(R, A, cmp["models"]):
        assert m["n_pairs"] == len(r["rec"]), (m["n_pairs"], len(r["rec"]))
        assert m["n_layers"] == r["n_layers"] and m["site_type"] == r["ptype"]
        for j, (p, q) in enumerate(zip(m["profile"], a["pts"])):
            assert p["layer"] == q["layer"] and p["layer_resid_pre"] == q["pre"], (p, q)
            close(p["depth"], q["depth"], "depth")
            close(p["mean"], q["mean"], f"{m['label']} mean L{q['layer']}")
            close(p["sd"], q["sd"], f"{m['label']} sd L{q['layer']}")
            close(p["ci95"][0], q["ci"][0], f"{m['label']} ci lo L{q['layer']}")
            close(p["ci95"][1], q["ci"][1], f"{m['label']} ci hi L{q['layer']}")
            assert p["n"] == q["n"]
            if j:
                s = a["steps"][j]
                close(p["delta"], s["delta"], f"{m['label']} delta L{q['layer']}")
                close(p["delta_ci95"][0], s["ci"][0], f"{m['label']} delta ci lo L{q['layer']}")
                close(p["delta_ci95"][1], s["ci"][1], f"{m['label']} delta ci hi L{q['layer']}")
                assert p["trivial"] == s["trivial"]
            checked += 1
        close(m["median_delta"], a["median"], "median delta")
        lab = m["profile_label"]
        assert [lab["point"], lab["at_ci_low"], lab["at_ci_high"]] == a["labels"], (m["label"], lab, a["labels"])
        c = m["critical"]
        if a["crit"] is None:
            assert c["layer"] is None
        else:
            assert c["layer_resid_pre"] == a["pre"][a["crit"]], (c, a["crit"])
        lo, hi = c["ci95_resid_pre"]
        ref = a["crit_vals"]
        h_lo, h_hi = (B - 1) * 0.025, (B - 1) * 0.975

        def q(h):
            k = int(math.floor(h))
            if math.isinf(ref[k]) or (k + 1 < B and math.isinf(ref[k + 1]) and h > k):
                return None  # JSON null: not reached
            return ref[k] + (h - k) * (ref[k + 1] - ref[k]) if k + 1 < B else ref[k]
        close(lo, q(h_lo), "critical ci lo")
        close(hi, q(h_hi), "critical ci hi")
        assert c["resamples_not_reached"] == sum(1 for v in ref if math.isinf(v))
    # pairwise differences
    k = 0
    grid_n = int(math.floor(1.0 / P["grid_step"] + 1e-9)) + 1
    for ia in range(len(R)):
        for ib in range(ia + 1, len(R)):
            d = cmp["differences"][k]
            k += 1
            ra, rb = R[ia], R[ib]
            paired = len(ra["ids"]) == len(rb["ids"]) and set(ra["ids"]) == set(rb["ids"])
            assert d["paired"] == paired, (d["a"], d["b"], d["paired"], paired)
            ma = [p["mean"] for p in A[ia]["pts"]]
            mb = [p["mean"] for p in A[ib]["pts"]]
            grid = [g * P["grid_step"] for g in range(grid_n)]
            pts = [(g, interp(A[ia]["depth"], ma, g), interp(A[ib]["depth"], mb, g)) for g in grid]
            pts = [(g, x - y) for g, x, y in pts if x is not None and y is not None]
            assert len(pts) == len(d["grid"]), (len(pts), len(d["grid"]))
            vals = [[] for _ in pts]
            if paired:
                mp = [rb["ids"].index(i) for i in ra["ids"]]
                for dr in draws(seed, B, len(ra["ids"])):
                    va, vb = res_means(ra, dr), res_means(rb, [mp[i] for i in dr])
                    for t, (g, _) in enumerate(pts):
                        x, y = interp(A[ia]["depth"], va, g), interp(A[ib]["depth"], vb, g)
                        if x is not None and y is not None:
                            vals[t].append(x - y)
            else:
                rng = Rng(seed)
                for _ in range(B):
                    ia_idx = [rng.below(len(ra["ids"])) for _ in ra["ids"]]
                    ib_idx = [rng.below(len(rb["ids"])) for _ in rb["ids"]]
                    va, vb = res_means(ra, ia_idx), res_means(rb, ib_idx)
                    for t, (g, _) in enumerate(pts):
                        x, y = interp(A[ia]["depth"], va, g), interp(A[ib]["depth"], vb, g)
                        if x is not None and y is not None:
                            vals[t].append(x - y)
            for (g, dv), e, v in zip(pts, d["grid"], vals):
                close(e["depth"], g, "grid depth")
                close(e["diff"], dv, f"diff {d['a']}-{d['b']} at {g:.2f}")
                lo, hi = pct(v)
                close(e["ci95"][0], lo, f"diff ci lo at {g:.2f}")
                close(e["ci95"][1], hi, f"diff ci hi at {g:.2f}")
    # pairs.csv
    rows = list(csv.DictReader(open(out + "/pairs.csv")))
    want = 0
    for r, m in zip(R, cmp["models"]):
        s = r["settings"]
        for rec in r["kept"]:
            mm = rec["metrics"][s["metric"]]
            for t in s["site_types"]:
                for li, l in enumerate(s["layers"][t]):
                    v = mm["patched"][t][li]
                    want += len(v) if t == "z" else 1
        mine = [x for x in rows if x["model"] == m["label"]]
        # spot-check: every resid row's recovery against the reference
        prof = {(x["pair_id"], int(x["layer"])): float(x["recovery"]) for x in mine if x["site"] == r["ptype"]}
        for i, pid in enumerate(r["ids"]):
            for j, l in enumerate(r["layers"]):
                if r["rec"][i][j] is not None:
                    close(prof[(pid, l)], r["rec"][i][j], "pairs.csv recovery", 1e-12)
    assert len(rows) == want, (len(rows), want)
    print(f"  reference: {checked} profile points, {k} differences, {len(rows)} pairs.csv rows agree "
          f"(B = {B}, same resampling indices, tolerance 1e-9)")


def avg_ranks(x):
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def corr(x, y):
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])


def evidence(out, run_dir, probe_dir, atp_dir, steer_dirs):
    cmp = json.load(open(out + "/comparison.json"))
    P = cmp["params"]
    B, seed = P["resamples"], P["seed"]
    m = cmp["models"][0]
    ev = m["evidence"]
    run = load_run(run_dir)
    a = analyse(run, P)
    nl = run["n_layers"]
    want = {}
    for q in a["pts"]:
        want.setdefault(q["pre"], {})["recovery"] = q
    pj = json.load(open(probe_dir + "/probe.json"))
    for L in pj["layers"]:
        h = L["hook"].split(".")
        if h[2] not in ("hook_resid_pre", "hook_resid_post"):
            continue
        pre = int(h[1]) + (1 if h[2] == "hook_resid_post" else 0)
        if "probe" in want.get(pre, {}) and h[2] == "hook_resid_post":
            continue
        want.setdefault(pre, {})["probe"] = L
    for sd in steer_dirs:
        sj = json.load(open(sd + "/steer.json"))
        (L,) = sj["layers"]
        pre = L + (1 if sj["hook"] == "resid_post" else 0)
        al = sj["alphas"]
        ai = max(range(len(al)), key=lambda i: (abs(al[i]), -i))
        nA, nR = len(al), sj["n_random"]
        eff, ctl = [], []
        for pp in sj["pairs"]["per_pair"]:
            v = pp["values"]
            e = v[2 + 2 * ai + 1] - v[1]
            c = 0.0
            for r in range(1, nR + 1):
                c += v[2 + 2 * (r * nA + ai) + 1] - v[1]
            eff.append(e)
            ctl.append(c / nR)
        want.setdefault(pre, {})["steer"] = dict(layer=L, alpha=al[ai], eff=sum_seq(eff) / len(eff),
                                                 eff_ci=boot_mean_ci(eff, seed, B), ctl=sum_seq(ctl) / len(ctl),
                                                 ctl_ci=boot_mean_ci(ctl, seed, B), n=len(eff))
    rows = ev["layers"]
    assert [r["layer_resid_pre"] for r in rows] == sorted(want), ([r["layer_resid_pre"] for r in rows], sorted(want))
    n_probe = n_steer = 0
    for r in rows:
        w = want[r["layer_resid_pre"]]
        close(r["depth"], r["layer_resid_pre"] / nl, "evidence depth")
        if "recovery" in w:
            close(r["recovery"]["mean"], w["recovery"]["mean"], "evidence recovery")
            close(r["recovery"]["ci95"][0], w["recovery"]["ci"][0], "evidence recovery ci")
        else:
            assert r["recovery"] is None
        if "probe" in w:
            L = w["probe"]
            n_probe += 1
            assert r["probe"]["hook"] == L["hook"]
            close(r["probe"]["auroc"], L["logreg"]["auroc"], "probe auroc")
            close(r["probe"]["ci95"][0], L["logreg"]["auroc_ci95"][0], "probe auroc ci")
            close(r["probe"]["null_p95"], L["permutation_null"]["p95"], "probe null")
        else:
            assert r["probe"] is None
        if "steer" in w:
            S = w["steer"]
            n_steer += 1
            assert r["steer"]["layer"] == S["layer"] and r["steer"]["alpha"] == S["alpha"] and r["steer"]["n_pairs"] == S["n"]
            close(r["steer"]["effect"], S["eff"], "steer effect")
            close(r["steer"]["control"], S["ctl"], "steer control")
            for k in (0, 1):
                close(r["steer"]["effect_ci95"][k], S["eff_ci"][k], "steer effect ci")
                close(r["steer"]["control_ci95"][k], S["ctl_ci"][k], "steer control ci")
        else:
            assert r["steer"] is None
    # AtP beside exact
    at = load_run(atp_dir)
    met = run["settings"]["metric"]
    ak = {r["candidate"]: r for r in at["kept"]}
    common = [(r, ak[r["candidate"]]) for r in run["kept"] if r["candidate"] in ak]
    A = ev["atp"]
    assert A["n_common_pairs"] == len(common), (A["n_common_pairs"], len(common))
    n_sites = n_flag = 0
    types = {t["site_type"]: t for t in A["site_types"]}
    for t in run["settings"]["site_types"]:
        if t not in at["settings"]["site_types"]:
            continue
        T = types[t]
        lay_e, lay_a = run["settings"]["layers"][t], at["settings"]["layers"][t]
        heads = run["settings"]["n_heads"] if t == "z" else 1
        ex, ap, sites = [], [], []
        for li, L in enumerate(lay_e):
            if L not in lay_a:
                continue
            ai = lay_a.index(L)
            for h in range(heads):
                re_, ra_ = [], []
                for e, g in common:
                    me, mg = e["metrics"][met], g["metrics"][met]
                    ve, vg = me["patched"][t][li], mg["patched"][t][ai]
                    if t == "z":
                        ve, vg = ve[h], vg[h]
                    if ve is None or vg is None or abs(me["clean"] - me["corr"]) < 1e-9 or abs(mg["clean"] - mg["corr"]) < 1e-9:
                        continue
                    re_.append(100.0 * (ve - me["corr"]) / (me["clean"] - me["corr"]))
                    ra_.append(100.0 * (vg - mg["corr"]) / (mg["clean"] - mg["corr"]))
                if not re_:
                    continue
                x, y = sum_seq(re_) / len(re_), sum_seq(ra_) / len(ra_)
                d = abs(y - x)
                flag = ("sign" if x * y < 0 and abs(x) >= 1 and abs(y) >= 1 else
                        "magnitude" if d > 10 and d > 0.25 * abs(x) else None)
                ex.append(x); ap.append(y)
                sites.append(dict(layer=L, head=h if t == "z" else None, n=len(re_), exact=x, atp=y, flag=flag))
        assert T["n_sites"] == len(sites), (t, T["n_sites"], len(sites))
        for got, w in zip(T["sites"], sites):
            assert got["layer"] == w["layer"] and got["head"] == w["head"] and got["n"] == w["n"], (got, w)
            close(got["exact"], w["exact"], f"atp exact {t} L{w['layer']}")
            close(got["atp"], w["atp"], f"atp estimate {t} L{w['layer']}")
            assert got["flag"] == w["flag"], (t, got, w)
            n_flag += w["flag"] is not None
        close(T["pearson"], corr(ex, ap), f"pearson {t}")
        close(T["spearman"], corr(avg_ranks(ex), avg_ranks(ap)), f"spearman {t}")
        assert T["n_flagged"] == sum(w["flag"] is not None for w in sites)
        n_sites += len(sites)
    assert len(types) == sum(1 for t in run["settings"]["site_types"] if t in at["settings"]["site_types"])
    print(f"  evidence reference: {len(rows)} layers joined ({n_probe} probe, {n_steer} steer), {n_sites} AtP sites "
          f"in {len(types)} site types, {n_flag} flagged, correlations agree (tolerance 1e-9)")


if __name__ == "__main__":
    if sys.argv[1] == "--evidence":
        evidence(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        main()
