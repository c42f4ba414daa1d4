#!/usr/bin/python3
"""Plants a token chain into a generated model folder, through its weights, so that greedy
decoding from the chain's first token writes the rest of the chain (tests of on-policy pairs).

The blocks are silenced (every o_proj and down_proj zero), so the last residual is the token's
embedding; token i of the chain embeds as the unit vector e_i, the final norm weight is 1, and
lm_head row of token i+1 is 30 * e_i. The chain's tokens must be distinct and fewer than
hidden_size. Works on single-file f32 or bf16 models written by tools/gen_model.py (untied).

Example: plant_chain.py /tmp/m/planted --chain 25,220,16,17,151643
Exit codes: 0 ok, 1 error, 2 usage.
"""

import argparse
import json
import os
import sys

import numpy as np

from st_file import Mapped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model folder with model.safetensors (path)")
    ap.add_argument("--chain", required=True, help="comma-separated token ids, first = the prompt's last token")
    a = ap.parse_args()
    chain = [int(x) for x in a.chain.split(",")]
    if len(set(chain)) != len(chain):
        print("plant_chain: the chain's tokens must be distinct", file=sys.stderr)
        return 2
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    d = cfg["hidden_size"]
    if len(chain) > d:
        print(f"plant_chain: chain of {len(chain)} tokens needs hidden_size >= {len(chain)}", file=sys.stderr)
        return 2
    st = Mapped(os.path.join(a.model, "model.safetensors"), "plant_chain")
    header, put = st.header, st.put

    def tensor(name):
        return st.tensor(name), st.dtype(name)

    if "lm_head.weight" not in header:
        print("plant_chain: the model must be untied (lm_head.weight)", file=sys.stderr)
        return 1
    for name in header:
        if name.endswith("self_attn.o_proj.weight") or name.endswith("mlp.down_proj.weight"):
            t, dt = tensor(name)
            put(t, dt, 0.0)
    t, dt = tensor("model.norm.weight")
    put(t, dt, 1.0)
    emb, edt = tensor("model.embed_tokens.weight")
    head, hdt = tensor("lm_head.weight")
    for i, tok in enumerate(chain):
        row = np.zeros(d, np.float32)
        row[i] = 1.0
        put(emb[tok], edt, row)
        if i + 1 < len(chain):
            put(head[chain[i + 1]], hdt, 30.0 * row)
    st.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
