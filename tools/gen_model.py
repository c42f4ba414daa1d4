#!/usr/bin/python3
"""Writes random-weight Hugging Face model folders for clens tests and benchmarks.

A folder holds config.json (real HF field names, as transformers 4.57 writes them) and either
model.safetensors or model-0000i-of-0000n.safetensors shards + model.safetensors.index.json.
The safetensors container is written by hand (docs: architectures.md §2.7): 8-byte
little-endian header length, a JSON header padded with spaces to a multiple of 8, then the
tensor bytes, C-contiguous little-endian. BF16 is rounded from f32 to nearest-even with
uint32 arithmetic.

Every tensor gets its own random stream, seeded from (--seed, tensor name), so the weights do
not depend on how the model is sharded. Tensors are generated and written one chunk at a time:
the model is never held in memory, whatever its size. `--streaming` (implied for models over
4 GiB) replaces fresh random numbers by a repeated random block (cheap, for benchmark shapes)
and checks free disk first (rulings R11: at least 20 GiB for models over 8 GiB).

Architectures: qwen2, qwen3, llama, olmo2, olmo3 (architectures.md §2). Presets:
  tiny                          small test model of --arch (default)
  qwen2-0.5b qwen2-1.5b qwen2-7b  real Qwen2 shapes (7b = DeepSeek-R1-Distill-Qwen-7B)
  olmo3-7b                      real OLMo-3-7B shape (YaRN on full layers, window 4096)
  olmo2-1b                      real OLMo-2-0425-1B shape
Any shape field can be overridden (--layers N gives "7B shape with N layers").

Examples:
  gen_model.py --arch qwen2 --dtype f32 --out /tmp/m/qwen2-f32
  gen_model.py --arch olmo3 --dtype bf16 --shards 3 --seed 7 --out /tmp/m/olmo3-bf16
  gen_model.py --preset qwen2-7b --dtype bf16 --layers 2 --out /tmp/m/q7b-2l
  gen_model.py --preset olmo3-7b --streaming --out /tmp/m/olmo3-7b
Exit codes: 0 ok, 1 error (disk, I/O), 2 usage.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time

import numpy as np

ARCHS = ("qwen2", "qwen3", "llama", "olmo2", "olmo3")
ARCH_CLASS = {
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "llama": "LlamaForCausalLM",
    "olmo2": "Olmo2ForCausalLM",
    "olmo3": "Olmo3ForCausalLM",
}
GIB = 1 << 30

# ---------------------------------------------------------------------------------------------
# Shapes. Tiny shapes are chosen so that every architecture difference shows at f32 tolerance:
# GQA 4/2, head_dim != hidden/heads for qwen3, intermediate not a power of two, windows shorter
# than the test prompts, RoPE scalings whose blend band falls inside the rotary dims.


def olmo3_layer_types(n):
    """transformers Olmo3Config default: every 4th layer (i+1) % 4 == 0 is full attention."""
    return ["full_attention" if (i + 1) % 4 == 0 else "sliding_attention" for i in range(n)]


TINY = {
    "qwen2": dict(hidden=64, layers=3, heads=4, kv_heads=2, head_dim=None, inter=160, vocab=384,
                  rope_theta=1e6, rope_scaling=None, rms_eps=1e-6, max_pos=4096,
                  # The R1-Distill trap: a window is written but use_sliding_window is false,
                  # so every layer is full attention (the window is shorter than test prompts).
                  sliding_window=4, use_sliding_window=False, max_window_layers=3,
                  bos=380, eos=381, pad=None),
    "qwen3": dict(hidden=64, layers=3, heads=4, kv_heads=2, head_dim=32, inter=160, vocab=384,
                  rope_theta=1e6, rope_scaling=None, rms_eps=1e-6, max_pos=4096,
                  sliding_window=None, use_sliding_window=False, max_window_layers=3,
                  bos=380, eos=381, pad=None),
    "llama": dict(hidden=64, layers=3, heads=4, kv_heads=2, head_dim=16, inter=176, vocab=320,
                  rope_theta=1e4,
                  # Llama 3.1 factors with a small original context so that the effect shows
                  # on short prompts: wavelengths 6.3, 20, 63 | 199 | 628...: pairs j<=2 keep,
                  # j=3 blends (smooth 0.096), j>=4 get /8.
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 256},
                  rms_eps=1e-5, max_pos=2048, bos=300, eos=301, pad=None),
    "olmo2": dict(hidden=64, layers=3, heads=4, kv_heads=2, head_dim=None, inter=160, vocab=352,
                  rope_theta=5e5, rope_scaling=None, rms_eps=1e-6, max_pos=4096,
                  bos=None, eos=350, pad=351),
    "olmo3": dict(hidden=64, layers=4, heads=4, kv_heads=2, head_dim=None, inter=160, vocab=352,
                  rope_theta=1e4,
                  # head_dim 16, theta 1e4, orig 4096: correction dims 2.62 / 5.63 -> low 2,
                  # high 6: pairs 0..2 keep, 3..5 blend (ramp 1/4, 2/4, 3/4), 6..7 get /8.
                  rope_scaling={"rope_type": "yarn", "factor": 8.0,
                                "original_max_position_embeddings": 4096,
                                "beta_fast": 32, "beta_slow": 1},
                  rms_eps=1e-6, max_pos=32768, sliding_window=5,
                  bos=None, eos=350, pad=351),
}

REAL = {
    # Qwen2.5-0.5B shape (tied).
    "qwen2-0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, head_dim=None,
                       inter=4864, vocab=151936, rope_theta=1e6, rope_scaling=None, rms_eps=1e-6,
                       max_pos=32768, sliding_window=32768, use_sliding_window=False,
                       max_window_layers=24, tied=True, bos=151643, eos=151643, pad=None),
    # Qwen2-1.5B shape, rulings R14 (tied).
    "qwen2-1.5b": dict(arch="qwen2", hidden=1536, layers=28, heads=12, kv_heads=2, head_dim=None,
                       inter=8960, vocab=151936, rope_theta=1e6, rope_scaling=None, rms_eps=1e-6,
                       max_pos=32768, sliding_window=32768, use_sliding_window=False,
                       max_window_layers=28, tied=True, bos=151643, eos=151643, pad=None),
    # DeepSeek-R1-Distill-Qwen-7B, architectures.md §3.1.
    "qwen2-7b": dict(arch="qwen2", hidden=3584, layers=28, heads=28, kv_heads=4, head_dim=None,
                     inter=18944, vocab=152064, rope_theta=10000.0, rope_scaling=None,
                     rms_eps=1e-6, max_pos=131072, sliding_window=4096, use_sliding_window=False,
                     max_window_layers=28, tied=False, bos=151643, eos=151643, pad=None),
    # OLMo-3-7B (Think / RL-Zero), architectures.md §3.2.
    "olmo3-7b": dict(arch="olmo3", hidden=4096, layers=32, heads=32, kv_heads=32, head_dim=None,
                     inter=11008, vocab=100278, rope_theta=5e5,
                     rope_scaling={"rope_type": "yarn", "factor": 8.0,
                                   "original_max_position_embeddings": 8192,
                                   "attention_factor": 1.2079441541679836,
                                   "beta_fast": 32.0, "beta_slow": 1.0},
                     rms_eps=1e-6, max_pos=65536, sliding_window=4096, tied=False,
                     bos=None, eos=100257, pad=100277),
    # OLMo-2-0425-1B, architectures.md §3.3.
    "olmo2-1b": dict(arch="olmo2", hidden=2048, layers=16, heads=16, kv_heads=16, head_dim=None,
                     inter=8192, vocab=100352, rope_theta=5e5, rope_scaling=None, rms_eps=1e-6,
                     max_pos=4096, tied=False, bos=None, eos=100257, pad=100277),
}


# ---------------------------------------------------------------------------------------------
# Config


def build_config(arch, s, dtype, dtype_key="torch_dtype"):
    """Returns the config.json dict for architecture `arch` with shape dict `s`."""
    cfg = {
        "architectures": [ARCH_CLASS[arch]],
        "model_type": arch,
        "hidden_size": s["hidden"],
        "intermediate_size": s["inter"],
        "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": s["max_pos"],
        "initializer_range": 0.02,
        "rms_norm_eps": s["rms_eps"],
        "rope_theta": s["rope_theta"],
        "rope_scaling": s["rope_scaling"],
        "vocab_size": s["vocab"],
        "tie_word_embeddings": bool(s["tied"]),
        "attention_dropout": 0.0,
        "use_cache": True,
        "bos_token_id": s.get("bos"),
        "eos_token_id": s.get("eos"),
        "transformers_version": "4.57.1",
        dtype_key: {"f32": "float32", "bf16": "bfloat16"}[dtype],
    }
    if s.get("pad") is not None:
        cfg["pad_token_id"] = s["pad"]
    if s.get("head_dim") is not None:
        cfg["head_dim"] = s["head_dim"]
    if arch in ("qwen2", "qwen3"):
        cfg["sliding_window"] = s.get("sliding_window")
        cfg["use_sliding_window"] = bool(s.get("use_sliding_window", False))
        cfg["max_window_layers"] = s.get("max_window_layers", s["layers"])
        if arch == "qwen3":
            cfg["attention_bias"] = bool(s.get("attention_bias", False))
        if s.get("layer_types") is not None:
            cfg["layer_types"] = s["layer_types"]
    elif arch == "llama":
        cfg["attention_bias"] = bool(s.get("attention_bias", False))
        cfg["mlp_bias"] = bool(s.get("mlp_bias", False))
        cfg["pretraining_tp"] = 1
    elif arch == "olmo2":
        cfg["attention_bias"] = bool(s.get("attention_bias", False))
    elif arch == "olmo3":
        cfg["attention_bias"] = bool(s.get("attention_bias", False))
        cfg["sliding_window"] = s["sliding_window"]
        cfg["layer_types"] = s.get("layer_types") or olmo3_layer_types(s["layers"])
    return cfg


# ---------------------------------------------------------------------------------------------
# Tensor plan


class TensorSpec:
    """One tensor: name, shape and how to draw it ("normal" with std, or "norm": 1 + 0.3 N)."""

    def __init__(self, name, shape, kind, std=1.0):
        self.name, self.shape, self.kind, self.std = name, tuple(shape), kind, std

    @property
    def numel(self):
        return int(np.prod(self.shape, dtype=np.int64))


def tensor_plan(arch, s):
    """Tensors of the checkpoint in HF order (architectures.md §2.7)."""
    H, nH, nKV, I, V = s["hidden"], s["heads"], s["kv_heads"], s["inter"], s["vocab"]
    D = s.get("head_dim") or H // nH
    post_norm = arch in ("olmo2", "olmo3")
    qkv_bias = arch == "qwen2" or bool(s.get("attention_bias", False))
    o_bias = arch != "qwen2" and bool(s.get("attention_bias", False))
    mlp_bias = arch == "llama" and bool(s.get("mlp_bias", False))
    # Embedding std 0.5 keeps tied logits O(1-10); projections ~ 1/sqrt(fan_in).
    plan = [TensorSpec("model.embed_tokens.weight", (V, H), "normal", 0.5)]
    for i in range(s["layers"]):
        p = "model.layers.%d." % i
        if not post_norm:
            plan.append(TensorSpec(p + "input_layernorm.weight", (H,), "norm"))
        for nm, rows in (("q_proj", nH * D), ("k_proj", nKV * D), ("v_proj", nKV * D)):
            plan.append(TensorSpec(p + "self_attn.%s.weight" % nm, (rows, H), "normal", 1 / math.sqrt(H)))
            if qkv_bias:
                plan.append(TensorSpec(p + "self_attn.%s.bias" % nm, (rows,), "normal", 0.2))
        plan.append(TensorSpec(p + "self_attn.o_proj.weight", (H, nH * D), "normal", 1 / math.sqrt(nH * D)))
        if o_bias:
            plan.append(TensorSpec(p + "self_attn.o_proj.bias", (H,), "normal", 0.2))
        if arch == "qwen3":
            plan.append(TensorSpec(p + "self_attn.q_norm.weight", (D,), "norm"))
            plan.append(TensorSpec(p + "self_attn.k_norm.weight", (D,), "norm"))
        elif post_norm:
            plan.append(TensorSpec(p + "self_attn.q_norm.weight", (nH * D,), "norm"))
            plan.append(TensorSpec(p + "self_attn.k_norm.weight", (nKV * D,), "norm"))
        plan.append(TensorSpec(p + "post_attention_layernorm.weight", (H,), "norm"))
        if post_norm:
            plan.append(TensorSpec(p + "post_feedforward_layernorm.weight", (H,), "norm"))
        for nm, shape, fan in (("gate_proj", (I, H), H), ("up_proj", (I, H), H), ("down_proj", (H, I), I)):
            plan.append(TensorSpec(p + "mlp.%s.weight" % nm, shape, "normal", 1 / math.sqrt(fan)))
            if mlp_bias:
                plan.append(TensorSpec(p + "mlp.%s.bias" % nm, (shape[0],), "normal", 0.2))
    plan.append(TensorSpec("model.norm.weight", (H,), "norm"))
    if not s["tied"]:
        plan.append(TensorSpec("lm_head.weight", (V, H), "normal", 2 / math.sqrt(H)))
    return plan


# ---------------------------------------------------------------------------------------------
# Data


def f32_to_bf16_bits(x):
    """Round float32 array to bfloat16 bit patterns (uint16), round-to-nearest-even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = np.isnan(x)
    lsb = (u >> np.uint32(16)) & np.uint32(1)
    r = ((u + np.uint32(0x7FFF) + lsb) >> np.uint32(16)).astype(np.uint16)
    if nan.any():
        r[nan] = np.uint16(0x7FC0)
    return r


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def encode(x, dtype):
    """float32 array -> little-endian bytes of dtype ("f32" or "bf16")."""
    if dtype == "bf16":
        return f32_to_bf16_bits(x).astype("<u2").tobytes()
    return np.ascontiguousarray(x, dtype="<f4").tobytes()


