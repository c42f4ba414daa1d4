"""patching.py: model.patch, the study's final-token activation-patching sweep (clens patch).

Same rules as `clens patch` (src/cli/cmd_patch.c; docs/patch-output.md): pairs
rendered raw or with the model's chat template, the token-level check, the
logit_mean filter, the first n kept pairs in candidate order, records and a
results dict in the results.json schema (built by the library's
clens_results_build from the same settings and records the CLI writes).

Metric: a built-in name ("logprob_mass", "logit_mean") runs the library's
patcher (clens_patcher, FAST or RERUN). A Python callable f(logits[vocab]) ->
float cannot run inside the C patcher today (its metrics are a closed enum), so
for a callable the binding runs the same fast sweep itself over the public
forward API: the clean and corrupted prompts prefilled, then every patched
variant as an ephemeral one-token row starting at its site's block on the
corrupted KV cache, all in one batch, the final residuals unembedded with
clens_logits_from_resid_rows and f applied to each logits row. The filter and
the clean/corrupted built-in values still come from the C patcher, so the kept
pairs are the same as with a built-in metric.

Sites: site-type names ("resid_pre", "attn_out", "mlp_out", "resid_post", "z":
every layer, every head), TransformerLens hook names
("blocks.3.hook_resid_pre", "blocks.3.attn.hook_z": every head) or a
(hook name, head) pair for one head of z. "blocks.{n_layers}.hook_resid_pre" is
the residual after the last block.
"""
import ctypes
import hashlib
import json
import math
import os
import re
import time
from ctypes import byref, c_double, c_float, c_int, c_int32, c_void_p

import numpy as np

from . import _lib
from ._lib import lib
from .errors import ArgError
from .model import (P_ATTN_OUT, P_ATTN_Z, P_MLP_OUT, P_RESID_POST, P_RESID_PRE, _check, _err, _i32, _ptr)

SITE_TYPES = ["resid_pre", "resid_post", "attn_out", "mlp_out", "z"]  # clens_site_type order
SITE_HOOK = {"resid_pre": P_RESID_PRE, "resid_post": P_RESID_POST, "attn_out": P_ATTN_OUT,
             "mlp_out": P_MLP_OUT, "z": P_ATTN_Z}
HOOK_SUFFIX = {"hook_resid_pre": "resid_pre", "hook_resid_post": "resid_post", "hook_attn_out": "attn_out",
               "hook_mlp_out": "mlp_out", "attn.hook_z": "z"}
BUILTIN = {"logprob_mass": 0, "logit_mean": 1}
DEFAULT_WORDS = ["Wait", "But", "Actually", "Hmm"]
SEED_WORDS = ["Wait", "But", "Actually", "Hmm", "wait", "but", "actually"]
PROMPT_HEAD = "Solve this math problem step by step:\n\n%s\n\nSolution:"


# ------------------------------------------------------------------ prompts

def prompt_ids(model, problem, prefix, prompt="chat"):
    """Token ids of a prompt as src/interp/prompts.c renders it."""
    tok = model.tokenizer
    if prompt == "raw":
        return tok.encode((PROMPT_HEAD % problem) + " " + prefix, add_special_tokens=True)
    if prompt != "chat":
        raise ArgError("prompt must be raw or chat, got %r" % (prompt,))
    text = tok.render_chat([{"role": "user", "content": problem}], add_generation_prompt=True)
    return tok.encode(text + prefix, add_special_tokens=False)


def pair_ids(model, pair, prompt="chat", max_tokens=0):
    """(clean ids, corrupted ids, reason): clens_pair_token_check's rules."""
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


# --------------------------------------------------------------- token sets

def token_sets(model, words=None):
    """(logprob_mass ids, tokens), (logit_mean ids, tokens) as clens patch builds them."""
    tok = model.tokenizer
    seed_mode = words is None
    words = DEFAULT_WORDS if words is None else list(words)
    mass_ids, mass_strs, mean_ids, mean_strs = [], [], [], []
    for w in words:
        low = "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in w)
        for form in (w, " " + w, low, " " + low):
            ids = tok.encode(form, add_special_tokens=False)
            if len(ids) == 1 and ids[0] not in mass_ids:
                mass_ids.append(ids[0])
                mass_strs.append(form)
    for w in (SEED_WORDS if seed_mode else words):
        ids = tok.encode(w, add_special_tokens=False)
        if ids and ids[0] not in mean_ids:
            mean_ids.append(ids[0])
            mean_strs.append(w)
    if not mass_ids:
        raise ArgError("no correction string is a single token in this vocabulary")
    return (mass_ids, mass_strs), (mean_ids, mean_strs)


