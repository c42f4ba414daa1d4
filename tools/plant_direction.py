#!/usr/bin/python3
"""Plants a known direction into a generated model through its weights (rulings R5), and writes
pairs whose corrupted prompts alone carry the planted token (tests of clens capture / probe /
transfer, tests/suites/74-probe.sh).

The marker token's embedding row becomes the base token's row plus alpha * |row| * v, v a seeded
random unit vector (written to --vector-out as float32 .npy). Marker and base then differ ONLY
along v, so clean and corrupted activations differ only because of the plant: with --alpha 0 the
two prompts give identical activations everywhere. The pairs (--pairs-out, the R5 keys of
pairs.jsonl) are sums "a+b=c" whose clean result ends in the base digit and whose corrupted
result ends in the marker digit (the pair builder's last-digit +1 rule: 6 -> 7); the marker digit
appears nowhere else in either prompt. Works on single-file f32 models from tools/gen_model.py.

Example: plant_direction.py /tmp/m --base-token 6 --marker-token 7 --alpha 4 --seed 1 \\
             --vector-out /tmp/v.npy --pairs-out /tmp/pairs.jsonl --n-pairs 40
Exit codes: 0 ok, 1 error, 2 usage.
"""

import argparse
import hashlib
import json
import os
import random
import sys

import numpy as np

from st_file import Mapped


def plant(model, base_id, marker_id, alpha, seed, vector_out):
    st = Mapped(os.path.join(model, "model.safetensors"), "plant_direction", dtypes=("F32",))
    if "lm_head.weight" not in st.header:
        raise SystemExit("plant_direction: the model must be untied (lm_head.weight)")
    emb = st.tensor("model.embed_tokens.weight")
    d = emb.shape[1]
    v = np.random.default_rng(seed).standard_normal(d).astype(np.float64)
    v /= np.linalg.norm(v)
    emb[marker_id] = (emb[base_id].astype(np.float64) + alpha * np.linalg.norm(emb[base_id]) * v).astype(np.float32)
    st.flush()
    np.save(vector_out, v.astype(np.float32))


def pairs(n_pairs, seed, base_digit, marker_digit, out):
    rng = random.Random(seed)
    lines, k = [], 0
    while len(lines) < n_pairs and k < 100000:
        k += 1
        a, b = rng.randint(10, 899), rng.randint(10, 899)
        c = a + b
        txt = f"{a}{b}{c}"
        if c % 10 != int(base_digit) or marker_digit in txt:
            continue
        cw = str(c)[:-1] + marker_digit
        problem = f"Add {a} and {b}."
        head = f"First {a}+{b}="
        clean = f"{head}{c}, so the total is"
        corr = f"{head}{cw}, so the total is"
        pid = f"plant/{len(lines)}"
        obj = {"id": pid, "source": "plant_direction.py", "source_sha256": hashlib.sha256(b"plant").hexdigest(),
               "problem": problem, "clean_prefix": clean, "corrupted_prefix": corr,
               "site": {"start": len(head), "end": len(head) + len(str(c)), "expr": f"{a}+{b}",
                        "clean_value": str(c), "corrupted_value": cw},
               "cut": "line", "corrupt": "last-digit", "seed": seed}
        lines.append(json.dumps(obj))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model folder with one f32 model.safetensors, untied (path)")
    ap.add_argument("--base-token", type=int, required=True, help="id of the clean digit token (int)")
    ap.add_argument("--marker-token", type=int, required=True, help="id of the corrupted digit token (int)")
    ap.add_argument("--base-digit", default="6", help="the clean digit as text (default 6)")
    ap.add_argument("--marker-digit", default="7", help="the corrupted digit as text (default 7)")
    ap.add_argument("--alpha", type=float, default=4.0, help="plant strength, in row norms (float, default 4; 0 = none)")
    ap.add_argument("--seed", type=int, default=1, help="seed of v and of the pairs (int, default 1)")
    ap.add_argument("--vector-out", required=True, help="the planted unit vector v (.npy path)")
    ap.add_argument("--pairs-out", help="pairs.jsonl to write (path)")
    ap.add_argument("--n-pairs", type=int, default=40, help="pairs to write (int, default 40)")
    a = ap.parse_args()
    plant(a.model, a.base_token, a.marker_token, a.alpha, a.seed, a.vector_out)
    if a.pairs_out:
        pairs(a.n_pairs, a.seed, a.base_digit, a.marker_digit, a.pairs_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
