"""model.py: Model and Tokenizer, the TransformerLens-style surface over libclens.

Forward passes run the way `clens logits` / `clens activations` run them (one
context per call, one sequence at a time, batches of at most 256 rows), so the
arrays are bitwise the CLI's. Memory (docs/python.md, "Copies and lifetimes"):
  - logits are written by the library straight into a numpy array the binding
    allocates (no copy);
  - a hook function sees a numpy view of the library's activation buffer
    (zero-copy, writable; valid only during the call, so do not keep it);
  - run_with_cache copies each cached row once into its [T, width] array,
    because the library's buffer does not outlive the call;
  - ids, text and the library's malloc'd outputs (token ids, decoded text,
    generated ids) are copied into Python objects and freed at once.
"""
import ctypes
import fnmatch
import json
from ctypes import byref, c_float, c_int, c_int32, c_size_t, c_void_p

import numpy as np

from . import _lib
from ._lib import lib
from .errors import ArgError, Error, from_status

MATMUL = {"default": 0, "portable": 1, "bf16": 2}
DTYPES = {0: "float32", 1: "bfloat16", 2: "float16"}
# clens_hook_point order (include/clens.h)
HOOK_POINTS = ["embed", "resid_pre", "attn_z", "attn_out", "mlp_out", "resid_post", "ln_final"]
P_EMBED, P_RESID_PRE, P_ATTN_Z, P_ATTN_OUT, P_MLP_OUT, P_RESID_POST, P_LN_FINAL = range(7)
MAX_ROWS = 256  # the CLI's batch size for prefills


def _check(rc, err):
    if rc != 0:
        raise from_status(err.code or rc, err.msg.decode("utf-8", "replace"))


def _err():
    return _lib.Error_()


def _i32(ids):
    a = np.ascontiguousarray(ids, dtype=np.int64)
    if a.ndim != 1:
        raise ArgError("expected a 1-D sequence of token ids, got shape %s" % (a.shape,))
    if a.size and (a.min() < -2**31 or a.max() >= 2**31):
        raise ArgError("token id out of the int32 range")
    return a.astype(np.int32)


def _as_batch(ids):
    """-> (list of int32 arrays, is_batch). A batch is a list of sequences or a 2-D array."""
    if isinstance(ids, np.ndarray):
        if ids.ndim == 2:
            return [_i32(r) for r in ids], True
        return [_i32(ids)], False
    if isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple, np.ndarray)):
        return [_i32(r) for r in ids], True
    return [_i32(list(ids))], False


def _stack(items):
    if len({x.shape for x in items}) == 1:
        return np.stack(items)
    return items


def _ptr(a, ctype):
    return a.ctypes.data_as(ctypes.POINTER(ctype))


class HookPoint:
    """What a hook function receives besides the activation: the TransformerLens name, the
    clens hook point, the layer (-1 for hook_embed / ln_final.hook_normalized), the positions
    of the rows it sees (a prompt longer than 256 tokens arrives in chunks of 256 rows), and
    the sequence's index in the batch."""
    __slots__ = ("name", "point", "layer", "positions", "sequence")

    def __init__(self, name, point, layer, positions, sequence):
        self.name, self.point, self.layer, self.positions, self.sequence = name, point, layer, positions, sequence

    def __repr__(self):
        return "HookPoint(%r, positions=%s..%s)" % (self.name, self.positions[0], self.positions[-1])


class _Dispatch:
    """Calls Python hook functions from the library's hook callback. An exception in a hook is
    kept (later hooks of the pass are skipped) and raised when the library returns."""

    def __init__(self, model, table, sequence=0):
        self.model, self.table, self.sequence, self.exc = model, table, sequence, None
        self.cfunc = _lib.HOOK_FN(self._callback)

    def _callback(self, user, evp):
        if self.exc is not None:
            return
        try:
            ev = evp.contents
            fns = self.table.get((ev.point, ev.layer))
            if not fns or ev.n_rows == 0:
                return
            n, w = ev.n_rows, ev.width
            view = np.ctypeslib.as_array(ev.data, shape=(n, w))
            rows = np.ctypeslib.as_array(ev.rows, shape=(n,))
            batch = np.ctypeslib.as_array(ev.batch, shape=(int(rows.max()) + 1,))
            hp = HookPoint(self.model._hook_names[(ev.point, ev.layer)], ev.point, ev.layer,
                           batch["pos"][rows].copy(), self.sequence)
            for fn in fns:
                r = fn(view, hp)
                if r is not None and r is not view:
                    view[...] = r
        except BaseException as e:  # noqa: B036: re-raised after the library returns
            self.exc = e

    def args(self):
        a = _lib.ForwardArgs()
        a.hook = self.cfunc
        return a