# -------------------------------------------------------------------- sites

class SitePlan:
    """The sites of a sweep: per type (first = primary) its layers, for z the heads per layer."""

    def __init__(self, model, sites, layers=None):
        L, H = model.n_layers, model.n_heads
        self.types, self.layers, self.heads = [], {}, {}

        def add(t, layer, head=None):
            maxl = L if t == "resid_pre" else L - 1
            if not 0 <= layer <= maxl:
                raise ArgError("site %s layer %d out of range (layers 0..%d)" % (t, layer, maxl))
            if t not in self.types:
                self.types.append(t)
                self.layers[t] = []
            if layer not in self.layers[t]:
                self.layers[t].append(layer)
            if t == "z":
                hs = self.heads.setdefault(layer, set())
                if head is None:
                    hs.update(range(H))
                elif not 0 <= head < H:
                    raise ArgError("site z head %d out of range (heads 0..%d)" % (head, H - 1))
                else:
                    hs.add(head)

        if isinstance(sites, (str, tuple)):
            sites = [sites]
        for s in sites:
            head = None
            if isinstance(s, tuple):
                s, head = s
            if s in SITE_TYPES:
                if head is not None:
                    raise ArgError("a head goes with a hook name, e.g. ('blocks.3.attn.hook_z', 5)")
                for layer in range(L + 1 if s == "resid_pre" else L):
                    if layers is None or layer in layers:
                        add(s, layer)
                continue
            m = re.fullmatch(r"blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|hook_attn_out|hook_mlp_out|attn\.hook_z)",
                             str(s))
            if not m:
                raise ArgError("unknown site %r: a type (%s) or a hook name such as blocks.3.hook_resid_pre"
                               % (s, ", ".join(SITE_TYPES)))
            t = HOOK_SUFFIX[m.group(2)]
            if head is not None and t != "z":
                raise ArgError("site %r has no heads" % (s,))
            add(t, int(m.group(1)), head)
        if not self.types:
            raise ArgError("no site selected")
        for t in self.types:
            self.layers[t].sort()
        self.H = H
        # the flat list in the library's order: types in order, layers ascending, heads ascending
        self.flat = []
        for t in self.types:
            for layer in self.layers[t]:
                if t == "z":
                    self.flat += [(t, layer, h) for h in sorted(self.heads[layer])]
                else:
                    self.flat.append((t, layer, -1))

    def unflatten(self, values):
        """Flat per-site values -> {type: list over layers (z: list over all heads, None where not run)}."""
        out, k = {}, 0
        for t in self.types:
            arr = []
            for layer in self.layers[t]:
                if t == "z":
                    row = [None] * self.H
                    for h in sorted(self.heads[layer]):
                        row[h] = values[k]
                        k += 1
                    arr.append(row)
                else:
                    arr.append(values[k])
                    k += 1
            out[t] = arr
        return out


# -------------------------------------------------------- canonical JSON hash

def _jansson_real(x):
    """A double as jansson prints it with JSON_REAL_PRECISION(17)."""
    s = "%.17g" % x
    if "e" in s:
        mant, exp = s.split("e")
        sign = "-" if exp[0] == "-" else ""
        exp = exp.lstrip("+-").lstrip("0") or "0"
        s = mant + "e" + sign + exp
    elif "." not in s:
        s += ".0"
    return s


def canonical_json(v):
    """json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) of jansson."""
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canonical_json(x) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return _jansson_real(v)
    if isinstance(v, int):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def _host_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()[:255]
    except OSError:
        pass
    return "unknown"


def _tokenizer_sha256(tok):
    d = tok.info["dir"]
    p = os.path.join(d, "tokenizer.json")
    h = hashlib.sha256()
    try:
        if os.path.exists(p):
            with open(p, "rb") as f:
                h.update(f.read())
            return h.hexdigest()
        for name in ("vocab.json", "merges.txt"):
            with open(os.path.join(d, name), "rb") as f:
                h.update(f.read())
        return h.hexdigest()
    except OSError:
        return ""


