"""Attribution patching against exact patching on the same pairs: the Pearson r of the per-pair
effects (m_patched - m_corr) over pairs x layers (x heads), per metric and site type. Used by
tools/organism_results.py (docs/organism-results.md) and tests/suites/77-organisms.long.sh."""
import json, os
import numpy as np

SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out", "z")
METRICS = ("logprob_mass", "logit_mean")


def kept_records(run_dir):
    """{pair id: record} of the kept records of a clens patch run folder."""
    with open(os.path.join(run_dir, "records.jsonl")) as f:
        return {r["id"]: r for r in map(json.loads, f) if r["status"] == "kept"}


def correlations(exact, atp):
    """(pair ids kept in both, {(metric, site): r or nan}) for two kept_records dicts."""
    ids = sorted(set(exact) & set(atp))
    out = {}
    for metric in METRICS:
        for site in SITES:
            x, y = [], []
            for i in ids:
                for recs, acc in ((exact, x), (atp, y)):
                    mm = recs[i]["metrics"][metric]
                    acc.extend((np.ravel(np.array(mm["patched"][site], float)) - mm["corr"]).tolist())
            x, y = np.array(x), np.array(y)
            out[(metric, site)] = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
    return ids, out