def tensor_seed(seed, name):
    h = hashlib.sha256(("%d:%s" % (seed, name)).encode()).digest()
    return int.from_bytes(h[:8], "little")


CHUNK = 1 << 22  # elements generated at a time (16 MiB of f32)
BLOCK = 1_000_003  # length of the repeated random block in streaming mode (prime: no row alignment)


def draw(spec, rng, n):
    z = rng.standard_normal(n, dtype=np.float32)
    if spec.kind == "norm":
        return (np.float32(1.0) + np.float32(0.3) * z).astype(np.float32)
    return (z * np.float32(spec.std)).astype(np.float32)


def write_tensor(f, spec, dtype, seed, unit_block):
    """Writes one tensor's bytes to f, chunk by chunk. unit_block: None (fresh randoms) or the
    streaming-mode N(0,1) block that is scaled per tensor and repeated from a random offset."""
    rng = np.random.default_rng(tensor_seed(seed, spec.name))
    n = spec.numel
    if unit_block is None or n <= 4 * BLOCK or spec.kind == "norm":
        done = 0
        while done < n:
            k = min(CHUNK, n - done)
            f.write(encode(draw(spec, rng, k), dtype))
            done += k
        return
    blk = np.frombuffer(encode(unit_block * np.float32(spec.std), dtype), dtype=np.uint8)
    esz = 2 if dtype == "bf16" else 4
    pos = int(rng.integers(0, BLOCK)) * esz
    left = n * esz
    while left:
        take = min(left, len(blk) - pos)
        f.write(blk[pos:pos + take].data)
        left -= take
        pos = 0


