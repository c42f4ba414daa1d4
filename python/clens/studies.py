"""studies.py: thin wrappers of the library's folder-writing calls: clens.study (clens_study_*),
model.capture / clens.probe (clens_capture_pairs, clens_probe_run), clens.compare
(clens_compare_write) and model.steer / model.steer_pair (clens_steer_generate,
clens_steer_pair). Each writes what the matching CLI subcommand writes (docs/study.md,
docs/probe.md, docs/compare.md, docs/steer.md) and returns its summary; nothing is computed here.
"""
import ctypes
import json
import os
from ctypes import POINTER, byref, c_char_p, c_double, c_int, c_int32, c_ubyte, c_void_p

import numpy as np

from . import _lib
from ._lib import lib
from .errors import ArgError
from .model import _check, _err, _i32, _ptr


def _take_text(p):
    """A malloc'd C string -> str (freed)."""
    if not p.value:
        return None
    try:
        return ctypes.string_at(p.value).decode()
    finally:
        lib.free(p.value)


def _line_progress(progress):
    if progress is None:
        return _lib.LINE_PROGRESS_FN()
    return _lib.LINE_PROGRESS_FN(lambda user, line: progress(line.decode()))


# -------------------------------------------------------------------- study

def study(path, out=None, fidelity=None, threads=0, plan=False, progress=None):
    """Runs (or, with plan=True, only plans) the study file at path, as `clens study`: returns
    study.md's text (or the plan's). out / fidelity override the file's; progress: f(line)."""
    opt = _lib.StudyOptions(fidelity.encode() if fidelity else None, os.fspath(out).encode() if out else None,
                            int(threads))
    s = c_void_p()
    err = _err()
    _check(lib.clens_study_load(byref(s), os.fspath(path).encode(), byref(opt), byref(err)), err)
    try:
        text = c_void_p()
        if plan:
            _check(lib.clens_study_plan(s, byref(text), byref(err)), err)
        else:
            cb = _line_progress(progress)
            _check(lib.clens_study_run(s, cb, None, byref(text), byref(err)), err)
        return _take_text(text)
    finally:
        lib.clens_study_free(s)


# ----------------------------------------------------------- capture, probe

POSITIONS = {"final": 0, "error": 1, "all": 2}


def capture(model, pairs, out, sites=None, positions="final", prompt="chat", limit=0, max_tokens=0):
    """`clens capture`: the pairs' activations at sites (hook names, "blocks.*.NAME", "all"; None:
    the library's default, the residual stream at every depth) into out (HOOK.npy, index.json,
    settings.json; docs/probe.md). Returns index.json as a dict."""
    if positions not in POSITIONS:
        raise ArgError("positions must be final, error or all, got %r" % (positions,))
    if prompt not in ("chat", "raw"):
        raise ArgError("prompt must be raw or chat, got %r" % (prompt,))
    p = lib.clens_capture_default_params()
    p.pairs_path = os.fspath(pairs).encode()
    if sites is not None:
        sites_b = (",".join(sites) if isinstance(sites, (list, tuple)) else sites).encode()
        p.sites = sites_b  # kept alive by sites_b until the call returns
    p.positions = POSITIONS[positions]
    p.prompt_chat = 1 if prompt == "chat" else 0
    p.limit = int(limit)
    p.max_tokens = int(max_tokens)
    err = _err()
    _check(lib.clens_capture_pairs(model._m, byref(p), os.fspath(out).encode(), _lib.CAPTURE_PROGRESS_FN(), None,
                                   byref(err)), err)
    with open(os.path.join(os.fspath(out), "index.json")) as f:
        return json.load(f)


def probe(capture_dir, out, folds=5, C=1.0, bootstrap=1000, permutations=20, random_dirs=20, seed=0, hooks=None):
    """`clens probe` on a capture folder: probe.json and the directions in out (docs/probe.md).
    Returns probe.json as a dict."""
    p = lib.clens_probe_default_params()
    p.folds, p.C, p.bootstrap, p.permutations = int(folds), float(C), int(bootstrap), int(permutations)
    p.random_dirs, p.seed = int(random_dirs), int(seed)
    p.hook_filter = hooks.encode() if hooks else None
    err = _err()
    _check(lib.clens_probe_run(os.fspath(capture_dir).encode(), byref(p), os.fspath(out).encode(), None,
                               byref(err)), err)
    with open(os.path.join(os.fspath(out), "probe.json")) as f:
        return json.load(f)


# ------------------------------------------------------------------ compare

def _strings(items):
    items = [s.encode() for s in items or []]
    return items, ((c_char_p * len(items))(*items) if items else None), len(items)


def compare(inputs, out, resamples=2000, seed=0, labels=None, trainings=None, probes=None, steers=None, atps=None):
    """`clens compare`: the patching profiles of run folders / results.json files side by side
    in out (docs/compare.md). labels, trainings, probes, steers, atps: lists of "INPUT=VALUE".
    Returns comparison.md's text."""
    p = lib.clens_compare_default_params()
    p.resamples, p.seed = int(resamples), int(seed)
    keep = []
    for field, vals in (("labels", labels), ("trainings", trainings), ("probes", probes), ("steers", steers),
                        ("atps", atps)):
        k = _strings(vals)
        keep.append(k)
        setattr(p, field, k[1])
        setattr(p, "n_" + field, k[2])
    ins = _strings([os.fspath(i) for i in inputs])
    md = c_void_p()
    err = _err()
    _check(lib.clens_compare_write(ins[1], ins[2], byref(p), os.fspath(out).encode(), byref(md), byref(err)), err)
    return _take_text(md)


# -------------------------------------------------------------------- steer

