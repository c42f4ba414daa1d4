"""model.patch: same records and results as `clens patch`; a patch written by hand with
run_with_hooks equals the fast sweep at every site type (1e-5); a Python metric gives the
built-in's recoveries; clens.pairs equals `clens pairs`."""
import json

import numpy as np
import pytest

import clens
from conftest import run_cli

SITES = ["resid_pre", "attn_out", "mlp_out", "z"]


@pytest.fixture(scope="module")
def model(tok_model):
    return clens.Model(tok_model)


@pytest.fixture(scope="module")
def result(model, pairs_file):
    return model.patch(pairs_file, sites=SITES, n=3, min_diff=0, prompt="raw")


def test_equals_cli(model, pairs_file, result, tok_model, tmp_path):
    run_cli("patch", tok_model, "--pairs", pairs_file, "--out", tmp_path / "run", "--n", 3, "--min-diff", 0,
            "--sites", ",".join(SITES), "--prompt", "raw", "--quiet")
    cli = json.loads((tmp_path / "run" / "results.json").read_text())
    py = dict(result.results)
    assert cli.pop("timing") and py.pop("timing")
    assert py == cli
    recs = [json.loads(l) for l in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert len(recs) == len(result.records) >= 3
    for a, b in zip(recs, result.records):
        a, b = dict(a), dict(b)
        a.pop("seconds"), b.pop("seconds")
        assert a == b
    # the arrays are the records' values; resid_pre after the last block recovers 100%
    assert result.patched["z"].shape == (3, model.n_layers, model.n_heads)
    assert np.all(result.recovery["resid_pre"][:, -1] == 100.0)
    assert result.recovery["resid_pre"].shape == (3, model.n_layers + 1)


def metric_fn(model, result):
    ids = result.settings["settings"]["metrics"]["logprob_mass"]["ids"]
    return clens.logprob_mass(ids)


def test_hand_patch_equals_sweep(model, pairs_file, result):
    """clean run cached, the corrupted run with a hook that writes the clean final-position
    activation: the metric of its final logits == model.patch's value, every site."""
    f = metric_fn(model, result)
    pairs = clens.read_pairs(pairs_file)
    H, D = model.n_heads, model.head_dim
    checked = 0
    for k, pid in enumerate(result.ids[:2]):  # two pairs: every site of each
        pair = next(p for p in pairs if p["id"] == pid)
        clean, corr, reason = model.pair_ids(pair, prompt="raw")
        assert reason is None
        _, cache = model.run_with_cache(clean)
        assert abs(f(model(clean)[-1]) - result.clean[k]) < 1e-5
        assert abs(f(model(corr)[-1]) - result.corr[k]) < 1e-5
        for t in SITES:
            for i, layer in enumerate(result.layers[t]):
                if t == "resid_pre" and layer == model.n_layers:
                    name, heads = "blocks.%d.hook_resid_post" % (layer - 1), [None]
                elif t == "z":
                    name, heads = "blocks.%d.attn.hook_z" % layer, range(H)
                else:
                    name, heads = "blocks.%d.hook_%s" % (layer, t), [None]
                for h in heads:
                    sl = slice(None) if h is None else slice(h * D, (h + 1) * D)

                    def write_clean(act, hook, name=name, sl=sl):
                        last = np.nonzero(hook.positions == len(corr) - 1)[0]
                        act[last, sl] = cache[name][-1, sl]
                    got = f(model.run_with_hooks(corr, fwd_hooks=[(name, write_clean)])[-1])
                    want = result.patched[t][k, i] if h is None else result.patched[t][k, i, h]
                    assert abs(got - want) < 1e-5, (t, layer, h, got, want)
                    checked += 1
    L = model.n_layers
    assert checked == 2 * ((L + 1) + 2 * L + L * H)


def test_python_metric_equals_builtin(model, pairs_file, result):
    f = metric_fn(model, result)
    r2 = model.patch(pairs_file, sites=SITES, n=3, min_diff=0, prompt="raw", metric=f)
    assert r2.metric == "logprob_mass_of" and r2.results["metric"] == "logprob_mass_of"
    assert r2.ids == result.ids
    for t in SITES:
        assert r2.recovery[t].shape == result.recovery[t].shape
        assert np.nanmax(np.abs(r2.recovery[t] - result.recovery[t])) < 1e-5, t
        assert np.nanmax(np.abs(r2.patched[t] - result.patched[t])) < 1e-9, t
    assert r2.results["best_layer"] == result.results["best_layer"]
    # sites by hook name, one head of z
    r3 = model.patch(pairs_file, sites=["blocks.1.hook_attn_out", ("blocks.0.attn.hook_z", 2)], n=3, min_diff=0,
                     prompt="raw", metric=lambda logits: float(logits[100]), metric_name="logit_100")
    assert r3.layers == {"attn_out": [1], "z": [0]} and r3.patched["z"].shape == (3, 1, model.n_heads)
    assert np.isnan(r3.patched["z"][:, 0, 0]).all() and not np.isnan(r3.patched["z"][:, 0, 2]).any()


def test_pairs_equal_cli(pairs_file, tmp_path):
    import os
    from conftest import SHARED
    data = os.path.join(SHARED, "data", "gsm8k", "test.jsonl")
    ps, stats = clens.pairs(data, format="gsm8k", limit=12, return_stats=True, out=tmp_path / "p.jsonl")
    lines = [json.loads(l) for l in open(pairs_file)]
    assert ps == lines and stats["pairs"] == 12
    assert (tmp_path / "p.jsonl").read_bytes() == open(pairs_file, "rb").read()
    assert clens.read_pairs(pairs_file) == lines