def shard_groups(plan, dtype, shards, max_shard_bytes):
    """Splits the ordered plan into contiguous groups (one per shard file)."""
    esz = 2 if dtype == "bf16" else 4
    sizes = [t.numel * esz for t in plan]
    total = sum(sizes)
    if shards is None:
        if max_shard_bytes is None or total <= max_shard_bytes:
            return [plan]
        groups, cur, cur_b = [], [], 0
        for t, b in zip(plan, sizes):
            if cur and cur_b + b > max_shard_bytes:
                groups.append(cur)
                cur, cur_b = [], 0
            cur.append(t)
            cur_b += b
        groups.append(cur)
        return groups
    if shards < 1 or shards > len(plan):
        raise ValueError("--shards %d: must be between 1 and the number of tensors (%d)" % (shards, len(plan)))
    # Cut points: shard k starts at the first tensor whose start offset reaches k*total/shards,
    # clamped so that every shard keeps at least one tensor.
    starts = np.cumsum([0] + sizes[:-1])
    cuts = [0]
    for k in range(1, shards):
        c = int(np.searchsorted(starts, k * total / shards, side="left"))
        c = max(c, cuts[-1] + 1)
        c = min(c, len(plan) - (shards - k))
        cuts.append(c)
    cuts.append(len(plan))
    groups = [plan[cuts[k]:cuts[k + 1]] for k in range(shards)]
    flat = [t.name for grp in groups for t in grp]
    assert flat == [t.name for t in plan], "shard split must keep the tensor order"
    return groups