class Tokenizer:
    """The model's tokenizer (byte-identical to Hugging Face `tokenizers`) and chat template."""

    def __init__(self, path):
        self._t = c_void_p()
        err = _err()
        _check(lib.clens_tokenizer_open(byref(self._t), path.encode(), byref(err)), err)
        self._path = path
        self._tmpl = None

    def __del__(self, _free_tok=lib.clens_tokenizer_free, _free_tmpl=lib.clens_chat_template_free):
        # the library functions are bound as defaults: module globals may be gone at exit
        if getattr(self, "_t", None):
            _free_tok(self._t)
            self._t = None
        if getattr(self, "_tmpl", None):
            _free_tmpl(self._tmpl)
            self._tmpl = None

    @property
    def info(self):
        i = _lib.TokenizerInfo()
        lib.clens_tokenizer_get_info(self._t, byref(i))
        s = lambda b: b.decode() if b is not None else None  # noqa: E731
        return {"path": s(i.path), "dir": s(i.dir), "bos_token": s(i.bos_token), "eos_token": s(i.eos_token),
                "bos_id": i.bos_id, "eos_id": i.eos_id, "add_bos_token": i.add_bos_token,
                "adds_bos": bool(i.adds_bos), "vocab_size": i.vocab_size, "n_added": i.n_added}

    def encode(self, text, add_special_tokens=True):
        """Token ids of text (a list of int), as HF's tokenizer(text).input_ids."""
        b = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        ids = ctypes.POINTER(c_int32)()
        n = c_int()
        err = _err()
        _check(lib.clens_tokenize(self._t, b, len(b), int(bool(add_special_tokens)), byref(ids), byref(n), None,
                                  byref(err)), err)
        try:
            return ids[:n.value]
        finally:
            lib.free(ids)

    def decode(self, ids, skip_special_tokens=False):
        """Text of ids, as HF's decode (invalid UTF-8 becomes U+FFFD)."""
        a = _i32(list(ids) if not isinstance(ids, np.ndarray) else ids)
        out = c_void_p()
        n = c_size_t()
        err = _err()
        _check(lib.clens_detokenize(self._t, _ptr(a, c_int32), len(a), int(bool(skip_special_tokens)),
                                    byref(out), byref(n), byref(err)), err)
        try:
            return ctypes.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            lib.free(out)

    def token_to_id(self, token):
        i = lib.clens_tokenizer_token_to_id(self._t, token.encode())
        return None if i < 0 else i

    def id_to_token(self, i):
        s = lib.clens_tokenizer_id_to_token(self._t, int(i))
        return None if s is None else s.decode("utf-8", "replace")

    def _template(self):
        if self._tmpl is None:
            t = c_void_p()
            err = _err()
            _check(lib.clens_chat_template_open(byref(t), self._path.encode(), byref(err)), err)
            self._tmpl = t
        return self._tmpl

    def render_chat(self, messages, add_generation_prompt=False, **template_kwargs):
        """The model's chat template rendered (str); messages as transformers takes them."""
        mj = json.dumps(messages, ensure_ascii=False).encode()
        kw = json.dumps(template_kwargs, ensure_ascii=False).encode() if template_kwargs else None
        out = c_void_p()
        n = c_size_t()
        err = _err()
        _check(lib.clens_chat_template_render(self._template(), mj, int(bool(add_generation_prompt)), kw,
                                              byref(out), byref(n), byref(err)), err)
        try:
            return ctypes.string_at(out, n.value).decode("utf-8")
        finally:
            lib.free(out)

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=False, **template_kwargs):
        """transformers' apply_chat_template: the rendered text, or (tokenize=True) its ids with
        no double BOS (architectures.md 4.3)."""
        text = self.render_chat(messages, add_generation_prompt, **template_kwargs)
        if not tokenize:
            return text
        b = text.encode()
        ids = ctypes.POINTER(c_int32)()
        n = c_int()
        err = _err()
        _check(lib.clens_chat_template_tokenize(self._template(), self._t, b, len(b), byref(ids), byref(n), None,
                                                byref(err)), err)
        try:
            return ids[:n.value]
        finally:
            lib.free(ids)


