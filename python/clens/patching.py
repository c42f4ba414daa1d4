"""patching.py: model.patch and model.patch_ids, over the library's patching engines.

model.patch runs the library's run engine (clens_run_*, the engine behind `clens patch`;
docs/patch-output.md) in a run folder, a temporary one unless ``out=`` names one (then the run
resumes there, as the CLI does), and reads back settings.json, records.jsonl and results.json:
the records and results are those `clens patch` writes for the same options. model.patch_ids
runs the library's patcher (clens_patcher) on one pair of token ids.

A metric is a built-in's name ("logprob_mass", "logit_mean") or a Python function of one row of
final logits (a float32 numpy view [vocab], valid during the call) returning a float: the
library calls it through its metric callback (CLENS_METRIC_CALLBACK), so a Python metric runs
inside the same engine as a built-in.
"""
import json
import os
import shutil
import tempfile
from ctypes import byref, c_char_p, c_double, c_int, c_int32, c_void_p

import numpy as np

from . import _lib
from ._lib import lib
from .errors import ArgError
from .model import _check, _err, _i32, _ptr

METHODS = {"fast": 0, "rerun": 1, "atp": 2}
BUILTIN = {"logprob_mass": 0, "logit_mean": 1}
CALLBACK = 2
PROMPT_HEAD = "Solve this math problem step by step:\n\n%s\n\nSolution:"


# ------------------------------------------------------------------ prompts

def prompt_ids(model, problem, prefix, prompt="chat"):
    """Token ids of a prompt as the run engine renders it (the seed's raw prompt, or the
    model's chat template with the prefix as the start of the answer)."""
    tok = model.tokenizer
    if prompt == "raw":
        return tok.encode((PROMPT_HEAD % problem) + " " + prefix, add_special_tokens=True)
    if prompt != "chat":
        raise ArgError("prompt must be raw or chat, got %r" % (prompt,))
    text = tok.render_chat([{"role": "user", "content": problem}], add_generation_prompt=True)
    return tok.encode(text + prefix, add_special_tokens=False)


def pair_ids(model, pair, prompt="chat", max_tokens=0):
    """(clean ids, corrupted ids, reason): the pair rendered for this model, reason None or the
    run engine's drop reason for a pair it cannot patch."""
    c = prompt_ids(model, pair["problem"], pair["clean_prefix"], prompt)
    r = prompt_ids(model, pair["problem"], pair["corrupted_prefix"], prompt)
    reason = None
    if len(c) != len(r):
        reason = "length_mismatch"
    elif not c or c[-1] != r[-1]:
        reason = "final_token_mismatch"
    elif max_tokens > 0 and len(c) > max_tokens:
        reason = "too_long"
    elif c == r:
        reason = "identical"
    return c, r, reason


# ------------------------------------------------------------------ metrics

class _Metric:
    """A metric for the library: a built-in kind, or a Python function behind the C callback.
    An exception raised by the function is kept (the library gets NaN) and re-raised by check()."""

    def __init__(self, metric, metric_name=None, need_name=False):
        self.fn, self.error = None, None
        if callable(metric):
            name = metric_name or getattr(metric, "__name__", None)
            if not name or name == "<lambda>":
                raise ArgError("a metric function needs a name: pass metric_name=... (it names the metric in "
                               "settings.json and the records, and a run resumes only under the same name)")
            if name in BUILTIN or name == "callback":
                raise ArgError("metric_name %r is a built-in's name" % (name,))
            self.name, self.kind, self.fn = name, CALLBACK, metric
            self.c_fn = _lib.METRIC_FN(self._call)
        elif metric in BUILTIN:
            self.name, self.kind = metric, BUILTIN[metric]
            self.c_fn = _lib.METRIC_FN()
        else:
            raise ArgError("metric must be logprob_mass, logit_mean or a function of a logits row, got %r"
                           % (metric,))

    def _call(self, user, logits, n):
        if self.error is not None:
            return float("nan")
        try:
            return float(self.fn(np.ctypeslib.as_array(logits, shape=(n,))))
        except BaseException as e:  # noqa: B036 - re-raised by check() after the C call returns
            self.error = e
            return float("nan")

    def check(self):
        if self.error is not None:
            e, self.error = self.error, None
            raise e