def safetensors_header(tensors, dtype):
    esz = 2 if dtype == "bf16" else 4
    st_dtype = {"f32": "F32", "bf16": "BF16"}[dtype]
    hdr, off = {}, 0
    for t in tensors:
        nb = t.numel * esz
        hdr[t.name] = {"dtype": st_dtype, "shape": list(t.shape), "data_offsets": [off, off + nb]}
        off += nb
    meta = {"__metadata__": {"format": "pt"}}
    meta.update(hdr)
    js = json.dumps(meta, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    return js, off


def write_model(out, arch, s, dtype, seed, shards=None, max_shard_bytes=None, streaming=False,
                odd_names=False, dtype_key="torch_dtype", min_free_bytes=None, quiet=False, force=False):
    """Writes a model folder. Returns (config dict, total tensor bytes)."""
    cfg = build_config(arch, s, dtype, dtype_key)
    plan = tensor_plan(arch, s)
    esz = 2 if dtype == "bf16" else 4
    total = sum(t.numel * esz for t in plan)
    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    need = total + max(GIB // 4, total // 10)
    if min_free_bytes is not None:
        need = max(need, min_free_bytes)
    free = shutil.disk_usage(parent).free
    if free < need:
        raise OSError("%s: not enough free disk: %.2f GiB free, %.2f GiB needed (model %.2f GiB)"
                      % (parent, free / GIB, need / GIB, total / GIB))
    if os.path.exists(out):
        if not force and os.listdir(out) and not os.path.exists(os.path.join(out, "config.json")):
            raise OSError("%s: exists and does not look like a model folder (use --force)" % out)
        for fn in os.listdir(out):
            if fn.endswith(".safetensors") or fn in ("config.json", "model.safetensors.index.json"):
                os.remove(os.path.join(out, fn))
    os.makedirs(out, exist_ok=True)

    unit_block = None
    if streaming:
        unit_block = np.random.default_rng(tensor_seed(seed, "__block__")).standard_normal(BLOCK, dtype=np.float32)

    groups = shard_groups(plan, dtype, shards, max_shard_bytes)
    n = len(groups)
    if n == 1:
        names = ["model.safetensors"]
    elif odd_names:  # odd zero padding seen in the wild: the index is the only truth
        names = ["model-%05d-of-%06d.safetensors" % (i + 1, n) for i in range(n)]
    else:
        names = ["model-%05d-of-%05d.safetensors" % (i + 1, n) for i in range(n)]
    t0 = time.time()
    written = 0
    weight_map = {}
    for fname, grp in zip(names, groups):
        hdr, nbytes = safetensors_header(grp, dtype)
        path = os.path.join(out, fname)
        tmp = path + ".part"
        with open(tmp, "wb", buffering=1 << 20) as f:
            f.write(len(hdr).to_bytes(8, "little"))
            f.write(hdr)
            for t in grp:
                write_tensor(f, t, dtype, seed, unit_block)
                weight_map[t.name] = fname
        os.replace(tmp, path)
        written += nbytes
        if not quiet and total > 256 << 20:
            el = time.time() - t0
            print("gen_model: %s %.2f GiB (%.1f/%.1f GiB, %.0f MB/s)"
                  % (fname, nbytes / GIB, written / GIB, total / GIB, written / max(el, 1e-9) / 1e6),
                  file=sys.stderr)
    if n > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return cfg, total


# ---------------------------------------------------------------------------------------------
# CLI


def parse_rope_scaling(text):
    """none | linear:F | dynamic:F | llama3[:F[:orig]] | yarn:F:orig[:attn] | a JSON object."""
    if text is None:
        return None
    t = text.strip()
    if t.startswith("{"):
        return json.loads(t)
    parts = t.split(":")
    kind = parts[0]
    if kind in ("none", "null", "default"):
        return None
    if kind in ("linear", "dynamic"):
        return {"rope_type": kind, "factor": float(parts[1])}
    if kind == "llama3":
        return {"rope_type": "llama3", "factor": float(parts[1]) if len(parts) > 1 else 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": int(parts[2]) if len(parts) > 2 else 8192}
    if kind == "yarn":
        d = {"rope_type": "yarn", "factor": float(parts[1]),
             "original_max_position_embeddings": int(parts[2]), "beta_fast": 32, "beta_slow": 1}
        if len(parts) > 3:
            d["attention_factor"] = float(parts[3])
        return d
    raise ValueError("--rope-scaling %r: expected none, linear:F, dynamic:F, llama3[:F[:orig]], "
                     "yarn:F:orig[:attn] or a JSON object" % text)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="gen_model.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0],
        epilog="Example: gen_model.py --arch olmo3 --dtype bf16 --shards 2 --out /tmp/olmo3-bf16")
    ap.add_argument("--arch", choices=ARCHS, help="architecture (string; default: the preset's, "
                    "else qwen2). Example: --arch qwen3")
    ap.add_argument("--preset", default="tiny", choices=["tiny"] + sorted(REAL),
                    help="shape preset (string, default tiny). Example: --preset qwen2-7b")
    ap.add_argument("--dtype", default=None, choices=["f32", "bf16"],
                    help="weight dtype (default f32 for tiny, bf16 for real shapes)")
    ap.add_argument("--out", required=True, help="output folder (path). Example: --out /tmp/m")
    ap.add_argument("--seed", type=int, default=0, help="random seed (int, default 0)")
    ap.add_argument("--shards", type=int, default=None,
                    help="number of shard files (int, default: 1 for tiny, 4 GiB shards for real)")
    ap.add_argument("--max-shard-mb", type=int, default=None,
                    help="cut shards at this size in MiB (int, default 4096 for real shapes)")
    ap.add_argument("--odd-shard-names", action="store_true",
                    help="name shards model-00001-of-000002.safetensors (flag, default off)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--tied", dest="tied", action="store_true", default=None,
                   help="tie lm_head to the embedding (flag; default: preset's, untied for tiny)")
    g.add_argument("--untied", dest="tied", action="store_false", help="separate lm_head (flag)")
    ap.add_argument("--layers", type=int, help="num_hidden_layers override (int). Example: --layers 2")
    ap.add_argument("--hidden", type=int, help="hidden_size override (int)")
    ap.add_argument("--heads", type=int, help="num_attention_heads override (int)")
    ap.add_argument("--kv-heads", type=int, help="num_key_value_heads override (int)")
    ap.add_argument("--head-dim", type=int, help="explicit head_dim (int)")
    ap.add_argument("--intermediate", type=int, help="intermediate_size override (int)")
    ap.add_argument("--vocab", type=int, help="vocab_size override (int)")
    ap.add_argument("--rope-theta", type=float, help="rope_theta override (float)")
    ap.add_argument("--rope-scaling", help="none | linear:F | dynamic:F | llama3[:F[:orig]] | "
                    "yarn:F:orig[:attn] | JSON (string). Example: --rope-scaling yarn:8:4096")
    ap.add_argument("--rms-eps", type=float, help="rms_norm_eps override (float)")
    ap.add_argument("--max-pos", type=int, help="max_position_embeddings override (int)")
    ap.add_argument("--sliding-window", type=int, help="sliding_window (int; qwen2/qwen3/olmo3)")
    ap.add_argument("--use-sliding-window", choices=["true", "false"],
                    help="use_sliding_window for qwen2/qwen3 (true|false)")
    ap.add_argument("--max-window-layers", type=int, help="max_window_layers for qwen2/qwen3 (int)")
    ap.add_argument("--layer-types", help="comma list of sliding_attention/full_attention "
                    "(or s/f letters, e.g. sssf). Default: olmo3 rule (i+1)%%4==0 full")
    ap.add_argument("--attention-bias", action="store_true",
                    help="attention_bias true (flag; llama/qwen3/olmo: q/k/v/o biases)")
    ap.add_argument("--mlp-bias", action="store_true", help="llama mlp_bias true (flag)")
    ap.add_argument("--dtype-key", default=None, choices=["torch_dtype", "dtype"],
                    help="config key for the dtype (default torch_dtype; dtype for olmo3)")
    ap.add_argument("--streaming", action="store_true",
                    help="repeated random block data + free-disk check (flag; implied > 4 GiB)")
    ap.add_argument("--min-free-gb", type=float, default=None,
                    help="refuse unless this much disk is free (float GiB; default 20 for models "
                    "over 8 GiB, else model size + 10%%)")
    ap.add_argument("--force", action="store_true", help="overwrite a non-model folder (flag)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines (flag)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0

    try:
        if a.preset == "tiny":
            arch = a.arch or "qwen2"
            s = dict(TINY[arch])
            s["tied"] = False
            dtype = a.dtype or "f32"
        else:
            s = dict(REAL[a.preset])
            arch = s.pop("arch")
            if a.arch and a.arch != arch:
                print("gen_model.py: --arch %s does not match preset %s (%s)" % (a.arch, a.preset, arch),
                      file=sys.stderr)
                return 2
            dtype = a.dtype or "bf16"
        if a.tied is not None:
            s["tied"] = a.tied
        for k_arg, k in (("layers", "layers"), ("hidden", "hidden"), ("heads", "heads"),
                         ("kv_heads", "kv_heads"), ("head_dim", "head_dim"), ("intermediate", "inter"),
                         ("vocab", "vocab"), ("rope_theta", "rope_theta"), ("rms_eps", "rms_eps"),
                         ("max_pos", "max_pos"), ("sliding_window", "sliding_window"),
                         ("max_window_layers", "max_window_layers")):
            v = getattr(a, k_arg)
            if v is not None:
                s[k] = v
        if a.rope_scaling is not None:
            s["rope_scaling"] = parse_rope_scaling(a.rope_scaling)
        if a.use_sliding_window is not None:
            s["use_sliding_window"] = a.use_sliding_window == "true"
        if a.attention_bias:
            s["attention_bias"] = True
        if a.mlp_bias:
            if arch != "llama":
                print("gen_model.py: --mlp-bias is a llama option", file=sys.stderr)
                return 2
            s["mlp_bias"] = True
        if arch in ("qwen2", "qwen3") and a.layers is not None and a.max_window_layers is None:
            s["max_window_layers"] = min(s.get("max_window_layers", s["layers"]), s["layers"])
        if a.layer_types:
            lt = [x.strip() for x in a.layer_types.split(",")] if "," in a.layer_types or "_" in a.layer_types \
                else [{"s": "sliding_attention", "f": "full_attention"}[c] for c in a.layer_types]
            if len(lt) != s["layers"] or any(x not in ("sliding_attention", "full_attention") for x in lt):
                print("gen_model.py: --layer-types needs %d entries of sliding_attention/full_attention"
                      % s["layers"], file=sys.stderr)
                return 2
            s["layer_types"] = lt
        D = s.get("head_dim") or s["hidden"] // s["heads"]
        if s["heads"] % s["kv_heads"] or D % 2 or (s.get("head_dim") is None and s["hidden"] % s["heads"]):
            print("gen_model.py: heads must be a multiple of kv-heads and head_dim even and exact",
                  file=sys.stderr)
            return 2
        dtype_key = a.dtype_key or ("dtype" if arch == "olmo3" else "torch_dtype")
        esz = 2 if dtype == "bf16" else 4
        total = sum(t.numel * esz for t in tensor_plan(arch, s))
        streaming = a.streaming or total > 4 * GIB
        max_shard = a.max_shard_mb * (1 << 20) if a.max_shard_mb else (None if a.preset == "tiny" else 4 * GIB)
        min_free = None
        if a.min_free_gb is not None:
            min_free = int(a.min_free_gb * GIB)
        elif total > 8 * GIB:
            min_free = 20 * GIB  # rulings R11
        t0 = time.time()
        cfg, total = write_model(a.out, arch, s, dtype, a.seed, shards=a.shards, max_shard_bytes=max_shard,
                                 streaming=streaming, odd_names=a.odd_shard_names, dtype_key=dtype_key,
                                 min_free_bytes=min_free, quiet=a.quiet, force=a.force)
        if not a.quiet:
            print("gen_model: wrote %s (%s %s, %d layers, %.1f MiB%s) in %.1f s"
                  % (a.out, arch, dtype, cfg["num_hidden_layers"], total / (1 << 20),
                     ", streaming" if streaming else "", time.time() - t0), file=sys.stderr)
        return 0
    except (OSError, ValueError, KeyError) as e:
        print("gen_model.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
