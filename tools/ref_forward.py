#!/usr/bin/python3
"""Independent reference forward pass for clens' engine tests (rulings R7).

Written from the transformers 4.57 sources (modeling_llama/qwen2/qwen3/olmo2/olmo3.py,
modeling_rope_utils.py, masking_utils.py, configuration_qwen2/olmo3.py), never from clens' C
code. The math runs in float64 on CPU torch; weights come from the model folder's safetensors
files through our own reader (BF16 and F16 are widened exactly). RoPE inverse frequencies and
cos/sin tables are built in float32 exactly as transformers builds them (that is what the
models were trained and released with), then widened to float64.

Per job it writes float32 .npy files (TransformerLens names, rulings R12):
  logits.npy [T, vocab]            hook_embed.npy [T, C]          ln_final.hook_normalized.npy [T, C]
  blocks.{L}.hook_resid_pre.npy    blocks.{L}.hook_attn_out.npy   blocks.{L}.hook_mlp_out.npy
  blocks.{L}.hook_resid_post.npy   [T, C]
  blocks.{L}.attn.hook_z.npy       [T, n_heads*head_dim] per-head attention output before o_proj
hook_attn_out / hook_mlp_out are what is added to the residual stream (after OLMo's post
norms), so resid_post = resid_pre + attn_out + mlp_out.
Model.forward(ids, patch=(hook, head, value)) replaces one activation at the last position and
runs on from it (final-position activation patching; tools/ref_patch.py checks `clens patch` with it).

Usage:
  ref_forward.py --jobs jobs.json        jobs.json = [{"model": DIR, "ids": [..], "out": DIR}, ...]
  ref_forward.py --model DIR --ids 1,2,3 --out DIR
  ref_forward.py --self-check            hook identities, RoPE tables (OLMo-3-7B YaRN numbers),
                                         masks, attention against a naive loop
Exit codes: 0 ok, 1 error or failed check, 2 usage.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

F64 = torch.float64
F32 = torch.float32



def bind_weights(spec, g):
    """Sets spec.embed, spec.layers, spec.norm, spec.lm_head from g(name, shape): the HF tensor
    names and shapes of the five architectures (spec carries H, D, nH, nKV, I, V, L, post_norm,
    qkv_bias, o_bias, qk_norm, mlp_bias, tied). Shared with tools/bench_torch_model.py."""
    H, D, nH, nKV, I, V = spec.H, spec.D, spec.nH, spec.nKV, spec.I, spec.V
    spec.embed = g("model.embed_tokens.weight", (V, H))
    spec.layers = []
    for i in range(spec.L):
        p = "model.layers.%d." % i
        w = {}
        if not spec.post_norm:
            w["ln_in"] = g(p + "input_layernorm.weight", (H,))
            w["ln_mlp"] = g(p + "post_attention_layernorm.weight", (H,))
        else:
            w["ln_post_attn"] = g(p + "post_attention_layernorm.weight", (H,))
            w["ln_post_mlp"] = g(p + "post_feedforward_layernorm.weight", (H,))
        for nm, rows in (("q", nH * D), ("k", nKV * D), ("v", nKV * D)):
            w[nm] = g(p + "self_attn.%s_proj.weight" % nm, (rows, H))
            w[nm + "_b"] = g(p + "self_attn.%s_proj.bias" % nm, (rows,)) if spec.qkv_bias else None
        w["o"] = g(p + "self_attn.o_proj.weight", (H, nH * D))
        w["o_b"] = g(p + "self_attn.o_proj.bias", (H,)) if spec.o_bias else None
        if spec.qk_norm == "head":
            w["q_norm"] = g(p + "self_attn.q_norm.weight", (D,))
            w["k_norm"] = g(p + "self_attn.k_norm.weight", (D,))
        elif spec.qk_norm == "full":
            w["q_norm"] = g(p + "self_attn.q_norm.weight", (nH * D,))
            w["k_norm"] = g(p + "self_attn.k_norm.weight", (nKV * D,))
        for nm, shape in (("gate", (I, H)), ("up", (I, H)), ("down", (H, I))):
            w[nm] = g(p + "mlp.%s_proj.weight" % nm, shape)
            w[nm + "_b"] = g(p + "mlp.%s_proj.bias" % nm, (shape[0],)) if spec.mlp_bias else None
        spec.layers.append(w)
    spec.norm = g("model.norm.weight", (H,))
    if spec.tied:
        spec.lm_head = spec.embed
    else:
        spec.lm_head = g("lm_head.weight", (V, H))

class RefError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Safetensors (architectures.md §2.7), our own reader.

ST_DTYPES = {"F32": (np.dtype("<f4"), 4), "BF16": (np.dtype("<u2"), 2), "F16": (np.dtype("<f2"), 2),
             "F64": (np.dtype("<f8"), 8)}


class SafetensorsFile:
    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise RefError("%s: shorter than the 8-byte header length" % path)
            n = int.from_bytes(raw, "little")
            if n > size - 8:
                raise RefError("%s: header length %d exceeds file size %d" % (path, n, size))
            hdr = json.loads(f.read(n).decode("utf-8"))
        self.data_start = 8 + n
        self.entries = {}
        for name, e in hdr.items():
            if name == "__metadata__":
                continue
            if e["dtype"] not in ST_DTYPES:
                raise RefError("%s: tensor %s has unsupported dtype %s" % (path, name, e["dtype"]))
            b, end = e["data_offsets"]
            esz = ST_DTYPES[e["dtype"]][1]
            numel = int(np.prod(e["shape"], dtype=np.int64))
            if end - b != numel * esz or self.data_start + end > size:
                raise RefError("%s: tensor %s offsets %s do not match shape %s / file size"
                               % (path, name, e["data_offsets"], e["shape"]))
            self.entries[name] = e
        self.mm = np.memmap(path, dtype=np.uint8, mode="r")

    def get_f32(self, name):
        e = self.entries[name]
        b, end = e["data_offsets"]
        npdt, _ = ST_DTYPES[e["dtype"]]
        raw = self.mm[self.data_start + b:self.data_start + end].view(npdt)
        if e["dtype"] == "BF16":
            arr = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
        else:
            arr = raw.astype(np.float32) if e["dtype"] != "F64" else raw.astype(np.float64)
        return arr.reshape(e["shape"])


class Checkpoint:
    """All tensors of a model folder; uses model.safetensors.index.json when present."""

    def __init__(self, folder):
        idx = os.path.join(folder, "model.safetensors.index.json")
        self.files = {}
        self.where = {}
        if os.path.exists(idx):
            with open(idx) as f:
                wm = json.load(f)["weight_map"]
            for name, fn in wm.items():
                if fn not in self.files:
                    self.files[fn] = SafetensorsFile(os.path.join(folder, fn))
                if name not in self.files[fn].entries:
                    raise RefError("%s: index maps %s to %s, which does not contain it" % (idx, name, fn))
                self.where[name] = self.files[fn]
        else:
            path = os.path.join(folder, "model.safetensors")
            if not os.path.exists(path):
                raise RefError("%s: no model.safetensors or model.safetensors.index.json" % folder)
            st = SafetensorsFile(path)
            self.files["model.safetensors"] = st
            for name in st.entries:
                self.where[name] = st

    def has(self, name):
        return name in self.where

    def get(self, name, shape=None, dtype=F64):
        if name not in self.where:
            raise RefError("missing tensor %s" % name)
        a = self.where[name].get_f32(name)
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise RefError("tensor %s has shape %s, expected %s" % (name, list(a.shape), list(shape)))
        return torch.from_numpy(np.array(a, dtype=np.float64)).to(dtype)


# ---------------------------------------------------------------------------------------------
# RoPE (modeling_rope_utils.py, transformers 4.57). All tables in float32 like transformers.


def rope_params_of(scaling):
    """Normalises a rope_scaling dict: BC key "type" -> "rope_type"; None -> default."""
    if not scaling:
        return {"rope_type": "default"}
    d = dict(scaling)
    if "rope_type" not in d and "type" in d:
        d["rope_type"] = d["type"]
    d.setdefault("rope_type", "default")
    return d


def rope_inv_freq(rp, base, dim, max_pos, seq_len=None):
    """Returns (inv_freq float32 tensor [dim/2], attention_factor float) for rope params rp."""
    t = rp["rope_type"]
    # default: 1 / base ** (arange(0, dim, 2) / dim), exponent formed in float32
    expo = torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=F32) / dim
    inv0 = 1.0 / (base ** expo)
    if t == "default":
        return inv0, 1.0
    if t == "linear":
        return inv0 / rp["factor"], 1.0
    if t == "dynamic":
        # HF recomputes with seq_len = max position + 1 once it exceeds max_position_embeddings.
        factor = rp["factor"]
        if seq_len is None or seq_len <= max_pos:
            return inv0, 1.0
        b2 = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / (b2 ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=F32) / dim)), 1.0
    if t == "llama3":
        factor = rp["factor"]
        lff = rp["low_freq_factor"]
        hff = rp["high_freq_factor"]
        old = rp["original_max_position_embeddings"]
        low_wl = old / lff
        high_wl = old / hff
        wavelen = 2 * math.pi / inv0
        inv = torch.where(wavelen > low_wl, inv0 / factor, inv0)
        smooth = (old / wavelen - lff) / (hff - lff)
        smoothed = (1 - smooth) * inv / factor + smooth * inv
        medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
        return torch.where(medium, smoothed, inv), 1.0
    if t == "yarn":
        factor = rp["factor"]
        attn = rp.get("attention_factor")
        mscale = rp.get("mscale")
        mscale_all = rp.get("mscale_all_dim")
        orig = rp.get("original_max_position_embeddings") or max_pos

        def get_mscale(scale, m=1):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

        if attn is None:
            if mscale and mscale_all:
                attn = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all))
            else:
                attn = get_mscale(factor)
        beta_fast = rp.get("beta_fast") or 32
        beta_slow = rp.get("beta_slow") or 1
        low, high = yarn_band(dim, base, orig, beta_fast, beta_slow, rp.get("truncate", True))
        pos_freqs = base ** (torch.arange(0, dim, 2).to(dtype=F32) / dim)
        extrap = 1.0 / pos_freqs
        interp = 1.0 / (factor * pos_freqs)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=F32) - low) / (high - low), 0, 1)
        extrap_factor = 1 - ramp
        # HF's blend form, kept for bit-exactness in float32 (architectures.md §1.4)
        inv = interp * (1 - extrap_factor) + extrap * extrap_factor
        return inv, float(attn)
    raise RefError("rope_type %r is not supported by the reference" % t)


def yarn_band(dim, base, orig, beta_fast, beta_slow, truncate=True):
    def corr(rot):
        return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr(beta_fast), corr(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    return max(low, 0), min(high, dim - 1)


def rope_tables(rp, base, dim, max_pos, T):
    """cos, sin [T, dim] float64, from float32 tables built the transformers way."""
    inv, attn = rope_inv_freq(rp, base, dim, max_pos, seq_len=T)
    pos = torch.arange(T, dtype=torch.int64).to(F32)
    freqs = pos[:, None] * inv[None, :].to(F32)  # the 1-wide matmul of HF is this product
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * attn
    sin = emb.sin() * attn
    return cos.to(F64), sin.to(F64), inv, attn


def apply_rope(x, cos, sin):
    """x [T, nh, D]; rotate_half convention: pair (d, d + D/2)."""
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


# ---------------------------------------------------------------------------------------------
# Model


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def read_config(m, folder):
    """The config rules, set as attributes of m: transformers defaults when a key is absent,
    layer types and windows, RoPE per layer type. Shared by Model and the PyTorch benchmark
    (tools/bench_torch_model.py), which loads its weights its own way."""
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    m.cfg = c
    mt = c.get("model_type")
    if mt not in ("llama", "qwen2", "qwen3", "olmo2", "olmo3"):
        raise RefError("%s/config.json: model_type %r not supported" % (folder, mt))
    m.arch = mt
    m.H = c["hidden_size"]
    m.nH = c["num_attention_heads"]
    m.nKV = c.get("num_key_value_heads") or m.nH
    m.D = c.get("head_dim") or m.H // m.nH
    m.I = c["intermediate_size"]
    m.V = c["vocab_size"]
    m.L = c["num_hidden_layers"]
    # transformers config defaults when a key is absent
    m.eps = c.get("rms_norm_eps", {"olmo2": 1e-5, "olmo3": 1e-5}.get(mt, 1e-6))
    m.theta = c.get("rope_theta", 10000.0)
    m.max_pos = c.get("max_position_embeddings", 2048)
    m.tied = bool(c.get("tie_word_embeddings", False))  # False in all five configs
    if c.get("hidden_act", "silu") != "silu":
        raise RefError("hidden_act %r not supported" % c.get("hidden_act"))
    prf = c.get("partial_rotary_factor", 1.0)
    if prf not in (None, 1, 1.0):
        raise RefError("partial_rotary_factor %r not supported" % prf)
    m.post_norm = mt in ("olmo2", "olmo3")
    m.qk_norm = {"qwen3": "head", "olmo2": "full", "olmo3": "full"}.get(mt)
    ab = bool(c.get("attention_bias", False))
    m.qkv_bias = True if mt == "qwen2" else ab
    m.o_bias = False if mt == "qwen2" else ab
    m.mlp_bias = bool(c.get("mlp_bias", False)) if mt == "llama" else False

    # Layer types and window (configuration_qwen2/qwen3/olmo3, masking_utils).
    if mt == "olmo3":
        m.window = c.get("sliding_window", 4096)
        lt = c.get("layer_types") or ["full_attention" if (i + 1) % 4 == 0 else "sliding_attention"
                                      for i in range(m.L)]
    elif mt in ("qwen2", "qwen3"):
        use = bool(c.get("use_sliding_window", False))
        m.window = c.get("sliding_window", 4096) if use else None
        mwl = c.get("max_window_layers", 28)
        lt = c.get("layer_types") or ["sliding_attention" if m.window is not None and i >= mwl
                                      else "full_attention" for i in range(m.L)]
    else:
        m.window = None
        lt = ["full_attention"] * m.L
    if len(lt) != m.L:
        raise RefError("layer_types has %d entries for %d layers" % (len(lt), m.L))
    if "sliding_attention" in lt and not m.window:
        raise RefError("sliding_attention layers but no sliding window")
    m.layer_types = lt

    # RoPE per layer type: OLMo-3 (4.57) uses a default table on sliding layers and the
    # rope_scaling table on full layers; the others use rope_scaling everywhere.
    rp = rope_params_of(c.get("rope_scaling"))
    if mt == "olmo3":
        m.rope = {"sliding_attention": {"rope_type": "default"}, "full_attention": rp}
    else:
        m.rope = {"sliding_attention": rp, "full_attention": rp}


class Model:
    """Config + weights for one folder, with the per-architecture choices spelled out."""

    def __init__(self, folder, dtype=F64):
        """dtype: math precision (float64 for the reference; float32 only to emulate an engine)."""
        self.folder = folder
        self.dtype = dtype
        read_config(self, folder)
        ck = Checkpoint(folder)
        def g(name, shape):
            return ck.get(name, shape, dtype)
        bind_weights(self, g)

    # -----------------------------------------------------------------------------------------

    def mask(self, layer_type, T):
        """Additive mask [T, T]: key j visible to query i iff j <= i (and j > i - W if sliding)."""
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        ok = j <= i
        if layer_type == "sliding_attention":
            ok = ok & (j > i - self.window)
        m = torch.zeros(T, T, dtype=self.dtype)
        m[~ok] = float("-inf")
        return m

    def attention(self, x, w, layer_type, T, naive=False, edit_z=None):
        """x: attention input [T, H]. Returns (z [T, nH*D], o [T, H]). edit_z: optional function
        applied to z [T, nH*D] before o_proj (activation patching of one head, forward(patch=))."""
        nH, nKV, D = self.nH, self.nKV, self.D
        q = x @ w["q"].T
        k = x @ w["k"].T
        v = x @ w["v"].T
        if w["q_b"] is not None:
            q, k, v = q + w["q_b"], k + w["k_b"], v + w["v_b"]
        if self.qk_norm == "full":  # OLMo: one RMSNorm over the whole projection, before heads
            q = rms_norm(q, w["q_norm"], self.eps)
            k = rms_norm(k, w["k_norm"], self.eps)
        q = q.view(T, nH, D)
        k = k.view(T, nKV, D)
        v = v.view(T, nKV, D)
        if self.qk_norm == "head":  # Qwen3: per head over head_dim, shared weight
            q = rms_norm(q, w["q_norm"], self.eps)
            k = rms_norm(k, w["k_norm"], self.eps)
        cos, sin, _, _ = rope_tables(self.rope[layer_type], self.theta, D, self.max_pos, T)
        cos, sin = cos.to(self.dtype), sin.to(self.dtype)
        if naive:
            q, k = naive_rope(q, cos, sin), naive_rope(k, cos, sin)
            z = naive_attention(q, k, v, D ** -0.5, self.window if layer_type == "sliding_attention" else None)
        else:
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            rep = nH // nKV
            kk = k.repeat_interleave(rep, dim=1)  # query head h uses kv head h // rep
            vv = v.repeat_interleave(rep, dim=1)
            s = torch.einsum("ihd,jhd->hij", q, kk) * (D ** -0.5) + self.mask(layer_type, T)[None]
            p = torch.softmax(s, dim=-1)
            z = torch.einsum("hij,jhd->ihd", p, vv)
        z = z.reshape(T, nH * D)
        if edit_z is not None:
            z = edit_z(z)
        o = z @ w["o"].T
        if w["o_b"] is not None:
            o = o + w["o_b"]
        return z, o

    def mlp(self, x, w):
        g = x @ w["gate"].T
        u = x @ w["up"].T
        if w["gate_b"] is not None:
            g, u = g + w["gate_b"], u + w["up_b"]
        y = (torch.nn.functional.silu(g) * u) @ w["down"].T
        if w["down_b"] is not None:
            y = y + w["down_b"]
        return y

    def forward(self, ids, naive=False, patch=None, last_logits_only=False):
        """Returns an ordered dict hook name -> float64 tensor.

        patch: optional (hook, head, value), final-position activation patching (the
        TransformerLens hook semantics): the activation at `hook` (a hook_names() name, or
        "blocks.{n_layers}.hook_resid_pre" = the residual after the last block, before ln_final)
        is replaced at the last position by `value` and the run continues from the replaced
        value. For "blocks.L.attn.hook_z", `head` selects the head's head_dim slice (the input
        of o_proj); elsewhere head is None and value is a [H] vector.
        last_logits_only: "logits" is computed for the last position only ([1, V])."""
        ph, phead, pval = patch if patch is not None else (None, None, None)
        hits = []

        def put(name, t):
            if name != ph:
                return t
            hits.append(name)
            t = t.clone()
            if phead is None:
                t[-1] = pval
            else:
                t[-1, phead * self.D:(phead + 1) * self.D] = pval
            return t

        ids = torch.tensor(ids, dtype=torch.int64)
        if ids.numel() == 0:
            raise RefError("empty ids")
        if int(ids.min()) < 0 or int(ids.max()) >= self.V:
            raise RefError("ids must be in [0, %d)" % self.V)
        T = ids.numel()
        out = {}
        h = self.embed[ids].clone()
        out["hook_embed"] = h
        for L, w in enumerate(self.layers):
            lt = self.layer_types[L]
            h = put("blocks.%d.hook_resid_pre" % L, h)
            out["blocks.%d.hook_resid_pre" % L] = h
            a_in = h if self.post_norm else rms_norm(h, w["ln_in"], self.eps)
            zname = "blocks.%d.attn.hook_z" % L
            z, o = self.attention(a_in, w, lt, T, naive=naive,
                                  edit_z=(lambda t, n=zname: put(n, t)) if ph == zname else None)
            attn_out = rms_norm(o, w["ln_post_attn"], self.eps) if self.post_norm else o
            attn_out = put("blocks.%d.hook_attn_out" % L, attn_out)
            h_mid = h + attn_out
            m_in = h_mid if self.post_norm else rms_norm(h_mid, w["ln_mlp"], self.eps)
            m = self.mlp(m_in, w)
            mlp_out = rms_norm(m, w["ln_post_mlp"], self.eps) if self.post_norm else m
            mlp_out = put("blocks.%d.hook_mlp_out" % L, mlp_out)
            h = put("blocks.%d.hook_resid_post" % L, h_mid + mlp_out)
            out["blocks.%d.attn.hook_z" % L] = z
            out["blocks.%d.hook_attn_out" % L] = attn_out
            out["blocks.%d.hook_mlp_out" % L] = mlp_out
            out["blocks.%d.hook_resid_post" % L] = h
        h = put("blocks.%d.hook_resid_pre" % self.L, h)
        hn = rms_norm(h, self.norm, self.eps)
        out["ln_final.hook_normalized"] = hn
        out["logits"] = (hn[-1:] if last_logits_only else hn) @ self.lm_head.T
        if ph is not None and len(hits) != 1:
            raise RefError("patch hook %r matched %d times (want once)" % (ph, len(hits)))
        return out


def naive_rope(x, cos, sin):
    """Loop form of RoPE: pair (d, d+D/2) rotated by the angle of index d."""
    T, nh, D = x.shape
    half = D // 2
    y = x.clone()
    for t in range(T):
        for d in range(half):
            a, b = x[t, :, d], x[t, :, d + half]
            c, s = cos[t, d], sin[t, d]
            y[t, :, d] = a * c - b * s
            y[t, :, d + half] = b * c + a * s
    return y


def naive_attention(q, k, v, scale, window):
    """Per query, per head loop with explicit key lists (GQA by floor division)."""
    T, nH, D = q.shape
    nKV = k.shape[1]
    rep = nH // nKV
    z = torch.zeros(T, nH, D, dtype=q.dtype)
    for i in range(T):
        keys = [j for j in range(T) if j <= i and (window is None or j > i - window)]
        for h in range(nH):
            g = h // rep
            s = torch.stack([(q[i, h] * k[j, g]).sum() * scale for j in keys])
            p = torch.exp(s - s.max())
            p = p / p.sum()
            z[i, h] = sum(p[n] * v[j, g] for n, j in enumerate(keys))
    return z


def hook_names(n_layers):
    names = ["logits", "hook_embed", "ln_final.hook_normalized"]
    for L in range(n_layers):
        names += ["blocks.%d.%s" % (L, k) for k in
                  ("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post", "attn.hook_z")]
    return names


def save_hooks(out_dir, acts):
    os.makedirs(out_dir, exist_ok=True)
    for name, t in acts.items():
        np.save(os.path.join(out_dir, name + ".npy"), t.detach().numpy().astype(np.float32))


def check_identities(m, acts, tol=1e-10):
    """Hook identities on float64 activations; returns a list of failure strings."""
    bad = []

    def chk(label, a, b):
        d = float((a - b).abs().max())
        if not d <= tol * max(1.0, float(b.abs().max())):
            bad.append("%s: max diff %.3g" % (label, d))

    chk("blocks.0.hook_resid_pre == hook_embed", acts["blocks.0.hook_resid_pre"], acts["hook_embed"])
    for L in range(m.L):
        pre = acts["blocks.%d.hook_resid_pre" % L]
        chk("blocks.%d resid_post == resid_pre + attn_out + mlp_out" % L,
            acts["blocks.%d.hook_resid_post" % L],
            pre + acts["blocks.%d.hook_attn_out" % L] + acts["blocks.%d.hook_mlp_out" % L])
        if L + 1 < m.L:
            chk("blocks.%d.resid_pre == blocks.%d.resid_post" % (L + 1, L),
                acts["blocks.%d.hook_resid_pre" % (L + 1)], acts["blocks.%d.hook_resid_post" % L])
        z = acts["blocks.%d.attn.hook_z" % L]
        o = z @ m.layers[L]["o"].T + (m.layers[L]["o_b"] if m.layers[L]["o_b"] is not None else 0)
        ao = rms_norm(o, m.layers[L]["ln_post_attn"], m.eps) if m.post_norm else o
        chk("blocks.%d attn_out from hook_z" % L, acts["blocks.%d.hook_attn_out" % L], ao)
    last = acts["blocks.%d.hook_resid_post" % (m.L - 1)]
    chk("ln_final == rmsnorm(last resid_post)", acts["ln_final.hook_normalized"], rms_norm(last, m.norm, m.eps))
    chk("logits == ln_final @ W_U", acts["logits"], acts["ln_final.hook_normalized"] @ m.lm_head.T)
    return bad


# ---------------------------------------------------------------------------------------------
# Jobs


def run_jobs(jobs, identities=True, quiet=False, dtype=F64):
    models = {}
    for n, job in enumerate(jobs):
        for k in ("model", "ids", "out"):
            if k not in job:
                raise RefError("job %d: missing key %r" % (n, k))
        t0 = time.time()
        folder = job["model"]
        if folder not in models:
            models[folder] = Model(folder, dtype)
        m = models[folder]
        ids = job["ids"]
        if not isinstance(ids, list) or not all(isinstance(x, int) for x in ids):
            raise RefError("job %d: ids must be a flat list of ints" % n)
        with torch.no_grad():
            acts = m.forward(ids)
        if identities:
            bad = check_identities(m, acts, 1e-10 if dtype == F64 else 1e-5)
            if bad:
                raise RefError("job %d (%s): hook identity failed: %s" % (n, folder, "; ".join(bad)))
        save_hooks(job["out"], acts)
        if not quiet:
            top = acts["logits"].argmax(-1).tolist()
            print("ref_forward: %s T=%d -> %s (%d files, %.2f s) top1[-4:]=%s"
                  % (os.path.basename(os.path.normpath(folder)), len(ids), job["out"], len(acts),
                     time.time() - t0, top[-4:]))


# ---------------------------------------------------------------------------------------------
# Self-check


def self_check():
    fails = []

    def expect(cond, what):
        print("  %-4s %s" % ("ok" if cond else "FAIL", what))
        if not cond:
            fails.append(what)

    print("self-check: YaRN table, OLMo-3-7B numbers (architectures.md §1.4)")
    rp = {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192,
          "beta_fast": 32, "beta_slow": 1}
    low, high = yarn_band(128, 5e5, 8192, 32, 1)
    expect((low, high) == (18, 35), "low/high = %s/%s (want 18/35)" % (low, high))
    inv, attn = rope_inv_freq(rp, 5e5, 128, 65536)
    inv0, _ = rope_inv_freq({"rope_type": "default"}, 5e5, 128, 65536)
    ratio = (inv.double() / inv0.double()).tolist()
    for j, want in ((19, 0.9485), (26, 0.5882), (34, 0.1765)):
        expect(abs(ratio[j] - want) < 5e-5, "inv/inv0 at j=%d = %.6f (want %.4f)" % (j, ratio[j], want))
    expect(all(abs(ratio[j] - 1) < 1e-6 for j in range(19)), "pairs j<=18 unchanged")
    expect(all(abs(ratio[j] - 0.125) < 1e-6 for j in range(35, 64)), "pairs j>=35 divided by 8")
    expect(attn == 1.2079441541679836, "attention factor %r (want 1.2079441541679836)" % attn)
    expect(abs(attn * attn - 1.4591290795886054) < 1e-15, "attention factor squared %.16f" % (attn * attn))
    rp2 = dict(rp, attention_factor=1.2079441541679836)
    expect(rope_inv_freq(rp2, 5e5, 128, 65536)[1] == 1.2079441541679836, "explicit attention_factor kept")

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_model  # noqa: E402  (sibling tool)

    print("self-check: tiny-model RoPE bands (the generator's choices)")
    b = yarn_band(16, 1e4, 4096, 32, 1)
    expect(b == (2, 6), "tiny olmo3 YaRN band (D16, theta 1e4, orig 4096) = %s (want (2, 6))" % (b,))
    l3 = dict(gen_model.TINY["llama"]["rope_scaling"])
    inv, _ = rope_inv_freq(l3, 1e4, 16, 2048)
    inv0, _ = rope_inv_freq({"rope_type": "default"}, 1e4, 16, 2048)
    r = (inv.double() / inv0.double()).tolist()
    kept = [j for j in range(8) if abs(r[j] - 1) < 1e-6]
    div = [j for j in range(8) if abs(r[j] - 0.125) < 1e-6]
    expect(kept == [0, 1, 2] and div == [4, 5, 6, 7] and 0.125 < r[3] < 1,
           "tiny llama3 (D16, theta 1e4, orig 256): keep %s, /8 %s, blend j=3 ratio %.4f" % (kept, div, r[3]))
    # llama3 blend by hand: s = (old/wavelen - 1)/(4 - 1); inv = (1-s) inv0/8 + s inv0
    wl = 2 * math.pi / float(inv0[3])
    s = (256 / wl - 1) / 3
    expect(abs(r[3] - ((1 - s) / 8 + s)) < 1e-6, "llama3 blend matches the formula by hand (s=%.4f)" % s)
    # Llama 3.1 8B values (theta 5e5, D 128, orig 8192): the first 3/8 of pairs... by wavelength
    inv, _ = rope_inv_freq(dict(l3, original_max_position_embeddings=8192), 5e5, 128, 131072)
    inv0, _ = rope_inv_freq({"rope_type": "default"}, 5e5, 128, 131072)
    wl = (2 * math.pi / inv0.double()).tolist()
    r = (inv.double() / inv0.double()).tolist()
    expect(all((abs(r[j] - 1) < 1e-6) if wl[j] < 2048 else (abs(r[j] - 0.125) < 1e-6) if wl[j] > 8192
               else (0.125 < r[j] < 1) for j in range(64)), "llama3 at Llama-3.1 values: keep/blend/divide by wavelength")

    print("self-check: RoPE convention (rotate_half == complex pairs (d, d+D/2))")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, 16, dtype=F64, generator=g)
    cos, sin, inv, _ = rope_tables({"rope_type": "default"}, 1e4, 16, 4096, 7)
    a = apply_rope(x, cos, sin)
    xc = torch.complex(x[..., :8], x[..., 8:])
    ang = torch.arange(7, dtype=F64)[:, None] * inv.double()[None, :]
    rc = xc * torch.exp(1j * ang)[:, None, :]
    b2 = torch.cat((rc.real, rc.imag), dim=-1)
    expect(float((a - b2).abs().max()) < 1e-5, "rotate_half form equals complex rotation (max %.2g)"
           % float((a - b2).abs().max()))

    print("self-check: tiny models of every architecture (hook identities, naive attention)")

    with tempfile.TemporaryDirectory(prefix="clens-refcheck-") as tmp:
        ids = [3, 17, 250, 9, 9, 41, 300, 2, 77, 123, 5, 64, 199, 88, 31, 270]
        for arch in gen_model.ARCHS:
            for dtype in ("f32", "bf16"):
                s = dict(gen_model.TINY[arch])
                s["tied"] = arch in ("qwen2", "qwen3") and dtype == "bf16"
                if arch == "llama":
                    s["attention_bias"] = True
                out = os.path.join(tmp, "%s-%s" % (arch, dtype))
                gen_model.write_model(out, arch, s, dtype, seed=11, shards=2 if dtype == "bf16" else None,
                                      quiet=True)
                m = Model(out)
                with torch.no_grad():
                    acts = m.forward(ids)
                    nacts = m.forward(ids, naive=True)
                bad = check_identities(m, acts)
                expect(not bad, "%s-%s hook identities %s" % (arch, dtype, "; ".join(bad)))
                d = max(float((acts[k] - nacts[k]).abs().max()) for k in acts)
                expect(d < 1e-10, "%s-%s vectorised == naive loops (max %.2g)" % (arch, dtype, d))
                lg = acts["logits"]
                top2 = lg.topk(2, dim=-1).values
                gap = float((top2[:, 0] - top2[:, 1]).min())
                sd = float(lg.std())
                expect(0.3 < sd < 20 and gap > 1e-4,
                       "%s-%s logits std %.2f (O(1-10)), min top-2 gap %.2g" % (arch, dtype, sd, gap))
                expect(len(acts) == len(hook_names(m.L)), "%s-%s %d hooks" % (arch, dtype, len(acts)))
                if dtype == "bf16":
                    # bf16 weights are read exactly: every value is a bf16 number
                    e = m.embed.to(F32).numpy().view(np.uint32)
                    expect(bool(((e & 0xFFFF) == 0).all()), "%s-bf16 weights widened exactly" % arch)

        print("self-check: windows (perturb token 0, look at layer-0 hook_z)")
        for arch, W, sliding0 in (("olmo3", 5, True), ("qwen2", 4, False)):
            m = Model(os.path.join(tmp, "%s-f32" % arch))
            ids2 = list(ids)
            ids2[0] = (ids[0] + 1) % m.V
            with torch.no_grad():
                z1 = m.forward(ids)["blocks.0.attn.hook_z"]
                z2 = m.forward(ids2)["blocks.0.attn.hook_z"]
            diff = (z1 - z2).abs().amax(dim=1)
            if sliding0:
                expect(bool((diff[W:] == 0).all()) and bool((diff[:W] > 0).all()),
                       "%s layer 0 (sliding, W=%d): rows >= W unaffected by token 0" % (arch, W))
                full = [i for i, t in enumerate(m.layer_types) if t == "full_attention"]
                expect(full == [3], "%s layer types %s" % (arch, m.layer_types))
            else:
                expect(bool((diff > 0).all()),
                       "%s: sliding_window=%d with use_sliding_window=false -> full attention" % (arch, W))
        m = Model(os.path.join(tmp, "olmo3-f32"))
        mk = m.mask("sliding_attention", 12)
        seen = (mk == 0).sum(-1).tolist()
        expect(seen == [min(i + 1, 5) for i in range(12)], "sliding mask keys per query %s" % seen)
        expect(m.rope["sliding_attention"] == {"rope_type": "default"} and
               m.rope["full_attention"]["rope_type"] == "yarn", "olmo3 per-layer-type RoPE")

        print("self-check: safetensors writer / reader round trip")
        x = np.array([1.0, -2.5, 3.14159265, 1e-3, 65504.0, -0.0, 1.00390625, 1.01171875], dtype=np.float32)
        bits = gen_model.f32_to_bf16_bits(x)
        want = [0x3F80, 0xC020, 0x4049, 0x3A83, 0x4780, 0x8000, 0x3F80, 0x3F82]
        expect(bits.tolist() == want, "bf16 round-to-nearest-even %s" % [hex(v) for v in bits.tolist()])
        ck = Checkpoint(os.path.join(tmp, "olmo3-bf16"))
        st_names = set(ck.where)
        plan = [t.name for t in gen_model.tensor_plan("olmo3", dict(gen_model.TINY["olmo3"], tied=False))]
        expect(st_names == set(plan), "sharded checkpoint has exactly the planned tensors (%d)" % len(plan))
        one = os.path.join(tmp, "olmo3-bf16-single")
        gen_model.write_model(one, "olmo3", dict(gen_model.TINY["olmo3"], tied=False), "bf16", seed=11, quiet=True)
        ck1 = Checkpoint(one)
        same = all(torch.equal(ck.get(n), ck1.get(n)) for n in plan)
        expect(same and len(ck.files) == 2 and len(ck1.files) == 1,
               "same seed, 1 vs 2 shards: identical tensors")

    print("self-check: %s" % ("all passed" if not fails else "%d FAILED" % len(fails)))
    return 0 if not fails else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ref_forward.py", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n\n")[0],
                                 epilog="Example: ref_forward.py --jobs /tmp/jobs.json")
    ap.add_argument("--jobs", help="JSON list of {model, ids, out} (path). Example: --jobs jobs.json")
    ap.add_argument("--model", help="model folder for a single job (path)")
    ap.add_argument("--ids", help="comma-separated token ids for a single job (string). Example: --ids 1,2,3")
    ap.add_argument("--out", help="output folder for a single job (path)")
    ap.add_argument("--self-check", action="store_true", help="run the built-in checks (flag)")
    ap.add_argument("--no-identities", action="store_true", help="skip per-job hook identity checks (flag)")
    ap.add_argument("--compute", choices=["f64", "f32"], default="f64",
                    help="math precision (default f64; f32 only emulates an engine, e.g. to test "
                    "compare_acts.py)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (int, default 2)")
    ap.add_argument("--quiet", action="store_true", help="no per-job lines (flag)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    torch.set_num_threads(max(1, a.threads))
    try:
        if a.self_check:
            return self_check()
        if a.jobs:
            with open(a.jobs) as f:
                jobs = json.load(f)
            if not isinstance(jobs, list):
                raise RefError("%s: expected a JSON list of jobs" % a.jobs)
        elif a.model and a.ids is not None and a.out:
            jobs = [{"model": a.model, "ids": [int(x) for x in a.ids.split(",") if x.strip()], "out": a.out}]
        else:
            print("ref_forward.py: give --jobs FILE, or --model DIR --ids LIST --out DIR, or --self-check",
                  file=sys.stderr)
            return 2
        run_jobs(jobs, identities=not a.no_identities, quiet=a.quiet, dtype=F64 if a.compute == "f64" else F32)
        return 0
    except (RefError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        print("ref_forward.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