# ------------------------------------------------------------------- pairs in

def _read_pairs(pairs):
    """-> (list of pair dicts, pairs_file, pairs_sha256)."""
    if isinstance(pairs, (str, os.PathLike)):
        from .pairs import read_pairs
        path = os.fspath(pairs)
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        return read_pairs(path), path, sha
    out = []
    for i, p in enumerate(pairs):
        if isinstance(p, dict):
            out.append(p)
        elif isinstance(p, (tuple, list)) and len(p) == 2:
            out.append({"id": str(i), "clean_ids": list(map(int, p[0])), "corrupted_ids": list(map(int, p[1]))})
        else:
            raise ArgError("pair %d: expected a pair dict (clens.pairs) or (clean ids, corrupted ids)" % i)
    text = "\n".join(json.dumps(p, sort_keys=True) for p in out)
    return out, "<memory>", hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------- the callable sweep

class _CallableSweep:
    """The fast sweep with a Python metric (see the module docstring), over clens_forward."""

    def __init__(self, model, plan, fn, max_tokens):
        self.model, self.plan, self.fn = model, plan, fn
        self.C, self.L, self.V = model.d_model, model.n_layers, model.vocab
        self.D = model.head_dim
        self.sites = sorted(range(len(plan.flat)), key=lambda k: plan.flat[k][1])  # stable by start layer
        self.max_rows = max(len(plan.flat), 64)
        self.ctx = c_void_p()
        err = _err()
        _check(lib.clens_ctx_new(byref(self.ctx), model._m, 2, max_tokens, self.max_rows, byref(err)), err)

    def close(self):
        if self.ctx:
            lib.clens_ctx_free(self.ctx)
            self.ctx = None

    def _prefill(self, seq, ids, capture):
        """Commits ids on seq; returns the final residual [C]; capture[(point, layer)] gets the
        final position's activation."""
        T, C = len(ids), self.C
        ids = _i32(ids)
        final = T - 1
        out = np.empty((self.max_rows, C), dtype=np.float32)

        def hook(user, evp):
            ev = evp.contents
            if ev.layer < 0:
                return
            rows = np.ctypeslib.as_array(ev.rows, shape=(ev.n_rows,))
            batch = ev.batch
            for i in range(ev.n_rows):
                if batch[rows[i]].pos == final:
                    capture[(ev.point, ev.layer)] = np.ctypeslib.as_array(ev.data, shape=(ev.n_rows, ev.width))[i].copy()
        cb = _lib.HOOK_FN(hook)
        lib.clens_ctx_seq_clear(self.ctx, seq)
        s = 0
        while s < T:
            k = min(T - s, self.max_rows)
            rows = (_lib.Row * k)(*[_lib.Row(seq, s + i, int(ids[s + i]), 0, 1, 0) for i in range(k)])
            a = _lib.ForwardArgs()
            a.hook = cb
            a.out_resid = _ptr(out, c_float) if s + k == T else None
            err = _err()
            _check(lib.clens_forward(self.ctx, rows, k, byref(a), byref(err)), err)
            s += k
        return out[k - 1].copy()

    def _metric_rows(self, resid):
        n = resid.shape[0]
        vals = []
        for s in range(0, n, 32):
            k = min(32, n - s)
            normed = np.empty((k, self.C), dtype=np.float32)
            logits = np.empty((k, self.V), dtype=np.float32)
            chunk = np.ascontiguousarray(resid[s:s + k])
            lib.clens_logits_from_resid_rows(self.model._m, _ptr(chunk, c_float), k, _ptr(normed, c_float),
                                             _ptr(logits, c_float))
            vals += [float(self.fn(logits[r])) for r in range(k)]
        return vals

    def run(self, clean, corr):
        """(metric clean, metric corrupted, [metric patched per site in plan.flat order])."""
        T, C, L = len(clean), self.C, self.L
        cap_c, cap_r = {}, {}
        fin_c = self._prefill(0, clean, cap_c)
        fin_r = self._prefill(1, corr, cap_r)
        m_clean, m_corr = self._metric_rows(np.stack([fin_c, fin_r]))
        flat = self.plan.flat
        n = len(flat)
        rows = (_lib.Row * n)()
        init = np.empty((n, C), dtype=np.float32)
        writes = {}  # (point, layer) -> [(batch row, slice, value)]
        for b, k in enumerate(self.sites):
            t, layer, head = flat[k]
            rows[b] = _lib.Row(1, T - 1, int(corr[T - 1]), layer, 0, 0)
            if t == "resid_pre":
                init[b] = fin_c if layer == L else cap_c[(P_RESID_PRE, layer)]
            else:
                init[b] = cap_r[(P_RESID_PRE, layer)]
            if t == "resid_pre" and layer == L:
                continue  # no block runs: the row's final residual is the clean one
            pt = SITE_HOOK[t]
            val = cap_c[(pt, layer)]
            sl = slice(head * self.D, (head + 1) * self.D) if t == "z" else slice(None)
            writes.setdefault((pt, layer), []).append((b, sl, val[sl]))

        def hook(user, evp):
            ev = evp.contents
            w = writes.get((ev.point, ev.layer))
            if not w:
                return
            data = np.ctypeslib.as_array(ev.data, shape=(ev.n_rows, ev.width))
            where = {int(r): i for i, r in enumerate(np.ctypeslib.as_array(ev.rows, shape=(ev.n_rows,)))}
            for b, sl, v in w:
                if b in where:
                    data[where[b], sl] = v
        cb = _lib.HOOK_FN(hook)
        out = np.empty((n, C), dtype=np.float32)
        a = _lib.ForwardArgs()
        a.hook = cb
        a.init_resid = _ptr(init, c_float)
        a.out_resid = _ptr(out, c_float)
        err = _err()
        _check(lib.clens_forward(self.ctx, rows, n, byref(a), byref(err)), err)
        vals = self._metric_rows(out)
        patched = [0.0] * n
        for b, k in enumerate(self.sites):
            patched[k] = vals[b]
        return m_clean, m_corr, patched