def _steer_spec(model, vector, alpha, mode, point, positions, layers, means=None):
    """A clens_steer over vector ([d_model]: the same at every steered layer, or [n_layers, d_model]);
    means ([n_layers] or a number): mean-ablate's reference mean of x.u per layer."""
    L, C = model.n_layers, model.d_model
    v = np.asarray(vector, dtype=np.float32)
    if v.shape == (C,):
        v = np.tile(v, (L, 1))
    if v.shape != (L, C):
        raise ArgError("steering vector of shape %s: expected [d_model] or [n_layers, d_model] = [%d, %d]"
                       % (v.shape, L, C))
    v = np.ascontiguousarray(v)
    m, pos = c_int(), c_int()
    if lib.clens_steer_mode_parse(str(mode).encode(), byref(m)):
        raise ArgError("mode must be add, ablate or mean-ablate, got %r" % (mode,))
    mu = None
    if mode == "mean-ablate":
        if means is None:
            raise ArgError("mode mean-ablate needs means= (the reference mean of x.u per layer)")
        mu = np.ascontiguousarray(np.broadcast_to(np.asarray(means, dtype=np.float32), (L,)))
    if lib.clens_steer_positions_parse(str(positions).encode(), byref(pos)):
        raise ArgError("positions must be all, prompt, generated or last, got %r" % (positions,))
    pts = {"resid_post": 5, "resid_pre": 1}  # clens_hook_point
    if point not in pts:
        raise ArgError("point must be resid_post or resid_pre, got %r" % (point,))
    active = None
    if layers is not None:
        active = np.zeros(L, dtype=np.uint8)
        for layer in layers:
            if not 0 <= int(layer) < L:
                raise ArgError("steering layer %d outside 0..%d" % (layer, L - 1))
            active[int(layer)] = 1
    spec = _lib.Steer(m.value, pts[point], pos.value, float(alpha), L, _ptr(v, ctypes.c_float),
                      active.ctypes.data_as(POINTER(c_ubyte)) if active is not None else None,
                      _ptr(mu, ctypes.c_float) if mu is not None else None)
    return spec, (v, active, mu)


def steer(model, prompts, vector, alpha=1.0, mode="add", point="resid_post", positions="all", layers=None,
          max_new_tokens=32, ban=None, stop_ids=None, means=None, temperature=0.0, top_k=0, top_p=1.0, seed=0):
    """Greedy generation with steering (clens_steer_generate; docs/steer.md): vector added
    (mode "add"), ablated ("ablate") or moved to means ("mean-ablate", means= per layer) at the
    steered layers (all, or layers=[...]); greedy, or sampled as model.generate samples (temperature,
    top_k, top_p, seed: without steering the same draws). prompts: one
    list of ids or a list of them. Returns the new ids (a list, or a list of lists)."""
    single = len(prompts) > 0 and np.isscalar(prompts[0])
    ps = [prompts] if single else list(prompts)
    spec, keep = _steer_spec(model, vector, alpha, mode, point, positions, layers, means)
    arrs = [_i32(p) for p in ps]
    ptrs = (_lib.PI32 * len(arrs))(*[_ptr(a, c_int32) for a in arrs])
    lens = (c_int * len(arrs))(*[len(a) for a in arrs])
    b = _i32(ban or [])
    st = _i32(model.stop_ids() if stop_ids is None else stop_ids)
    out = (_lib.PI32 * len(arrs))()
    out_n = (c_int * len(arrs))()
    err = _err()
    if temperature < 0 or not 0 < top_p <= 1:
        raise ArgError("temperature must be >= 0 and top_p in (0, 1]")
    sp = lib.clens_sample_default_params()
    sp.temperature, sp.top_p, sp.top_k, sp.seed = float(temperature), float(top_p), int(top_k), int(seed)
    sp.max_new_tokens = int(max_new_tokens)
    sp.stop_ids, sp.n_stop = _ptr(st, c_int32), len(st)
    rc = lib.clens_steer_generate_sampled(model._m, ptrs, lens, len(arrs), byref(spec), _ptr(b, c_int32), len(b),
                                          byref(sp), out, out_n, byref(err))
    res = []
    for i in range(len(arrs)):
        if out[i]:
            res.append(out[i][:out_n[i]])
            lib.free(out[i])
    _check(rc, err)
    del keep
    return res[0] if single else res


def steer_pair(model, clean, corr, vector, tokens, alpha=1.0, mode="add", point="resid_post", positions="last",
               layers=None, metric="logprob_mass", rerun=False, means=None):
    """Final-token metric of a pair with and without steering (clens_steer_pair): returns
    (clean, corrupted) unsteered and (clean, corrupted) steered. metric: logprob_mass / logit_mean
    over tokens."""
    from .patching import BUILTIN
    if metric not in BUILTIN:
        raise ArgError("metric must be logprob_mass or logit_mean, got %r" % (metric,))
    spec, keep = _steer_spec(model, vector, alpha, mode, point, positions, layers, means)
    ids = _i32(tokens)
    mt = _lib.Metric(BUILTIN[metric], _ptr(ids, c_int32), len(ids), _lib.METRIC_FN(), None)
    a, b = _i32(clean), _i32(corr)
    if len(a) != len(b):
        raise ArgError("clean and corrupted prompts differ in length (%d, %d)" % (len(a), len(b)))
    out = np.zeros(4, dtype=np.float64)
    err = _err()
    _check(lib.clens_steer_pair(model._m, _ptr(a, c_int32), _ptr(b, c_int32), len(a), byref(spec), 1, byref(mt), 1,
                                1 if rerun else 0, _ptr(out, c_double), None, byref(err)), err)
    del keep
    return (float(out[0]), float(out[1])), (float(out[2]), float(out[3]))
