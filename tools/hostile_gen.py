#!/usr/bin/python3
"""Writes the hostile inputs of tests/suites/15-hostile.sh (the red-team cases of
issue 23 that the reliability work fixed) into one folder.

  hostile_gen.py --out DIR --shared SHARED [--root ROOT]

DIR/m           tiny qwen2 f32 model (untied lm_head), the clean base (tools/gen_model.py)
DIR/m_bf16      the same in bf16
DIR/nan_oproj   model.layers.1.self_attn.o_proj.weight[0] = NaN
DIR/nan_embed   model.embed_tokens.weight[2, 5] = NaN (token 2 only)
DIR/inf_lmhead  lm_head.weight[7, 0] = +Inf
DIR/inf_norm    model.norm.weight[3] = +Inf
DIR/nan_bf16    bf16 model, model.layers.0.mlp.down_proj.weight[4] = NaN (bf16 bits 0x7fc0)
DIR/inf_f16     the f32 model converted to F16, model.layers.2.self_attn.q_proj.weight[1, 2] = -Inf
DIR/dir_cfg     config.json is a folder
DIR/shape_wrap  a tensor of shape [2^32, 2^32, 4] with a zero-byte span (the element count used to wrap)
DIR/tk_idmax/tokenizer.json         dolma2 with "zzqxmax": 2^30 - 1 in model.vocab
DIR/tq_idmax/                       qwen2.5 (vocab.json form) with the same entry in vocab.json
DIR/tq_addmax/                      qwen2.5 with added_tokens_decoder key 2^30 - 1
DIR/tq_nul/                         qwen2.5 with a NUL byte in merges.txt line 181
DIR/tk_slow/tokenizer.json          dolma2 whose pre-tokenizer regex is catastrophic: (a+)+$
DIR/ragged.json                     [[1,2,3],[4,5]]
FIFOs are made by the suite (mkfifo), not here. Safetensors are edited in place
by parsing the header (8-byte little-endian length, JSON, data).
Exit codes: 0 ok, 1 error.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

NP = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_st(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])


def write_st(path, header, data):
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(data))


def poison(folder, name, flat_index, value):
    """Sets one element of a tensor (F32, F16, or BF16 given as raw bits)."""
    path = os.path.join(folder, "model.safetensors")
    header, data = read_st(path)
    t = header[name]
    b, e = t["data_offsets"]
    arr = np.frombuffer(data, dtype=NP[t["dtype"]], count=(e - b) // np.dtype(NP[t["dtype"]]).itemsize, offset=b).copy()
    arr[flat_index] = value
    data[b:e] = arr.tobytes()
    write_st(path, header, data)


def to_f16(src, dst):
    shutil.copytree(src, dst)
    path = os.path.join(dst, "model.safetensors")
    header, data = read_st(path)
    out, off, nh = bytearray(), 0, {}
    for k in sorted(x for x in header if x != "__metadata__"):
        t = header[k]
        b, e = t["data_offsets"]
        a = np.frombuffer(data, dtype=np.float32, count=(e - b) // 4, offset=b).astype(np.float16)
        nh[k] = {"dtype": "F16", "shape": t["shape"], "data_offsets": [off, off + a.nbytes]}
        out += a.tobytes()
        off += a.nbytes
    write_st(path, nh, out)
    cfg = json.load(open(os.path.join(dst, "config.json")))
    cfg["torch_dtype"] = "float16"
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))


def copy_model(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (path)")
    ap.add_argument("--shared", required=True, help="the shared folder holding tokenizers/ (path)")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="the clens checkout (path, default: this script's)")
    a = ap.parse_args()
    d = a.out
    os.makedirs(d, exist_ok=True)
    gen = [sys.executable, os.path.join(a.root, "tools/gen_model.py"), "--arch", "qwen2", "--untied", "--seed", "3",
           "--max-pos", "64", "--quiet", "--force"]
    subprocess.run(gen + ["--dtype", "f32", "--out", os.path.join(d, "m")], check=True)
    subprocess.run(gen + ["--dtype", "bf16", "--out", os.path.join(d, "m_bf16")], check=True)
    m = os.path.join(d, "m")

    copy_model(m, os.path.join(d, "nan_oproj"))
    poison(os.path.join(d, "nan_oproj"), "model.layers.1.self_attn.o_proj.weight", 0, np.nan)
    copy_model(m, os.path.join(d, "nan_embed"))
    hidden = json.load(open(os.path.join(m, "config.json")))["hidden_size"]
    poison(os.path.join(d, "nan_embed"), "model.embed_tokens.weight", 2 * hidden + 5, np.nan)
    copy_model(m, os.path.join(d, "inf_lmhead"))
    poison(os.path.join(d, "inf_lmhead"), "lm_head.weight", 7 * hidden, np.inf)
    copy_model(m, os.path.join(d, "inf_norm"))
    poison(os.path.join(d, "inf_norm"), "model.norm.weight", 3, np.inf)
    copy_model(os.path.join(d, "m_bf16"), os.path.join(d, "nan_bf16"))
    poison(os.path.join(d, "nan_bf16"), "model.layers.0.mlp.down_proj.weight", 4, 0x7FC0)
    shutil.rmtree(os.path.join(d, "inf_f16"), ignore_errors=True)
    to_f16(m, os.path.join(d, "inf_f16"))
    qshape = json.load(open(os.path.join(d, "inf_f16", "config.json")))["hidden_size"]
    poison(os.path.join(d, "inf_f16"), "model.layers.2.self_attn.q_proj.weight", 1 * qshape + 2, -np.inf)

    copy_model(m, os.path.join(d, "dir_cfg"))
    os.remove(os.path.join(d, "dir_cfg", "config.json"))
    os.makedirs(os.path.join(d, "dir_cfg", "config.json"))

    copy_model(m, os.path.join(d, "shape_wrap"))
    p = os.path.join(d, "shape_wrap", "model.safetensors")
    header, data = read_st(p)
    end = max(t["data_offsets"][1] for k, t in header.items() if k != "__metadata__")
    header["zz.wrap"] = {"dtype": "F32", "shape": [2 ** 32, 2 ** 32, 4], "data_offsets": [end, end]}
    write_st(p, header, data)

    tk = json.load(open(os.path.join(a.shared, "tokenizers/dolma2/tokenizer.json")))
    os.makedirs(os.path.join(d, "tk_idmax"), exist_ok=True)
    tk["model"]["vocab"]["zzqxmax"] = 2 ** 30 - 1
    json.dump(tk, open(os.path.join(d, "tk_idmax/tokenizer.json"), "w"), ensure_ascii=False)
    del tk["model"]["vocab"]["zzqxmax"]
    os.makedirs(os.path.join(d, "tk_slow"), exist_ok=True)
    tk["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False}
    json.dump(tk, open(os.path.join(d, "tk_slow/tokenizer.json"), "w"), ensure_ascii=False)

    q = os.path.join(a.shared, "tokenizers/qwen2.5")
    for name in ("tq_idmax", "tq_addmax", "tq_nul"):
        shutil.rmtree(os.path.join(d, name), ignore_errors=True)
        shutil.copytree(q, os.path.join(d, name))
        os.chmod(os.path.join(d, name), 0o755)
        for f in os.listdir(os.path.join(d, name)):
            os.chmod(os.path.join(d, name, f), 0o644)
    v = json.load(open(os.path.join(q, "vocab.json")))
    v["zzqxmax"] = 2 ** 30 - 1
    json.dump(v, open(os.path.join(d, "tq_idmax/vocab.json"), "w"), ensure_ascii=False)
    c = json.load(open(os.path.join(q, "tokenizer_config.json")))
    c["added_tokens_decoder"][str(2 ** 30 - 1)] = {"content": "<zzqx>", "special": True, "lstrip": False,
                                                  "rstrip": False, "normalized": False, "single_word": False}
    json.dump(c, open(os.path.join(d, "tq_addmax/tokenizer_config.json"), "w"), ensure_ascii=False)
    lines = open(os.path.join(q, "merges.txt"), "rb").read().split(b"\n")
    lines[180] = lines[180][:1] + b"\0" + lines[180][1:]
    open(os.path.join(d, "tq_nul/merges.txt"), "wb").write(b"\n".join(lines))

    open(os.path.join(d, "ragged.json"), "w").write("[[1,2,3],[4,5]]\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