class Model:
    """A Hugging Face model folder (or `org/name[@revision]` in the offline HF cache) opened by
    libclens. `model(ids)` -> logits [T, vocab]; run_with_cache / run_with_hooks as in
    TransformerLens, with its hook names (model.hook_names)."""

    def __init__(self, path_or_org_name, threads=0, matmul="default"):
        if matmul not in MATMUL:
            raise ArgError("matmul must be one of %s, got %r" % (", ".join(MATMUL), matmul))
        self._m = c_void_p()
        p = _lib.lib.clens_model_default_params()
        p.n_threads = int(threads)
        p.matmul = MATMUL[matmul]
        err = _err()
        _check(lib.clens_model_open(byref(self._m), str(path_or_org_name).encode(), byref(p), byref(err)), err)
        self.matmul = matmul
        i = lib.clens_model_get_info(self._m).contents
        self.info = {
            "arch": i.arch_name.decode(), "dtype": DTYPES.get(i.dtype, "?"), "n_layers": i.n_layers,
            "d_model": i.d_model, "n_heads": i.n_heads, "n_kv_heads": i.n_kv_heads, "head_dim": i.head_dim,
            "d_ff": i.d_ff, "vocab": i.vocab, "max_pos": i.max_pos, "tied_embeddings": bool(i.tied_embeddings),
            "n_params": i.n_params, "weight_bytes": i.weight_bytes, "kv_bytes_per_token": i.kv_bytes_per_token,
            "path": i.path.decode(), "bos_id": i.bos_id, "eos_id": i.eos_id,
            "kernel": lib.clens_model_kernel_name(self._m).decode(),
        }
        self.n_layers, self.d_model, self.vocab = i.n_layers, i.d_model, i.vocab
        self.n_heads, self.head_dim = i.n_heads, i.head_dim
        self._tok = None
        # every hook point: (point, layer) <-> TransformerLens name, and its width
        self._hook_names, self._hook_of, self._width = {}, {}, {}
        buf = ctypes.create_string_buffer(256)
        for p_ in range(len(HOOK_POINTS)):
            layers = [-1] if lib.clens_hook_max_layer(p_, self.n_layers) < 0 else range(self.n_layers)  # the hook table
            for layer in layers:
                name = lib.clens_hook_name(p_, layer, buf, 256).decode()
                self._hook_names[(p_, layer)] = name
                self._hook_of[name] = (p_, layer)
            self._width[p_] = lib.clens_hook_width(self._m, p_)

    def __del__(self, _free=lib.clens_model_free):
        if getattr(self, "_m", None):
            self._tok = None
            _free(self._m)
            self._m = None

    def __repr__(self):
        return "clens.Model(%r, %s, %d layers)" % (self.info["path"], self.info["arch"], self.n_layers)

    # ---------------------------------------------------------------- tokens
    @property
    def tokenizer(self):
        """The model folder's tokenizer (opened on first use)."""
        if self._tok is None:
            self._tok = Tokenizer(self.info["path"])
        return self._tok

    def to_tokens(self, text, prepend_bos=True):
        """Token ids of text as an int32 array [T] (prepend_bos: the tokenizer's special tokens)."""
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=prepend_bos), dtype=np.int32)

    def to_string(self, ids):
        return self.tokenizer.decode(ids)

    # ----------------------------------------------------------------- hooks
    @property
    def hook_names(self):
        """Every hook name in forward order of layers: hook_embed, blocks.L.*, ln_final.hook_normalized."""
        order = sorted(self._hook_of.items(), key=lambda kv: (kv[1][1] if kv[1][0] != P_LN_FINAL else 1 << 30,
                                                              kv[1][0]))
        return [k for k, _ in order]

    def hook_width(self, name):
        return self._width[self._point(name)[0]]

    def _point(self, name):
        if name not in self._hook_of:
            raise ArgError("unknown hook name %r (e.g. blocks.0.hook_resid_pre, blocks.0.attn.hook_z; "
                           "layers 0..%d)" % (name, self.n_layers - 1))
        return self._hook_of[name]

    def _select(self, name_or_filter):
        """Hook names matched by a name (wildcards as in fnmatch: "blocks.*.hook_resid_pre"), a
        list of names, or a function name -> bool."""
        if name_or_filter is None:
            return list(self._hook_of)
        if isinstance(name_or_filter, str):
            if any(c in name_or_filter for c in "*?["):
                names = [n for n in self._hook_of if fnmatch.fnmatchcase(n, name_or_filter)]
                if not names:
                    raise ArgError("no hook name matches %r" % (name_or_filter,))
                return names
            self._point(name_or_filter)
            return [name_or_filter]
        if callable(name_or_filter):
            return [n for n in self._hook_of if name_or_filter(n)]
        names = list(name_or_filter)
        for n in names:
            self._point(n)
        return names

    # --------------------------------------------------------------- forward
    def _forward(self, ids, dispatch=None):
        """Logits [T, vocab] of one sequence, hooks called through dispatch."""
        T = len(ids)
        if T < 1:
            raise ArgError("empty token sequence")
        logits = np.empty((T, self.vocab), dtype=np.float32)
        ctx = c_void_p()
        err = _err()
        _check(lib.clens_ctx_new(byref(ctx), self._m, 1, T, min(T, MAX_ROWS), byref(err)), err)
        try:
            args = dispatch.args() if dispatch else None
            rc = lib.clens_prefill(ctx, 0, _ptr(ids, c_int32), T, _ptr(logits, c_float), None,
                                   byref(args) if args else None, byref(err))
        finally:
            lib.clens_ctx_free(ctx)
        if dispatch is not None and dispatch.exc is not None:
            e, dispatch.exc = dispatch.exc, None
            raise e
        _check(rc, err)
        return logits

    def __call__(self, ids):
        """Logits [T, vocab] (float32) of a sequence; [B, T, vocab] for a batch of equal lengths
        (a list of [T_i, vocab] arrays otherwise)."""
        seqs, is_batch = _as_batch(ids)
        out = [self._forward(s) for s in seqs]
        return _stack(out) if is_batch else out[0]

    forward = __call__

    def run_with_cache(self, ids, names=None):
        """(logits, cache): cache maps each selected hook name to a float32 [T, width] array
        ([B, T, width] for a batch of equal lengths). names: None (every hook point), a name,
        a list of names, or a function name -> bool."""
        seqs, is_batch = _as_batch(ids)
        wanted = self._select(names)
        results = []
        for si, s in enumerate(seqs):
            cache = {n: np.empty((len(s), self.hook_width(n)), dtype=np.float32) for n in wanted}
            table = {}
            for n in wanted:
                dst = cache[n]

                def store(act, hook, dst=dst):
                    dst[hook.positions] = act  # copy: the library's buffer ends with the call
                table.setdefault(self._point(n), []).append(store)
            logits = self._forward(s, _Dispatch(self, table, si))
            results.append((logits, cache))
        if not is_batch:
            return results[0]
        logits = _stack([r[0] for r in results])
        if isinstance(logits, list):
            return logits, [r[1] for r in results]
        return logits, {n: np.stack([r[1][n] for r in results]) for n in wanted}

    def run_with_hooks(self, ids, fwd_hooks=(), return_type="logits"):
        """Logits with hooks: fwd_hooks is a list of (name or filter, fn); fn(act, hook) gets a
        writable zero-copy view [rows, width] of the activation (rows = positions in
        hook.positions) and may write into it or return a replacement array."""
        seqs, is_batch = _as_batch(ids)
        table = {}
        for sel, fn in fwd_hooks:
            for n in self._select(sel):
                table.setdefault(self._point(n), []).append(fn)
        out = [self._forward(s, _Dispatch(self, table, si) if table else None) for si, s in enumerate(seqs)]
        if return_type is None:
            return None
        return _stack(out) if is_batch else out[0]

    # ------------------------------------------------------------ generation
    def stop_ids(self):
        p = ctypes.POINTER(c_int32)()
        n = c_int()
        lib.clens_model_stop_ids(self._m, byref(p), byref(n))
        try:
            return p[:n.value] if p else []
        finally:
            lib.free(p)

    def generate(self, prompt, max_new_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=0, stop_ids=None,
                 return_text=False):
        """New token ids after the prompt (ids, text, or a batch: a list of either, run as one
        batch like `clens generate --ids-file`). stop_ids default: the model's eos ids. The stop
        id is included when hit. return_text: also decode (a (ids, text) pair)."""
        if isinstance(prompt, np.ndarray):
            single = prompt.ndim == 1
        else:
            single = isinstance(prompt, str) or not (isinstance(prompt, (list, tuple)) and prompt
                                                     and isinstance(prompt[0], (str, list, tuple, np.ndarray)))
        prompts = [prompt] if single else list(prompt)
        seqs = [np.asarray(self.tokenizer.encode(p), dtype=np.int32) if isinstance(p, str) else _i32(p)
                for p in prompts]
        if temperature < 0 or not 0 < top_p <= 1:
            raise ArgError("temperature must be >= 0 and top_p in (0, 1]")
        stops = _i32(self.stop_ids() if stop_ids is None else list(stop_ids))
        sp = lib.clens_sample_default_params()
        sp.temperature, sp.top_p, sp.top_k, sp.seed = float(temperature), float(top_p), int(top_k), int(seed)
        sp.max_new_tokens = int(max_new_tokens)
        sp.stop_ids, sp.n_stop = _ptr(stops, c_int32), len(stops)
        n = len(seqs)
        arr = (ctypes.POINTER(c_int32) * n)(*[_ptr(s, c_int32) for s in seqs])
        lens = (c_int * n)(*[len(s) for s in seqs])
        out = (ctypes.POINTER(c_int32) * n)()
        out_n = (c_int * n)()
        err = _err()
        rc = lib.clens_generate(self._m, arr, lens, n, byref(sp), out, out_n, byref(err))
        res = []
        for i in range(n):
            if out[i]:
                res.append(out[i][:out_n[i]])
                lib.free(out[i])
        _check(rc, err)
        if return_text:
            res = [(r, self.tokenizer.decode(r)) for r in res]
        return res[0] if single else res

    # -------------------------------------------------------------- patching
    def patch(self, pairs, sites="resid_pre", metric="logprob_mass", **options):
        """The final-token activation-patching run of `clens patch` through the library's run
        engine (method fast, rerun or atp). See clens.patching.patch."""
        from .patching import patch
        return patch(self, pairs, sites=sites, metric=metric, **options)

    def patch_ids(self, clean, corr, sites, metric="logprob_mass", **options):
        """One pair of token ids through the library's patcher. See clens.patching.patch_ids."""
        from .patching import patch_ids
        return patch_ids(self, clean, corr, sites, metric=metric, **options)

    def capture(self, pairs, out, sites=None, **options):
        """`clens capture` into the folder out. See clens.studies.capture."""
        from .studies import capture
        return capture(self, pairs, out, sites=sites, **options)

    def steer(self, prompts, vector, **options):
        """Greedy generation with a steering vector. See clens.studies.steer."""
        from .studies import steer
        return steer(self, prompts, vector, **options)

    def steer_pair(self, clean, corr, vector, tokens, **options):
        """A pair's final-token metric with and without steering. See clens.studies.steer_pair."""
        from .studies import steer_pair
        return steer_pair(self, clean, corr, vector, tokens, **options)

    def pair_ids(self, pair, prompt="chat", max_tokens=0):
        """(clean ids, corrupted ids, reason) of a pair rendered for this model (as clens patch
        renders it; reason None or why the pair is unusable)."""
        from .patching import pair_ids
        return pair_ids(self, pair, prompt, max_tokens)


__all__ = ["Model", "Tokenizer", "HookPoint", "Error"]
