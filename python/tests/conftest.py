"""Fixtures of the clens Python tests: small random models per architecture
(tools/gen_model.py), one with Qwen2.5's real tokenizer for pairs and patching,
and the CLI binary to compare with. Env: CLENS (the CLI), ROOT, SHARED,
CLENS_TEST_TMP (where models go; default a pytest temp dir)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.environ.get("ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLENS = os.environ.get("CLENS") or os.path.join(ROOT, os.environ.get("BUILD", "build"), "clens")
SHARED = os.environ.get("SHARED") or os.path.join(ROOT, "..", "shared")
PY = sys.executable

# name -> gen_model.py flags: every architecture, f32 and bf16
ARCH_MODELS = {
    "qwen2-f32": "--arch qwen2 --dtype f32 --layers 2 --seed 1",
    "qwen3-bf16": "--arch qwen3 --dtype bf16 --layers 2 --seed 2",
    "llama-f32-tied": "--arch llama --dtype f32 --layers 2 --tied --seed 3",
    "olmo2-f32": "--arch olmo2 --dtype f32 --layers 2 --seed 4",
    "olmo3-bf16": "--arch olmo3 --dtype bf16 --layers 3 --sliding-window 3 --seed 5",
}


@pytest.fixture(scope="session")
def tmpdir_session(tmp_path_factory):
    base = os.environ.get("CLENS_TEST_TMP")
    if base:
        d = os.path.join(base, "python")
        os.makedirs(d, exist_ok=True)
        return d
    return str(tmp_path_factory.mktemp("clens-python"))


def gen_model(out, flags):
    if not os.path.exists(os.path.join(out, "config.json")):
        subprocess.run([PY, os.path.join(ROOT, "tools", "gen_model.py")] + flags.split() + ["--quiet", "--force", "--out", out],
                       check=True)
    return out


@pytest.fixture(scope="session")
def arch_models(tmpdir_session):
    return {name: gen_model(os.path.join(tmpdir_session, name), flags) for name, flags in ARCH_MODELS.items()}


@pytest.fixture(scope="session")
def tok_model(tmpdir_session):
    """A 2-layer f32 Qwen2 body with Qwen2.5's tokenizer and chat template (as tests/suites/50-patch.sh)."""
    src = os.path.join(SHARED, "tokenizers", "qwen2.5")
    if not os.path.isdir(src):
        pytest.skip("no %s (SHARED)" % src)
    out = gen_model(os.path.join(tmpdir_session, "qwen2-tok"),
                    "--arch qwen2 --dtype f32 --layers 2 --vocab 151936 --seed 3")
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        with open(os.path.join(src, f), "rb") as a, open(os.path.join(out, f), "wb") as b:
            b.write(a.read())
    return out


@pytest.fixture(scope="session")
def pairs_file(tmpdir_session):
    data = os.path.join(SHARED, "data", "gsm8k", "test.jsonl")
    if not os.path.exists(data):
        pytest.skip("no %s (SHARED)" % data)
    out = os.path.join(tmpdir_session, "pairs.jsonl")
    subprocess.run([CLENS, "pairs", "--data", data, "--format", "gsm8k", "--limit", "12", "--out", out, "--quiet"],
                   check=True)
    return out


@pytest.fixture(scope="session")
def org_setup(tmpdir_session):
    """Every architecture's test model with the organism tokenizer (vocab 306), and pairs from
    organism traces (as tests/suites/76-dynamics.sh): small enough to patch every site of every
    architecture with every method."""
    d = os.path.join(tmpdir_session, "org")
    tok = os.path.join(d, "tok")
    pairs = os.path.join(d, "pairs.jsonl")
    if not os.path.exists(pairs):
        os.makedirs(d, exist_ok=True)
        subprocess.run([CLENS, "organism", "tokenizer", "--out", tok], check=True, stderr=subprocess.DEVNULL)
        subprocess.run([CLENS, "organism", "traces", "--split", "heldout", "--seed", "13", "--n", "30", "--out",
                        os.path.join(d, "heldout.jsonl")], check=True, stderr=subprocess.DEVNULL)
        subprocess.run([CLENS, "pairs", "--data", os.path.join(d, "heldout.jsonl"), "--format", "gsm8k", "--out",
                        pairs, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    models = {}
    for i, arch in enumerate(["qwen2", "qwen3", "llama", "olmo2", "olmo3"]):
        extra = " --sliding-window 8 --rope-scaling none" if arch == "olmo3" else ""  # AtP: plain RoPE
        out = gen_model(os.path.join(d, arch),
                        "--arch %s --dtype f32 --layers 2 --vocab 306 --seed %d%s" % (arch, 40 + i, extra))
        for f in ("tokenizer.json", "tokenizer_config.json"):
            with open(os.path.join(tok, f), "rb") as a, open(os.path.join(out, f), "wb") as b:
                b.write(a.read())
        models[arch] = out
    return models, pairs


def run_cli(*args):
    r = subprocess.run([CLENS] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def ids_for(model_dir, T, seed):
    import numpy as np
    V = json.load(open(os.path.join(model_dir, "config.json")))["vocab_size"]
    ids = np.random.default_rng(seed).integers(0, V, T).tolist()
    ids[1] = V - 1
    return ids
