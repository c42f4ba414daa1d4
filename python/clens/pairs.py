"""pairs.py: clens.pairs (the library's pair builder, clens_pairs_build) and pairs.jsonl I/O.

A pair is a dict with the keys of one pairs.jsonl line (docs/pairs.md): made by
the library's clens_pair_to_json, so clens.pairs(...) equals the lines
`clens pairs` writes. On-policy pairs (clens pairs --on-policy) are not bound
yet: use the CLI for them and clens.read_pairs on its output.
"""
import ctypes
import json
import os
from ctypes import byref, c_size_t

from . import _lib
from ._lib import lib
from .model import _check, _err


def _to_dicts(arr, n):
    out = []
    for i in range(n):
        s = ctypes.c_void_p()
        err = _err()
        _check(lib.clens_pair_to_json(byref(arr[i]), byref(s), byref(err)), err)
        try:
            out.append(json.loads(ctypes.string_at(s.value).decode("utf-8")))
        finally:
            lib.free(s)
    return out


def pairs(data, format, seed=0, limit=0, cut="line", corrupt="plus-minus-one", site="random", source_name=None,
          out=None, return_stats=False):
    """(clean, corrupted) pairs from a MATH or GSM8K JSONL dataset, as `clens pairs --data DATA
    --format FORMAT ...` makes them: a list of pair dicts (and, with return_stats, the build's
    counters). out: also write them as pairs.jsonl (atomically, by the library)."""
    p = lib.clens_pairs_default_params()
    err = _err()
    data_b = os.fspath(data).encode()
    src_b = source_name.encode() if source_name else None
    p.data_path = data_b
    p.source_name = src_b
    p.seed = int(seed)
    p.limit = int(limit)
    for fn, v in ((lib.clens_pairs_parse_format, format), (lib.clens_pairs_parse_cut, cut),
                  (lib.clens_pairs_parse_corrupt, corrupt), (lib.clens_pairs_parse_site, site)):
        _check(fn(byref(p), str(v).encode(), byref(err)), err)
    arr = ctypes.POINTER(_lib.Pair)()
    n = c_size_t()
    st = _lib.PairsStats()
    _check(lib.clens_pairs_build(byref(p), byref(arr), byref(n), byref(st), byref(err)), err)
    try:
        res = _to_dicts(arr, n.value)
        if out is not None:
            _check(lib.clens_pairs_write_jsonl(os.fspath(out).encode(), arr, n.value, byref(err)), err)
    finally:
        lib.clens_pairs_free(arr, n.value)
    if not return_stats:
        return res
    names = [lib.clens_pairs_reason_name(i).decode() for i in range(lib.clens_pairs_reason_count())]
    stats = {"source_sha256": st.source_sha256.decode(), "problems": st.problems,
             "problems_with_site": st.problems_with_site, "candidates": st.candidates, "sites": st.sites,
             "pairs": st.pairs, "duplicates": st.duplicates,
             "drops": {names[i]: st.drops[i] for i in range(1, len(names)) if st.drops[i]}}
    return res, stats


def read_pairs(path):
    """The pairs of a pairs.jsonl file, checked by the library (clens_pairs_read_jsonl)."""
    arr = ctypes.POINTER(_lib.Pair)()
    n = c_size_t()
    err = _err()
    _check(lib.clens_pairs_read_jsonl(os.fspath(path).encode(), byref(arr), byref(n), byref(err)), err)
    try:
        return _to_dicts(arr, n.value)
    finally:
        lib.clens_pairs_free(arr, n.value)
