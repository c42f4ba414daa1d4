"""model.patch runs the library's run engine: same records and results as `clens patch` for
fast, rerun and atp on every architecture; a patch written by hand with run_with_hooks equals
model.patch at every site type (1e-5); a Python metric gives the built-in's recoveries through
the C callback; model.patch_ids (the patcher, one head of z by name); clens.pairs equals
`clens pairs`."""
import json
import os
import subprocess

import numpy as np
import pytest

import clens
from conftest import CLENS, run_cli

SITES = ["resid_pre", "attn_out", "mlp_out", "z"]
ALL_SITES = "resid_pre,resid_post,attn_out,mlp_out,z"


@pytest.fixture(scope="module")
def model(tok_model):
    return clens.Model(tok_model)


@pytest.fixture(scope="module")
def result(model, pairs_file):
    return model.patch(pairs_file, sites=SITES, n=3, min_diff=0, prompt="raw")


def _strip(rec):
    rec = dict(rec)
    rec.pop("seconds")
    return rec


def _same_run(py, cli_dir):
    cli = json.loads(open(os.path.join(cli_dir, "results.json")).read())
    res = dict(py.results)
    assert cli.pop("timing") and res.pop("timing")
    assert res == cli
    recs = [json.loads(line) for line in open(os.path.join(cli_dir, "records.jsonl"))]
    assert [_strip(r) for r in recs] == [_strip(r) for r in py.records]
    settings = json.loads(open(os.path.join(cli_dir, "settings.json")).read())
    assert settings["settings"] == py.settings["settings"]
    assert settings["settings_hash"] == py.settings["settings_hash"]


