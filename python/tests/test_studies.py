"""The thin wrappers: model.capture / clens.probe / clens.compare write what `clens capture`,
`clens probe` and `clens compare` write; clens.study(plan=True) is `clens study --dry-run`;
model.steer / steer_pair equal a steering hook written by hand with run_with_hooks."""
import json
import os

import numpy as np
import pytest

import clens
from conftest import run_cli


@pytest.fixture(scope="module")
def org(org_setup):
    models, pairs = org_setup
    return clens.Model(models["qwen2"]), models["qwen2"], pairs


def _files(d):
    return sorted(f for f in os.listdir(d))


def test_capture_probe_equal_cli(org, tmp_path):
    m, path, pairs = org
    idx = m.capture(pairs, tmp_path / "cap", prompt="raw", limit=6)  # the default sites, as the CLI
    run_cli("capture", path, "--pairs", pairs, "--out", tmp_path / "cap-cli", "--prompt", "raw", "--limit", 6,
            "--quiet")
    assert _files(tmp_path / "cap") == _files(tmp_path / "cap-cli")
    for f in _files(tmp_path / "cap"):
        if f.endswith(".npy"):
            assert (tmp_path / "cap" / f).read_bytes() == (tmp_path / "cap-cli" / f).read_bytes(), f
    assert idx == json.loads((tmp_path / "cap-cli" / "index.json").read_text())
    pj = clens.probe(tmp_path / "cap", tmp_path / "probe", folds=2, bootstrap=20, permutations=2, random_dirs=2)
    run_cli("probe", tmp_path / "cap", "--out", tmp_path / "probe-cli", "--folds", 2, "--bootstrap", 20,
            "--permutations", 2, "--random-dirs", 2)
    cli = json.loads((tmp_path / "probe-cli" / "probe.json").read_text())
    strip = lambda d: {k: v for k, v in d.items() if k not in ("timing", "settings", "capture")}  # noqa: E731
    assert strip(pj) == strip(cli)


def test_compare_equals_cli(org, org_setup, tmp_path):
    m, path, pairs = org
    models, _ = org_setup
    m2 = clens.Model(models["olmo2"])
    for name, model in (("a", m), ("b", m2)):
        model.patch(pairs, sites="resid_pre", n=2, min_diff=0, prompt="raw", filter="seed", bootstrap=20,
                    out=tmp_path / name)
    md = clens.compare([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp", resamples=20,
                       labels=[str(tmp_path / "a") + "=A", str(tmp_path / "b") + "=B"])
    run_cli("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "cmp-cli", "--resamples", 20,
            "--label", str(tmp_path / "a") + "=A", "--label", str(tmp_path / "b") + "=B", "--quiet")
    assert md == (tmp_path / "cmp-cli" / "comparison.md").read_text()
    assert "| A |" in md or "A" in md


def test_study_plan_equals_cli(org_setup, tmp_path):
    models, pairs = org_setup
    f = tmp_path / "study.json"
    f.write_text(json.dumps({"models": [{"label": "Q", "model": models["qwen2"], "training": "SFT"}],
                             "pairs": {"mode": "file", "file": pairs}, "out": str(tmp_path / "st")}))
    try:
        plan = clens.study(f, plan=True)
    except clens.Error as e:
        pytest.fail("study plan: %s" % e)
    assert plan == run_cli("study", f, "--dry-run")


def test_steer_equals_hand_hook(org):
    m, _, _ = org
    ids = m.to_tokens("12 + 30 = 42")
    v = np.random.default_rng(3).standard_normal(m.d_model).astype(np.float32)
    layers = [1]
    new = m.steer(ids, v, alpha=4.0, layers=layers, max_new_tokens=1)

    def add(act, hook):
        act += np.float32(4.0) * v
    logits = m.run_with_hooks(ids, fwd_hooks=[("blocks.1.hook_resid_post", add)])
    assert new[0] == int(np.argmax(logits[-1]))
    plain = m.steer(ids, v, alpha=0.0, max_new_tokens=4)
    assert plain == m.generate(ids, max_new_tokens=4)
    (c0, r0), (c1, r1) = m.steer_pair(ids, ids, v, tokens=[5, 7], alpha=4.0, layers=layers, positions="last",
                                      metric="logit_mean")
    x = logits[-1].astype(np.float64)
    assert c0 == r0 and abs(c1 - (x[5] + x[7]) / 2) < 1e-4
    with pytest.raises(clens.ArgError, match="steering vector of shape"):
        m.steer(ids, v[:3])


def test_steer_mean_ablate_equals_hand_hook(org):
    """mean-ablate: x - alpha (x.u - m) u at the steered layer, as a hand-written hook."""
    m, _, _ = org
    ids = m.to_tokens("12 + 30 = 42")
    v = np.random.default_rng(5).standard_normal(m.d_model).astype(np.float32)
    u = v.astype(np.float64) / np.linalg.norm(v)
    mu = 0.75

    def mean_ablate(act, hook):
        x = act[-1].astype(np.float64)
        act[-1] = (x - (x @ u - mu) * u).astype(np.float32)
    logits = m.run_with_hooks(ids, fwd_hooks=[("blocks.1.hook_resid_post", mean_ablate)])
    (_, r0), (_, r1) = m.steer_pair(ids, ids, v, tokens=[5, 7], mode="mean-ablate", means=mu, layers=[1],
                                    positions="last", metric="logit_mean")
    x = logits[-1].astype(np.float64)
    assert abs(r1 - (x[5] + x[7]) / 2) < 1e-4 and abs(r1 - r0) > 1e-6
    # means = 0 is the plain ablation
    (_, a0), (_, a1) = m.steer_pair(ids, ids, v, tokens=[5, 7], mode="ablate", layers=[1], positions="last",
                                    metric="logit_mean")
    (_, z0), (_, z1) = m.steer_pair(ids, ids, v, tokens=[5, 7], mode="mean-ablate", means=0.0, layers=[1],
                                    positions="last", metric="logit_mean")
    assert z1 == a1
    with pytest.raises(clens.ArgError, match="needs means="):
        m.steer_pair(ids, ids, v, tokens=[5, 7], mode="mean-ablate")


def test_steer_sampled(org):
    """Sampled steering: alpha 0 draws model.generate's tokens for the same seed; a real vector changes them."""
    m, _, _ = org
    ids = m.to_tokens("12 + 30 = 42")
    v = np.random.default_rng(7).standard_normal(m.d_model).astype(np.float32) * 4
    kw = dict(max_new_tokens=6, temperature=1.3, top_k=30, seed=11)
    assert m.steer(ids, v, alpha=0.0, **kw) == m.generate(ids, **kw)
    a = m.steer(ids, v, alpha=3.0, **kw)
    assert a == m.steer(ids, v, alpha=3.0, **kw)
    assert a != m.generate(ids, **kw)