# -------------------------------------------------------------------- sites

def _site_types(model, sites, layers):
    """(short names of the site types in order, layers or None) for the run engine. A site is a
    type's short name (resid_pre, resid_post, attn_out, mlp_out, z: every layer, every head) or a
    TransformerLens hook name (blocks.3.hook_attn_out: its type at that layer)."""
    if isinstance(sites, str):
        sites = [sites]
    types, named_layers, bare = [], set(), False
    err = _err()
    for s in sites:
        if not isinstance(s, str):
            raise ArgError("site %r: model.patch takes site types and hook names; one head "
                           "(blocks.L.attn.hook_z[H]) goes to model.patch_ids" % (s,))
        pt = c_int()
        if lib.clens_hook_short_parse(s.encode(), byref(pt), None) == 0:
            bare = True
        else:
            site = _lib.Site()
            _check(lib.clens_site_parse(s.encode(), byref(site), byref(err)), err)
            if site.head >= 0:
                raise ArgError("site %r is one head: model.patch patches every head of z; use model.patch_ids "
                               "for one head" % (s,))
            pt = c_int(site.point)
            named_layers.add(site.layer)
        if not lib.clens_hook_patchable(pt.value):
            raise ArgError("site %r is not a patching site (resid_pre, resid_post, attn_out, mlp_out, z)" % (s,))
        name = lib.clens_hook_short_name(pt.value).decode()
        if name not in types:
            types.append(name)
    if not types:
        raise ArgError("no site given")
    if layers is None and named_layers:
        if bare:
            raise ArgError("sites mix site types (every layer) with hook names (one layer): give layers=[...]")
        layers = sorted(named_layers)
    return types, layers


# ---------------------------------------------------------------------- result

class PatchResult:
    """model.patch's result.

    results   dict in the results.json schema (docs/patch-output.md)
    settings  the settings.json document; records: the records.jsonl lines as dicts
    metric    the primary metric's name; layers: {type: [layer, ...]}
    clean, corr  float64 [n_kept]: the primary metric on the clean / corrupted prompts
    patched   {type: float64 [n_kept, n_layers_of_type]} (z: [n_kept, n_layers, n_heads])
    recovery  {type: same shapes}: 100 * (patched - corr) / (clean - corr), NaN where undefined
    ids       the kept pairs' ids
    """

    def __init__(self, settings_doc, records, results):
        self.settings, self.records, self.results = settings_doc, records, results
        st = settings_doc["settings"]
        self.metric = metric = st["metric"]
        H = st["n_heads"]
        self.layers = {t: list(st["layers"][t]) for t in st["site_types"]}
        kept = [r for r in records if r["status"] == "kept"][:st["n"]]
        self.ids = [r["id"] for r in kept]
        f = lambda v: np.nan if v is None else v  # noqa: E731
        self.clean = np.array([f(r["metrics"][metric]["clean"]) for r in kept], dtype=np.float64)
        self.corr = np.array([f(r["metrics"][metric]["corr"]) for r in kept], dtype=np.float64)
        self.patched, self.recovery = {}, {}
        for t, ls in self.layers.items():
            a = np.array([[([f(x) for x in v] if isinstance(v, list) else f(v))
                           for v in r["metrics"][metric]["patched"][t]] for r in kept], dtype=np.float64)
            if not kept:
                a = a.reshape((0, len(ls)) + ((H,) if t == "z" else ()))
            self.patched[t] = a
            D = (self.clean - self.corr).reshape((-1,) + (1,) * (a.ndim - 1))
            with np.errstate(divide="ignore", invalid="ignore"):
                rec = 100.0 * (a - self.corr.reshape(D.shape)) / D
            rec[np.broadcast_to(np.abs(D) < 1e-9, rec.shape)] = np.nan
            self.recovery[t] = rec

    def __repr__(self):
        return "PatchResult(%d kept pairs, metric %s, sites %s)" % (len(self.ids), self.metric,
                                                                    {t: len(v) for t, v in self.layers.items()})


