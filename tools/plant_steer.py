#!/usr/bin/python3
"""Plants a steerable "error -> correction word" behaviour into a generated qwen2/llama f32
model folder, through its weights (rulings R5), for the tests of `clens steer`.

The direction is v = e_0 (hidden dimension 0). Every token embeds with component 0 equal to 0,
except the trigger tokens (--trigger), which embed with component 0 = 1. Block 0's attention
is made uniform (q_proj, k_proj and their biases zero, so every score is 0) and copies
component 0 of the tokens attended to back into dimension 0 of the residual stream, scaled by
--gain: v_proj row 0 reads hidden dim 0 (kv head 0, feature 0), o_proj column 0 (head 0,
feature 0) writes hidden dim 0. Every other o_proj and every down_proj is zero, so after
block 0 the residual at position t is emb[t] + gain * mean_{s<=t} emb[s][0] * e_0 at every
later layer. The final norm weight is 1 and lm_head rows of the correction tokens (--wait)
are --readout * e_0: a prompt that contains a trigger token anywhere makes the correction
tokens likely at every later position; without one they are as unlikely as any token.
So ablating e_0 at blocks.L.hook_resid_post (any L) removes the behaviour, adding alpha*e_0
restores it, and an ablation along a random direction barely changes it.

Example: plant_steer.py /tmp/m/planted --trigger 22 --wait 13824,14190 --gain 400
Exit codes: 0 ok, 1 error, 2 usage.
"""

import argparse
import json
import os
import sys


from st_file import Mapped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model folder with one f32 model.safetensors, untied (path)")
    ap.add_argument("--trigger", required=True, help="comma-separated trigger token ids")
    ap.add_argument("--wait", required=True, help="comma-separated correction token ids")
    ap.add_argument("--gain", type=float, default=400.0, help="o_proj gain (float, default 400)")
    ap.add_argument("--readout", type=float, default=6.0, help="lm_head gain (float, default 6)")
    a = ap.parse_args()
    trig = [int(x) for x in a.trigger.split(",")]
    wait = [int(x) for x in a.wait.split(",")]
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    st = Mapped(os.path.join(a.model, "model.safetensors"), "plant_steer", dtypes=("F32",))
    header, tensor = st.header, st.tensor

    if "lm_head.weight" not in header:
        print("plant_steer: the model must be untied (lm_head.weight)", file=sys.stderr)
        return 1
    for name in header:
        if name.endswith("self_attn.o_proj.weight") or name.endswith("mlp.down_proj.weight"):
            tensor(name)[...] = 0.0
    p = "model.layers.0.self_attn."
    for w in ("q_proj", "k_proj"):
        tensor(p + w + ".weight")[...] = 0.0
        if p + w + ".bias" in header:
            tensor(p + w + ".bias")[...] = 0.0
    v = tensor(p + "v_proj.weight")
    v[...] = 0.0
    v[0, 0] = 1.0
    if p + "v_proj.bias" in header:
        tensor(p + "v_proj.bias")[...] = 0.0
    tensor(p + "o_proj.weight")[0, 0] = a.gain
    tensor("model.norm.weight")[...] = 1.0
    emb = tensor("model.embed_tokens.weight")
    emb[:, 0] = 0.0
    for t in trig:
        emb[t, 0] = 1.0
    head = tensor("lm_head.weight")
    for t in wait:
        head[t, :] = 0.0
        head[t, 0] = a.readout
    st.flush()
    return 0


def reference(model, wait):
    """The numpy reference of a planted model, read back from its file (float64), for the tests:
    blocks 1.. and every MLP add nothing; block 0's attention is uniform and adds
    gain * mean_s(norm(x_s)[0]) to dimension 0. Returns resid(ids), the final position's residual
    after block 0 (= at every later layer), and metric(r), the log-probability mass of the wait
    ids in the logits of residual r."""
    import struct
    import numpy as np
    eps = json.load(open(os.path.join(model, "config.json")))["rms_norm_eps"]
    with open(os.path.join(model, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        raw = f.read()

    def t(name):
        h = hdr[name]
        s, e = h["data_offsets"]
        return np.frombuffer(raw[s:e], dtype=np.float32).reshape(h["shape"]).astype(np.float64)
    emb, head, wn = t("model.embed_tokens.weight"), t("lm_head.weight"), t("model.norm.weight")
    w0, gain = t("model.layers.0.input_layernorm.weight"), t("model.layers.0.self_attn.o_proj.weight")[0, 0]

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def resid(ids):
        x = emb[ids]
        r = x[-1].copy()
        r[0] += gain * np.mean(rms(x, w0)[:, 0])
        return r

    def metric(r):
        lg = head @ rms(r, wn)
        m, ms = lg.max(), lg[wait].max()
        return (ms + np.log(np.exp(lg[wait] - ms).sum())) - (m + np.log(np.exp(lg - m).sum()))
    return resid, metric


if __name__ == "__main__":
    sys.exit(main())
