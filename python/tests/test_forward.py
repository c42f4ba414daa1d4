"""Logits, every cached hook point and generation equal the CLI's outputs bit for bit, on every
architecture's test model; batches equal one sequence at a time."""
import json
import os

import numpy as np
import pytest

import clens
from conftest import ARCH_MODELS, ids_for, run_cli


@pytest.mark.parametrize("name", sorted(ARCH_MODELS))
def test_logits_and_cache_equal_cli(name, arch_models, tmp_path):
    path = arch_models[name]
    ids = ids_for(path, 13, seed=len(name))
    model = clens.Model(path)
    out = tmp_path / "acts"
    run_cli("activations", path, "--ids", ",".join(map(str, ids)), "--hooks", "all", "--out", out)
    logits = model(ids)
    assert logits.dtype == np.float32 and logits.shape == (13, model.vocab)
    assert np.array_equal(logits, np.load(out / "logits.npy"))
    logits2, cache = model.run_with_cache(ids)
    assert np.array_equal(logits2, logits)
    files = sorted(f[:-4] for f in os.listdir(out) if f != "logits.npy")
    assert sorted(cache) == files == sorted(model.hook_names)
    assert len(cache) == 2 + 5 * model.n_layers
    for hook, act in cache.items():
        assert np.array_equal(act, np.load(out / (hook + ".npy"))), hook
    # a filter selects a subset, same values
    _, sub = model.run_with_cache(ids, names=lambda n: n.endswith("hook_z"))
    assert sorted(sub) == ["blocks.%d.attn.hook_z" % l for l in range(model.n_layers)]
    assert all(np.array_equal(sub[k], cache[k]) for k in sub)
    assert sorted(model.run_with_cache(ids, names="blocks.*.attn.hook_z")[1]) == sorted(sub)


@pytest.mark.parametrize("name", sorted(ARCH_MODELS))
def test_generate_equals_cli(name, arch_models):
    path = arch_models[name]
    model = clens.Model(path)
    prompts = [ids_for(path, 7, seed=1), ids_for(path, 5, seed=2)]
    for opts, kw in (([], {}), (["--temperature", "0.8", "--top-k", "20", "--seed", "7"],
                                {"temperature": 0.8, "top_k": 20, "seed": 7})):
        f = os.path.join(os.path.dirname(path), name + "-prompts.json")
        with open(f, "w") as fh:
            json.dump(prompts, fh)
        lines = [json.loads(l) for l in run_cli("generate", path, "--ids-file", f, "--max-new", 12, *opts).splitlines()]
        got = model.generate(prompts, max_new_tokens=12, **kw)
        assert got == [l["ids"] for l in lines]
        assert len(got[0]) > 0
        one = run_cli("generate", path, "--ids", ",".join(map(str, prompts[0])), "--max-new", 12, *opts)
        assert model.generate(prompts[0], max_new_tokens=12, **kw) == json.loads(one)["ids"]


def test_batch_equals_single_and_cli(arch_models, tmp_path):
    path = arch_models["qwen2-f32"]
    model = clens.Model(path)
    batch = [ids_for(path, 9, seed=s) for s in (1, 2, 3)]
    f = tmp_path / "b.json"
    f.write_text(json.dumps(batch))
    run_cli("logits", path, "--ids-file", f, "--out", tmp_path / "l.npy")
    lb = model(batch)
    assert lb.shape == (3, 9, model.vocab)
    assert np.array_equal(lb, np.load(tmp_path / "l.npy"))
    lc, cache = model.run_with_cache(np.array(batch), names="blocks.1.hook_resid_post")
    assert np.array_equal(lc, lb) and cache["blocks.1.hook_resid_post"].shape == (3, 9, model.d_model)
    assert np.array_equal(cache["blocks.1.hook_resid_post"][2],
                          model.run_with_cache(batch[2], names="blocks.1.hook_resid_post")[1]["blocks.1.hook_resid_post"])
    ragged = model([batch[0], batch[1][:4]])
    assert isinstance(ragged, list) and np.array_equal(ragged[1], model(batch[1][:4]))


def test_hooks_see_views_and_replace(arch_models):
    model = clens.Model(arch_models["llama-f32-tied"])
    ids = ids_for(arch_models["llama-f32-tied"], 8, seed=9)
    base, cache = model.run_with_cache(ids)
    seen = []

    def look(act, hook):
        seen.append((hook.name, act.shape, act.flags.writeable, act.base is not None, list(hook.positions)))
    assert np.array_equal(model.run_with_hooks(ids, fwd_hooks=[(lambda n: "resid_pre" in n, look)]), base)
    assert [s[0] for s in seen] == ["blocks.%d.hook_resid_pre" % l for l in range(model.n_layers)]
    assert all(s[1] == (8, model.d_model) and s[2] and s[4] == list(range(8)) for s in seen)
    # returning a replacement == writing in place; ablating the last layer's mlp changes only
    # what follows it
    zero = lambda act, hook: np.zeros_like(act)  # noqa: E731
    def zero_in_place(act, hook):
        act[:] = 0
    name = "blocks.%d.hook_mlp_out" % (model.n_layers - 1)
    a = model.run_with_hooks(ids, fwd_hooks=[(name, zero)])
    b = model.run_with_hooks(ids, fwd_hooks=[(name, zero_in_place)])
    assert np.array_equal(a, b) and not np.array_equal(a, base)
    _, c2 = model.run_with_cache(ids)
    assert np.array_equal(c2[name], cache[name])  # hooks are per call


def test_tokenizer(tok_model):
    model = clens.Model(tok_model)
    tok = model.tokenizer
    ids = tok.encode("Hello world, 12*5 = 60")
    assert tok.decode(ids) == "Hello world, 12*5 = 60"
    assert list(model.to_tokens("Hello world, 12*5 = 60")) == ids
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nhi<|im_end|>" in text
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                   tokenize=True) == tok.encode(text, add_special_tokens=False)
    assert tok.token_to_id("Wait") is not None and tok.id_to_token(tok.token_to_id("Wait")) == "Wait"


def test_long_prompt_in_chunks_equals_cli(arch_models, tmp_path):
    """A prompt longer than 256 tokens is prefilled in chunks of 256 rows, as the CLI does:
    hooks see each chunk with its positions, the cache is whole and equal to the CLI's."""
    path = arch_models["olmo2-f32"]
    ids = ids_for(path, 300, seed=5)
    model = clens.Model(path)
    run_cli("activations", path, "--ids", ",".join(map(str, ids)), "--hooks", "blocks.*.hook_attn_out",
            "--out", tmp_path / "a")
    logits, cache = model.run_with_cache(ids, names=lambda n: n.endswith("hook_attn_out"))
    assert np.array_equal(logits, np.load(tmp_path / "a" / "logits.npy"))
    for name, act in cache.items():
        assert np.array_equal(act, np.load(tmp_path / "a" / (name + ".npy"))), name
    chunks = []
    model.run_with_hooks(ids, fwd_hooks=[("blocks.0.hook_attn_out", lambda a, h: chunks.append(list(h.positions)))])
    assert chunks == [list(range(256)), list(range(256, 300))]
