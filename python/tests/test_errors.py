"""Errors: a hook that raises propagates its exception and leaves the model usable; bad paths,
ids and names raise clens.Error subclasses with the library's one-line message; 1,000 calls
do not grow the resident set (no leak)."""
import numpy as np
import pytest

import clens


@pytest.fixture(scope="module")
def model(arch_models):
    return clens.Model(arch_models["qwen2-f32"])


def test_hook_exception_propagates(model):
    ids = [1, 2, 3, 4, 5, 6]
    base = model(ids)
    calls = []

    class Boom(Exception):
        pass

    def bad(act, hook):
        calls.append(hook.name)
        raise Boom("from the hook at " + hook.name)
    with pytest.raises(Boom, match="blocks.0.hook_mlp_out"):
        model.run_with_hooks(ids, fwd_hooks=[(lambda n: "mlp_out" in n, bad)])
    assert calls == ["blocks.0.hook_mlp_out"]  # later hooks of the failed pass are skipped
    assert np.array_equal(model(ids), base)
    _, cache = model.run_with_cache(ids)
    assert len(cache) == len(model.hook_names)
    # a replacement of the wrong shape is an exception too, and the model stays usable
    with pytest.raises(ValueError):
        model.run_with_hooks(ids, fwd_hooks=[("hook_embed", lambda a, h: np.zeros(3))])
    assert np.array_equal(model(ids), base)


def test_bad_path():
    with pytest.raises(clens.IOError) as e:
        clens.Model("/nonexistent/model")
    assert e.value.code == 1 and e.value.status == "io"
    assert str(e.value) == "/nonexistent/model: not a folder, and not an org/name[@revision] model id"
    assert isinstance(e.value, clens.Error)


def test_bad_ids(model):
    with pytest.raises(clens.ArgError) as e:
        model([1, 2, model.vocab])
    assert str(e.value) == "forward: row 2: token id %d outside the vocabulary [0, %d)" % (model.vocab, model.vocab)
    assert e.value.code == 4
    with pytest.raises(clens.ArgError, match="token id -1 outside"):
        model.generate([1, -1], max_new_tokens=2)
    with pytest.raises(clens.ArgError, match="empty"):
        model([])
    with pytest.raises(clens.ArgError, match="unknown hook name 'blocks.99.hook_resid_pre'"):
        model.run_with_cache([1, 2], names=["blocks.99.hook_resid_pre"])
    with pytest.raises(clens.ArgError, match="matmul"):
        clens.Model(model.info["path"], matmul="fast")
    assert model([1, 2]).shape == (2, model.vocab)


def test_bad_pairs_file(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": 1}\n')
    with pytest.raises(clens.Error) as e:
        clens.read_pairs(p)
    assert str(e.value).startswith(str(p) + ":1:")


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def test_no_leak(model):
    """1,000 calls (200 each of forward, cache, hooks, generate, a failing call) after a warm-up."""
    ids = list(range(1, 17))
    hooks = [("blocks.1.hook_resid_pre", lambda a, h: a * 1.0)]

    def bad():
        try:
            model([10 ** 6])
        except clens.ArgError:
            pass
    calls = [lambda: model(ids), lambda: model.run_with_cache(ids, names=lambda n: "z" in n),
             lambda: model.run_with_hooks(ids, fwd_hooks=hooks), lambda: model.generate(ids, max_new_tokens=2), bad]
    for i in range(100):  # warm up allocator pools
        calls[i % 5]()
    before = rss_kib()
    for i in range(1000):
        calls[i % 5]()
    grown = rss_kib() - before
    # every forward allocates a KV context and scratch (~50 KiB) and ~25 KiB of logits that
    # must all come back: a leak of any of them would grow the RSS by >= 15 MiB
    assert grown < 4096, "RSS grew by %d KiB over 1,000 calls" % grown
