#!/usr/bin/python3
"""Writes a llama.cpp control-vector GGUF file by hand from the GGUF specification (ggml's
docs/gguf.md, summarised in docs/steer.md), with struct.pack only: an independent writer for
the tests of clens's reader (src/formats/gguf.c), sharing no code with it.

Layout: magic b"GGUF", uint32 version 3, uint64 tensor_count, uint64 metadata_kv_count;
key/values (gguf_string key = uint64 length + bytes, uint32 value type, value); tensor infos
(name, uint32 n_dims, uint64 dims, uint32 ggml type 0 = F32, uint64 offset into the data
section, a multiple of the alignment); zero padding to general.alignment (default 32);
tensor data, each tensor padded to the alignment. All little-endian.

Input: a .npy of shape [n_rows, C] (float32); row N becomes tensor direction.N for the rows
listed by --layers (default: every row >= 1 that is not all zero).
Options --alignment A writes general.alignment = A (uint32); --extra-kv adds a string, a
uint64, a float64, a bool and a nested array key, so the reader must skip every value type.

Example: gguf_write_ref.py dirs.npy out.gguf --layers 1,3 --alignment 64 --extra-kv
Exit codes: 0 ok, 1 error, 2 usage.
"""
import argparse
import struct
import sys

import numpy as np

T_UINT8, T_UINT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_FLOAT64 = 0, 4, 6, 7, 8, 9, 10, 12


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npy", help="float32 array [n_rows, C] (path)")
    ap.add_argument("out", help="output .gguf (path)")
    ap.add_argument("--layers", default=None, help="comma-separated rows to write (default: non-zero rows >= 1)")
    ap.add_argument("--alignment", type=int, default=None, help="general.alignment (int, default: absent = 32)")
    ap.add_argument("--extra-kv", action="store_true", help="add keys of every other value type (flag)")
    ap.add_argument("--model-hint", default="qwen2", help="controlvector.model_hint (string, default qwen2)")
    a = ap.parse_args()
    rows = np.load(a.npy).astype("<f4")
    if rows.ndim != 2:
        print("gguf_write_ref: the .npy must be 2-D", file=sys.stderr)
        return 2
    layers = [int(x) for x in a.layers.split(",")] if a.layers else [
        i for i in range(1, rows.shape[0]) if np.any(rows[i] != 0)]
    align = a.alignment or 32
    kvs = [kv("general.architecture", T_STRING, gstr("controlvector")),
           kv("controlvector.model_hint", T_STRING, gstr(a.model_hint)),
           kv("controlvector.layer_count", T_UINT32, struct.pack("<I", len(layers)))]
    if a.alignment:
        kvs.append(kv("general.alignment", T_UINT32, struct.pack("<I", align)))
    if a.extra_kv:
        kvs.append(kv("x.u64", T_UINT64, struct.pack("<Q", 2 ** 63 + 5)))
        kvs.append(kv("x.f64", T_FLOAT64, struct.pack("<d", -1.25)))
        kvs.append(kv("x.flag", T_BOOL, struct.pack("<B", 1)))
        inner = struct.pack("<IQ", T_UINT8, 3) + bytes([1, 2, 3])
        kvs.append(kv("x.nested", T_ARRAY, struct.pack("<IQ", T_ARRAY, 2) + inner + inner))
        kvs.append(kv("x.strings", T_ARRAY, struct.pack("<IQ", T_STRING, 2) + gstr("a") + gstr("bc")))
    C = rows.shape[1]
    infos, data, off = b"", b"", 0
    for layer in layers:
        infos += gstr(f"direction.{layer}") + struct.pack("<IQIQ", 1, C, 0, off)
        blob = rows[layer].tobytes()
        blob += b"\0" * ((-len(blob)) % align)
        data += blob
        off += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(layers), len(kvs)) + b"".join(kvs) + infos
    head += b"\0" * ((-len(head)) % align)
    with open(a.out, "wb") as f:
        f.write(head + data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