def _read_run(out):
    with open(os.path.join(out, "settings.json")) as f:
        doc = json.load(f)
    with open(os.path.join(out, "records.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    return PatchResult(doc, records, results)


# ----------------------------------------------------------------------- patch

def patch(model, pairs, sites="resid_pre", metric="logprob_mass", layers=None, tokens=None, method="fast",
          prompt="chat", filter="default", min_diff=3.0, n=50, bootstrap=2000, seed=0, max_tokens=None,
          metric_name=None, out=None, progress=None):
    """The activation-patching run of `clens patch`, through the library's run engine (same
    options, same settings, records and results).

    pairs: a pairs.jsonl path or a list of pair dicts (clens.pairs / clens.read_pairs). sites,
    metric: see the module docstring. method: "fast" | "rerun" | "atp" (attribution patching;
    built-in metrics only). out: a run folder to write and resume (default: a temporary one,
    removed afterwards). progress: None or f(info dict) after every candidate."""
    if method not in METHODS:
        raise ArgError("method must be fast, rerun or atp, got %r" % (method,))
    if prompt not in ("chat", "raw"):
        raise ArgError("prompt must be raw or chat, got %r" % (prompt,))
    mt = _Metric(metric, metric_name)
    types, layers = _site_types(model, sites, layers)
    rp = lib.clens_run_default_params()
    fk = c_int()
    if lib.clens_filter_parse(str(filter).encode(), byref(fk)) != 0:
        raise ArgError("filter must be default or seed, got %r" % (filter,))
    tmp = None
    keep = []  # ctypes objects the run reads: alive until it is freed
    try:
        if out is None:
            tmp = tempfile.mkdtemp(prefix="clens-patch-")
            run_dir = os.path.join(tmp, "run")
        else:
            run_dir = os.fspath(out)
        if isinstance(pairs, (str, os.PathLike)):
            pairs_path = os.fspath(pairs)
        else:
            # a list of pairs: written beside the run (inside its folder when out= is given, so a
            # resumed run finds the same pairs file)
            base = tmp if tmp is not None else run_dir
            os.makedirs(base, exist_ok=True)
            pairs_path = os.path.join(base, "pairs.jsonl")
            with open(pairs_path + ".tmp", "w") as f:
                for i, p in enumerate(pairs):
                    if not isinstance(p, dict):
                        raise ArgError("pair %d: expected a pair dict (clens.pairs / clens.read_pairs); token-id "
                                       "pairs go to model.patch_ids" % i)
                    f.write(json.dumps(p, ensure_ascii=False) + "\n")
            os.replace(pairs_path + ".tmp", pairs_path)
        pts = []
        for t in types:
            pt = c_int()
            lib.clens_hook_short_parse(t.encode(), byref(pt), None)
            pts.append(pt.value)
        st_arr = (c_int * len(pts))(*pts)
        keep.append(st_arr)
        rp.pairs_path = pairs_path.encode()
        rp.site_types = st_arr
        rp.n_site_types = len(pts)
        if layers is not None:
            la = (c_int * len(layers))(*[int(x) for x in layers])
            keep.append(la)
            rp.layers, rp.n_layers = la, len(layers)
        rp.metric = mt.kind
        if mt.fn is not None:
            rp.metric_fn = mt.c_fn
            rp.metric_name = mt.name.encode()
        if tokens is not None:
            words = [w.encode() for w in tokens]
            wa = (c_char_p * len(words))(*words)
            keep.append((words, wa))
            rp.words, rp.n_words = wa, len(words)
        rp.method = METHODS[method]
        rp.prompt_chat = 1 if prompt == "chat" else 0
        rp.filter = fk.value
        rp.min_diff = float(min_diff)
        rp.n_target = int(n)
        rp.bootstrap_resamples = int(bootstrap)
        rp.bootstrap_seed = int(seed)
        rp.max_tokens = int(max_tokens or 0)
        rp.matmul = model.matmul.encode() if model.matmul else None
        run = c_void_p()
        err = _err()
        _check(lib.clens_run_open(byref(run), run_dir.encode(), model._m, byref(rp), byref(err)), err)
        try:
            cb = _lib.RUN_PROGRESS_FN()
            if progress is not None:
                def on_progress(user, info):
                    i = info.contents
                    progress({"done": i.done, "kept": i.kept, "target": i.target, "candidates": i.candidates,
                              "last_id": i.last_id.decode() if i.last_id else None,
                              "last_reason": i.last_reason.decode() if i.last_reason else None})
                cb = _lib.RUN_PROGRESS_FN(on_progress)
            rc = lib.clens_run_execute(run, cb, None, byref(err))
            mt.check()
            _check(rc, err)
            _check(lib.clens_run_finish(run, None, byref(err)), err)
        finally:
            lib.clens_run_free(run)
        return _read_run(run_dir)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def patch_ids(model, clean, corr, sites, metric="logprob_mass", method="fast", tokens=None, metric_name=None):
    """One pair of token ids (equal lengths) through the library's patcher: returns
    (clean value, corrupted value, float64 [n_sites] of patched values) of one metric. sites are
    site names (blocks.3.hook_resid_pre, blocks.3.attn.hook_z[5] for one head,
    blocks.{n_layers}.hook_resid_pre after the last block); a built-in metric needs tokens=[ids]."""
    if method not in ("fast", "rerun"):
        raise ArgError("model.patch_ids: method must be fast or rerun (atp runs in model.patch), got %r"
                       % (method,))
    mt = _Metric(metric, metric_name or ("python" if callable(metric) else None))
    if isinstance(sites, str):
        sites = [sites]
    err = _err()
    cs = (_lib.Site * len(sites))()
    for i, s in enumerate(sites):
        _check(lib.clens_site_parse(str(s).encode(), byref(cs[i]), byref(err)), err)
    ids = None
    if mt.fn is None:
        if not tokens:
            raise ArgError("a built-in metric needs tokens=[token ids]")
        ids = _i32(tokens)
        cm = _lib.Metric(mt.kind, _ptr(ids, c_int32), len(ids), _lib.METRIC_FN(), None)
    else:
        cm = _lib.Metric(CALLBACK, None, 0, mt.c_fn, None)
    a, b = _i32(clean), _i32(corr)
    if len(a) != len(b):
        raise ArgError("clean and corrupted prompts differ in length (%d, %d)" % (len(a), len(b)))
    pt = c_void_p()
    _check(lib.clens_patcher_new(byref(pt), model._m, len(a), cs, len(sites), byref(cm), 1, byref(err)), err)
    try:
        vals = np.zeros(2 + len(sites), dtype=np.float64)
        rc = lib.clens_patch_run(pt, _ptr(a, c_int32), _ptr(b, c_int32), len(a), METHODS[method],
                                 _ptr(vals, c_double), None, byref(err))
        mt.check()
        _check(rc, err)
    finally:
        lib.clens_patcher_free(pt)
    return float(vals[0]), float(vals[1]), vals[2:].copy()


def logprob_mass(ids):
    """A Python metric equal to the built-in logprob_mass over ids (for reference and tests)."""
    ids = np.asarray(ids)

    def logprob_mass_of(logits):
        x = logits.astype(np.float64)
        mx = x.max()
        sel = x[ids]
        mxs = sel.max()
        return (mxs + np.log(np.exp(sel - mxs).sum())) - (mx + np.log(np.exp(x - mx).sum()))
    return logprob_mass_of


__all__ = ["patch", "patch_ids", "PatchResult", "logprob_mass", "pair_ids", "prompt_ids"]
