"""Small safetensors access for the test tools (tools/plant_*.py): the format is an 8-byte little-endian
header length, a JSON header {name: {dtype, shape, data_offsets}}, then the tensor bytes.

  Mapped(path)            the file mapped read-write: .header, .tensor(name) a numpy view that writes
                          through (F32 as float32, BF16 as raw uint16), .put(name, value) converting
                          to the tensor's dtype, .flush()
  read_f32(path)          {name: float32 array} (F32 files only)
  write_f32(path, dict)   an F32 file, names sorted, header padded to 8 bytes, written atomically
"""

import json
import os
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "BF16": np.uint16}


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


class Mapped:
    def __init__(self, path, tool, dtypes=("F32", "BF16")):
        self.path, self.tool, self.dtypes = path, tool, dtypes
        n, self.header = read_header(path)
        self.base = 8 + n
        self.mm = np.memmap(path, dtype=np.uint8, mode="r+")

    def dtype(self, name):
        return self.header[name]["dtype"]

    def tensor(self, name):
        t = self.header[name]
        if t["dtype"] not in self.dtypes:
            raise SystemExit("%s: %s: %s is %s; supported: %s" % (self.tool, self.path, name, t["dtype"],
                                                                 ", ".join(self.dtypes)))
        s, e = t["data_offsets"]
        return self.mm[self.base + s: self.base + e].view(_DTYPES[t["dtype"]]).reshape(t["shape"])

    def put(self, view, dtype, value):
        """Writes value (float) into view (from tensor()) in the tensor's dtype (BF16: truncated)."""
        v = np.asarray(value, dtype=np.float32)
        view[...] = v if dtype == "F32" else (v.view(np.uint32) >> 16).astype(np.uint16)

    def flush(self):
        self.mm.flush()


def read_f32(path, tool="st_file"):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "F32":
            raise SystemExit("%s: %s: %s is %s, only F32 is supported" % (tool, path, k, v["dtype"]))
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"])
    return out


def write_f32(path, tensors):
    header, off, blobs = {}, 0, []
    for k in sorted(tensors):
        b = np.ascontiguousarray(tensors[k], dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