# ---------------------------------------------------------------------- result

class PatchResult:
    """model.patch's result.

    results   dict in the results.json schema (docs/patch-output.md)
    settings  the settings.json document; records: the records.jsonl lines as dicts
    metric    the primary metric's name; layers: {type: [layer, ...]}
    clean, corr  float64 [n_kept]: the primary metric on the clean / corrupted prompts
    patched   {type: float64 [n_kept, n_layers_of_type]} (z: [n_kept, n_layers, n_heads], NaN
              for heads not run)
    recovery  {type: same shapes}: 100 * (patched - corr) / (clean - corr), NaN where undefined
    ids       the kept pairs' ids
    """

    def __init__(self, settings_doc, records, results, metric, plan):
        self.settings, self.records, self.results, self.metric = settings_doc, records, results, metric
        self.layers = {t: list(plan.layers[t]) for t in plan.types}
        kept = [r for r in records if r["status"] == "kept"]
        self.ids = [r["id"] for r in kept]
        f = lambda v: np.nan if v is None else v  # noqa: E731
        self.clean = np.array([r["metrics"][metric]["clean"] for r in kept], dtype=np.float64)
        self.corr = np.array([r["metrics"][metric]["corr"] for r in kept], dtype=np.float64)
        self.patched, self.recovery = {}, {}
        for t in plan.types:
            a = np.array([[([f(x) for x in v] if isinstance(v, list) else f(v))
                           for v in r["metrics"][metric]["patched"][t]] for r in kept], dtype=np.float64)
            if not kept:
                a = a.reshape((0, len(plan.layers[t])) + ((plan.H,) if t == "z" else ()))
            self.patched[t] = a
            D = (self.clean - self.corr).reshape((-1,) + (1,) * (a.ndim - 1))
            with np.errstate(divide="ignore", invalid="ignore"):
                rec = 100.0 * (a - self.corr.reshape(D.shape)) / D
            rec[np.broadcast_to(np.abs(D) < 1e-9, rec.shape)] = np.nan
            self.recovery[t] = rec

    def write(self, out_dir):
        """Writes settings.json, records.jsonl, results.json into out_dir (as clens patch does)."""
        os.makedirs(out_dir, exist_ok=True)
        for name, text in (("settings.json", json.dumps(self.settings, indent=2, ensure_ascii=False)),
                           ("records.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)),
                           ("results.json", json.dumps(self.results, indent=2, ensure_ascii=False))):
            p = os.path.join(out_dir, name)
            with open(p + ".tmp", "w") as f:
                f.write(text)
            os.replace(p + ".tmp", p)

    def __repr__(self):
        return "PatchResult(%d kept pairs, metric %s, sites %s)" % (len(self.ids), self.metric,
                                                                    {t: len(v) for t, v in self.layers.items()})


# ----------------------------------------------------------------------- patch

def _effective_matmul(model):
    """settings.matmul as the run engine records it: the mode the products really ran in."""
    if model.info["kernel"] == "avx512-bf16":
        return "bf16"
    return "default" if model.matmul in (None, "bf16") else model.matmul


def patch(model, pairs, sites="resid_pre", metric="logprob_mass", layers=None, tokens=None, method="fast",
          prompt="chat", filter="default", min_diff=3.0, n=50, bootstrap=2000, seed=0, max_tokens=None,
          metric_name=None):
    """The activation-patching sweep of `clens patch` (same options, same records and results).

    pairs: a pairs.jsonl path, a list of pair dicts (clens.pairs / clens.read_pairs), or a list
    of (clean ids, corrupted ids). sites / metric: see the module docstring. Returns a
    PatchResult (numpy arrays and the results.json dict)."""
    if method not in ("fast", "rerun"):
        raise ArgError("method must be fast or rerun, got %r" % (method,))
    if filter not in ("default", "seed"):
        raise ArgError("filter must be default or seed, got %r" % (filter,))
    if min_diff < 0:
        raise ArgError("min_diff must be >= 0")
    if callable(metric):
        mname = metric_name or getattr(metric, "__name__", "custom")
        if mname in BUILTIN or mname == "<lambda>":
            mname = metric_name or "custom"
        fn = metric
    elif metric in BUILTIN:
        mname, fn = metric, None
    else:
        raise ArgError("metric must be logprob_mass, logit_mean or a function of a logits row, got %r" % (metric,))
    plist, pairs_file, pairs_sha = _read_pairs(pairs)
    plan = SitePlan(model, sites, layers)
    info = model.info
    (mass_ids, mass_strs), (mean_ids, mean_strs) = token_sets(model, tokens)
    if max_tokens is None:
        maxT = min(info["max_pos"], 4096)
        fit = lib.clens_model_kv_budget(model._m) // (3 * info["kv_bytes_per_token"] + 1)
        if fit < maxT:
            maxT = min(fit if fit > 64 else 64, info["max_pos"])
    else:
        maxT = int(max_tokens)

    settings = {
        "model": info["path"], "method": method, "prompt": prompt, "metric": mname,
        "metrics": {"logprob_mass": {"ids": mass_ids, "tokens": mass_strs},
                    "logit_mean": {"ids": mean_ids, "tokens": mean_strs}},
        "site_types": list(plan.types), "layers": {t: list(plan.layers[t]) for t in plan.types},
        "n_heads": model.n_heads, "filter": filter, "min_diff": float(min_diff), "n": int(n),
        "bootstrap": {"resamples": int(bootstrap), "seed": int(seed)},
        "pairs_file": pairs_file, "pairs_sha256": pairs_sha, "matmul": _effective_matmul(model),
        "max_tokens": maxT,
    }
    if fn is not None:
        settings["metrics"][mname] = {"callable": getattr(fn, "__qualname__", repr(fn))}
    cfg = ctypes.create_string_buffer(65)
    wts = ctypes.create_string_buffer(65)
    lib.clens_model_fingerprint(model._m, cfg, wts)
    tmpl_sha = None
    if prompt == "chat":
        tmpl_sha = lib.clens_chat_template_sha256(model.tokenizer._template()).decode()
    doc = {
        "clens_version": "0.1.0",
        "settings_hash": hashlib.sha256(canonical_json(settings).encode()).hexdigest(),
        "settings": settings,
        "shard": {"index": 0, "count": 1},
        "provenance": {
            "config_sha256": cfg.value.decode() or None, "weights_index_sha256": wts.value.decode() or None,
            "tokenizer_sha256": _tokenizer_sha256(model.tokenizer) if any("problem" in p for p in plist) else "",
            "template_sha256": tmpl_sha, "dtype": info["dtype"], "kernel": info["kernel"], "arch": info["arch"],
            "n_layers": model.n_layers, "host_cpu": _host_cpu(),
        },
    }

    # the C patcher: both built-in metrics (the filter uses logit_mean, as clens patch does)
    csites = (_lib.Site * len(plan.flat))(*[_lib.Site(SITE_TYPES.index(t), layer, h) for t, layer, h in plan.flat])
    mass_a, mean_a = _i32(mass_ids), _i32(mean_ids)
    mets = (_lib.Metric * 2)(_lib.Metric(0, _ptr(mass_a, c_int32), len(mass_a)),
                             _lib.Metric(1, _ptr(mean_a, c_int32), len(mean_a)))
    pt = c_void_p()
    err = _err()
    _check(lib.clens_patcher_new(byref(pt), model._m, maxT, csites, len(plan.flat), mets, 2, byref(err)), err)
    sweep = None
    records = []
    try:
        if fn is not None:
            sweep = _CallableSweep(model, plan, fn, maxT)
        W = 2 + len(plan.flat)
        vals = np.zeros(2 * W, dtype=np.float64)
        kept = 0
        for c, pr in enumerate(plist):
            if kept >= n:
                break
            t0 = time.time()
            if "clean_ids" in pr:
                ic, ir = list(pr["clean_ids"]), list(pr["corrupted_ids"])
                reason = ("length_mismatch" if len(ic) != len(ir) else "final_token_mismatch"
                          if not ic or ic[-1] != ir[-1] else "too_long" if len(ic) > maxT
                          else "identical" if ic == ir else None)
            else:
                ic, ir, reason = pair_ids(model, pr, prompt, maxT)
            P, ran = 0, False
            extra = None
            if reason is None:
                ca, ra = _i32(ic), _i32(ir)
                Pc = c_int()
                _check(lib.clens_patch_begin(pt, _ptr(ca, c_int32), _ptr(ra, c_int32), len(ca),
                                             0 if method == "fast" else 1, _ptr(vals, c_double), byref(Pc),
                                             byref(err)), err)
                P, ran = Pc.value, True
                D = vals[W] - vals[W + 1]
                if D == 0:
                    reason = "too_small"
                elif min_diff == 0:
                    reason = None
                elif filter == "seed":
                    reason = None if abs(D) >= min_diff else "too_small"
                else:
                    reason = None if -D >= min_diff else ("wrong_sign" if D >= min_diff else "too_small")
                if reason is None:
                    if fn is None:
                        _check(lib.clens_patch_sites(pt, _ptr(vals, c_double), byref(err)), err)
                    else:
                        extra = sweep.run(ic, ir)
            secs = time.time() - t0
            rec = {"candidate": c, "id": pr.get("id", str(c)), "status": "dropped" if reason else "kept",
                   "reason": reason, "n_tokens": len(ic), "shared_prefix": P}
            if ran:
                ms = {}
                if extra is not None:
                    ms[mname] = {"clean": extra[0], "corr": extra[1], "patched": plan.unflatten(extra[2])}
                for k, name in enumerate(("logprob_mass", "logit_mean")):
                    o = vals[k * W:(k + 1) * W]
                    mo = {"clean": float(o[0]), "corr": float(o[1])}
                    if reason is None and fn is None:
                        mo["patched"] = plan.unflatten([float(x) for x in o[2:]])
                    ms[name] = mo
                rec["metrics"] = ms
            rec["seconds"] = round(secs * 1000) / 1000
            records.append(rec)
            kept += reason is None
    finally:
        lib.clens_patcher_free(pt)
        if sweep is not None:
            sweep.close()

    settings_text = json.dumps(doc, ensure_ascii=False).encode()
    rec_text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records).encode()
    out_json = c_void_p()
    _check(lib.clens_results_build(settings_text, rec_text, len(rec_text), byref(out_json), None, byref(err)), err)
    try:
        results = json.loads(ctypes.string_at(out_json).decode())
    finally:
        lib.free(out_json)
    return PatchResult(doc, records, results, mname, plan)


def logprob_mass(ids):
    """A Python metric equal to the built-in logprob_mass over ids (for reference and tests)."""
    ids = np.asarray(ids)

    def logprob_mass_of(logits):
        x = logits.astype(np.float64)
        mx = x.max()
        sel = x[ids]
        mxs = sel.max()
        return (mxs + math.log(np.exp(sel - mxs).sum())) - (mx + math.log(np.exp(x - mx).sum()))
    return logprob_mass_of