def test_equals_cli(model, pairs_file, result, tok_model, tmp_path):
    run_cli("patch", tok_model, "--pairs", pairs_file, "--out", tmp_path / "run", "--n", 3, "--min-diff", 0,
            "--sites", ",".join(SITES), "--prompt", "raw", "--quiet")
    _same_run(result, tmp_path / "run")
    assert len(result.ids) == 3
    # the arrays are the records' values; resid_pre after the last block recovers 100%
    assert result.patched["z"].shape == (3, model.n_layers, model.n_heads)
    assert np.all(result.recovery["resid_pre"][:, -1] == 100.0)
    assert result.recovery["resid_pre"].shape == (3, model.n_layers + 1)


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "llama", "olmo2", "olmo3"])
def test_methods_equal_cli_every_arch(org_setup, arch, tmp_path):
    """fast, rerun and atp through model.patch == `clens patch --method M`, every site type
    (atp runs on every architecture)."""
    models, pairs = org_setup
    m = clens.Model(models[arch])
    opts = dict(sites=ALL_SITES.split(","), n=2, min_diff=0, prompt="raw", filter="seed", bootstrap=50)
    for method in ("fast", "rerun", "atp"):
        cli = [CLENS, "patch", models[arch], "--pairs", pairs, "--out", str(tmp_path / method), "--n", "2",
               "--min-diff", "0", "--sites", ALL_SITES, "--prompt", "raw", "--filter", "seed", "--bootstrap", "50",
               "--method", method, "--quiet"]
        r = subprocess.run(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert r.returncode == 0, r.stderr
        py = m.patch(pairs, method=method, **opts)
        assert py.settings["settings"]["method"] == method and len(py.ids) == 2
        _same_run(py, tmp_path / method)


def metric_fn(result):
    ids = result.settings["settings"]["metrics"]["logprob_mass"]["ids"]
    return clens.logprob_mass(ids)


def test_hand_patch_equals_sweep(model, pairs_file, result):
    """clean run cached, the corrupted run with a hook that writes the clean final-position
    activation: the metric of its final logits == model.patch's value, every site."""
    f = metric_fn(result)
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
    """The Python callable runs inside the engine through the C callback: same kept pairs, same
    patched values (1e-9 relative: numpy's float64 sums against the library's), same recoveries."""
    f = metric_fn(result)
    r2 = model.patch(pairs_file, sites=SITES, n=3, min_diff=0, prompt="raw", metric=f)
    assert r2.metric == "logprob_mass_of" and r2.results["metric"] == "logprob_mass_of"
    assert r2.settings["settings"]["metrics"]["logprob_mass_of"] == {"kind": "callback"}
    assert r2.ids == result.ids
    for rec in r2.records:  # the built-ins are recorded beside the callable's values
        if rec["status"] == "kept":
            assert set(rec["metrics"]) == {"logprob_mass", "logit_mean", "logprob_mass_of"}
    for t in SITES:
        assert r2.recovery[t].shape == result.recovery[t].shape
        assert np.nanmax(np.abs(r2.recovery[t] - result.recovery[t])) < 1e-6, t
        rel = np.abs(r2.patched[t] - result.patched[t]) / np.maximum(np.abs(result.patched[t]), 1e-300)
        assert np.nanmax(rel) <= 1e-9, (t, np.nanmax(rel))
    assert np.max(np.abs(r2.clean - result.clean) / np.abs(result.clean)) <= 1e-9
    assert r2.results["best_layer"] == result.results["best_layer"]
    # sites by hook name: those layers of those types (z: every head)
    r3 = model.patch(pairs_file, sites=["blocks.1.hook_attn_out", "blocks.0.attn.hook_z"], n=3, min_diff=0,
                     prompt="raw", metric=lambda logits: float(logits[100]), metric_name="logit_100")
    assert r3.layers == {"attn_out": [0, 1], "z": [0, 1]} and r3.patched["z"].shape == (3, 2, model.n_heads)
    assert r3.metric == "logit_100"


def test_metric_errors(model, pairs_file):
    def boom(logits):
        raise ZeroDivisionError("metric failed")
    with pytest.raises(ZeroDivisionError, match="metric failed"):
        model.patch(pairs_file, sites="resid_pre", n=1, min_diff=0, prompt="raw", metric=boom)
    with pytest.raises(clens.ArgError, match="needs a name"):
        model.patch(pairs_file, sites="resid_pre", n=1, min_diff=0, prompt="raw", metric=lambda x: 0.0)
    with pytest.raises(clens.ArgError, match="needs the metric's gradient"):
        model.patch(pairs_file, sites="resid_pre", n=1, min_diff=0, prompt="raw", method="atp",
                    metric=clens.logprob_mass([5]))
    with pytest.raises(clens.ArgError, match="site name 'blocks.0.hook_nope'"):
        model.patch(pairs_file, sites="blocks.0.hook_nope", n=1, min_diff=0, prompt="raw")
    with pytest.raises(clens.ArgError, match="out of range"):
        model.patch_ids([1, 2, 3], [1, 4, 3], ["blocks.0.attn.hook_z[99]"], tokens=[5])
    assert model(model.to_tokens("2 + 2 ="))[-1].shape == (model.vocab,)  # still usable


def test_patch_ids_one_head(model, pairs_file, result):
    """model.patch_ids (the library's patcher on one pair of ids): one head of z by its site name
    equals model.patch's value, with a built-in and with a Python metric."""
    f = metric_fn(result)
    pair = next(p for p in clens.read_pairs(pairs_file) if p["id"] == result.ids[0])
    clean, corr, _ = model.pair_ids(pair, prompt="raw")
    ids = result.settings["settings"]["metrics"]["logprob_mass"]["ids"]
    sites = ["blocks.1.attn.hook_z[2]", "blocks.0.hook_mlp_out", "blocks.%d.hook_resid_pre" % model.n_layers]
    for method in ("fast", "rerun"):
        c, r, v = model.patch_ids(clean, corr, sites, tokens=ids, method=method)
        want = [result.clean[0], result.corr[0], result.patched["z"][0, 1, 2], result.patched["mlp_out"][0, 0], c]
        tol = 0 if method == "fast" else 1e-5  # fast: the same arithmetic as model.patch's sweep
        assert np.max(np.abs(np.array([c, r] + list(v)) - want)) <= tol
        c2, r2, v2 = model.patch_ids(clean, corr, sites, metric=f, method=method)
        assert abs(c2 - c) <= 1e-9 * abs(c) and np.allclose(v2, v, rtol=1e-9, atol=0)


def test_pairs_equal_cli(pairs_file, tmp_path):
    from conftest import SHARED
    data = os.path.join(SHARED, "data", "gsm8k", "test.jsonl")
    ps, stats = clens.pairs(data, format="gsm8k", limit=12, return_stats=True, out=tmp_path / "p.jsonl")
    lines = [json.loads(line) for line in open(pairs_file)]
    assert ps == lines and stats["pairs"] == 12
    assert (tmp_path / "p.jsonl").read_bytes() == open(pairs_file, "rb").read()
    assert clens.read_pairs(pairs_file) == lines
