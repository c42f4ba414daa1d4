"""_lib.py: loads libclens.so and declares the C API of include/clens.h for ctypes.

Only the public header is used: every struct below mirrors one in include/clens.h
field by field (ctypes applies the C alignment rules), every prototype one
CLENS_API declaration. Where the library is found, in order: $CLENS_LIB; a
libclens.so next to this package (``make python`` puts one there); the source
repository's build/ (this package inside a checkout, or the repository recorded
at install time in _origin.py); if none exists but the repository is known,
``make -C <repo> build/libclens.so`` builds it.
"""
import ctypes
import os
import subprocess
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_long, c_size_t, c_uint64, c_void_p)

SONAME = "libclens.so.0"


class Error_(Structure):
    _fields_ = [("code", c_int), ("msg", c_char * 1024)]


class ModelParams(Structure):
    _fields_ = [("n_threads", c_int), ("matmul", c_int)]


class ModelInfo(Structure):
    _fields_ = [("arch", c_int), ("arch_name", c_char_p), ("dtype", c_int),
                ("n_layers", c_int), ("d_model", c_int), ("n_heads", c_int), ("n_kv_heads", c_int),
                ("head_dim", c_int), ("d_ff", c_int), ("vocab", c_int), ("max_pos", c_int),
                ("tied_embeddings", c_int), ("n_params", c_int64), ("weight_bytes", c_int64),
                ("kv_bytes_per_token", c_int64), ("path", c_char_p), ("bos_id", c_int), ("eos_id", c_int)]


class Row(Structure):
    _fields_ = [("seq", c_int), ("pos", c_int), ("token", c_int), ("start_layer", c_int),
                ("commit", c_int), ("want_logits", c_int)]


class HookEvent(Structure):
    _fields_ = [("point", c_int), ("layer", c_int), ("width", c_int), ("n_rows", c_int),
                ("rows", POINTER(c_int)), ("batch", POINTER(Row)), ("data", POINTER(c_float))]


HOOK_FN = CFUNCTYPE(None, c_void_p, POINTER(HookEvent))


class ForwardArgs(Structure):
    _fields_ = [("hook", HOOK_FN), ("hook_user", c_void_p), ("init_resid", POINTER(c_float)),
                ("out_resid", POINTER(c_float)), ("out_logits", POINTER(c_float))]


class SampleParams(Structure):
    _fields_ = [("temperature", c_float), ("top_p", c_float), ("top_k", c_int), ("seed", c_uint64),
                ("max_new_tokens", c_int), ("stop_ids", POINTER(c_int32)), ("n_stop", c_int)]


class TokenizerInfo(Structure):
    _fields_ = [("path", c_char_p), ("dir", c_char_p), ("bos_token", c_char_p), ("eos_token", c_char_p),
                ("bos_id", c_int32), ("eos_id", c_int32), ("add_bos_token", c_int), ("adds_bos", c_int),
                ("vocab_size", c_int32), ("n_added", c_int)]


class Site(Structure):
    _fields_ = [("point", c_int), ("layer", c_int), ("head", c_int)]


METRIC_FN = CFUNCTYPE(c_double, c_void_p, POINTER(c_float), c_int)


class Metric(Structure):
    _fields_ = [("kind", c_int), ("ids", POINTER(c_int32)), ("n_ids", c_int), ("fn", METRIC_FN),
                ("user", c_void_p)]


class RunParams(Structure):
    _fields_ = [("pairs_path", c_char_p), ("site_types", POINTER(c_int)), ("n_site_types", c_int),
                ("layers", POINTER(c_int)), ("n_layers", c_int), ("metric", c_int), ("metric_fn", METRIC_FN),
                ("metric_user", c_void_p), ("metric_name", c_char_p), ("words", POINTER(c_char_p)),
                ("n_words", c_int), ("method", c_int), ("prompt_chat", c_int), ("filter", c_int),
                ("min_diff", c_double), ("n_target", c_long), ("bootstrap_resamples", c_long),
                ("bootstrap_seed", ctypes.c_longlong), ("shard_index", c_int), ("shard_count", c_int),
                ("max_tokens", c_int), ("matmul", c_char_p), ("fidelity", c_char_p)]


class RunInfo(Structure):
    _fields_ = [("candidates", c_long), ("target", c_long), ("done", c_long), ("kept", c_long),
                ("resumed_done", c_long), ("resumed_kept", c_long), ("ran", c_long), ("seconds", c_double),
                ("max_tokens", c_int), ("max_tokens_from_memory", c_int), ("n_sites", c_int),
                ("last_id", c_char_p), ("last_reason", c_char_p), ("notes", c_char_p), ("finished", c_int)]


RUN_PROGRESS_FN = CFUNCTYPE(None, c_void_p, POINTER(RunInfo))
LINE_PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_char_p)
CAPTURE_PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_long, c_long, c_long)


class StudyOptions(Structure):
    _fields_ = [("fidelity", c_char_p), ("out", c_char_p), ("threads", c_int)]


class CaptureParams(Structure):
    _fields_ = [("pairs_path", c_char_p), ("sites", c_char_p), ("positions", c_int), ("prompt_chat", c_int),
                ("limit", c_long), ("max_tokens", c_int)]


class ProbeParams(Structure):
    _fields_ = [("folds", c_int), ("C", c_double), ("bootstrap", c_int), ("permutations", c_int),
                ("random_dirs", c_int), ("seed", c_uint64), ("hook_filter", c_char_p)]


class CompareParams(Structure):
    _fields_ = [("resamples", c_int), ("seed", c_uint64), ("min_jump", c_double), ("mid_lo", c_double),
                ("mid_hi", c_double), ("critical_pct", c_double), ("grid_step", c_double),
                ("labels", POINTER(c_char_p)), ("n_labels", c_int), ("trainings", POINTER(c_char_p)),
                ("n_trainings", c_int), ("probes", POINTER(c_char_p)), ("n_probes", c_int),
                ("steers", POINTER(c_char_p)), ("n_steers", c_int), ("atps", POINTER(c_char_p)), ("n_atps", c_int)]


class Steer(Structure):
    _fields_ = [("mode", c_int), ("point", c_int), ("positions", c_int), ("alpha", c_float), ("n_layers", c_int),
                ("vecs", POINTER(c_float)), ("active", POINTER(ctypes.c_ubyte)), ("means", POINTER(c_float))]


PAIRS_CANDIDATE_FN = CFUNCTYPE(None, c_void_p, c_void_p)


class PairsParams(Structure):
    _fields_ = [("data_path", c_char_p), ("source_name", c_char_p), ("format", c_int), ("seed", c_uint64),
                ("limit", c_long), ("cut", c_int), ("cut_chars", c_int), ("corrupt", c_int), ("site", c_int),
                ("on_candidate", PAIRS_CANDIDATE_FN), ("on_candidate_user", c_void_p)]


PAIRS_MAX_REASONS = 32


class PairsStats(Structure):
    _fields_ = [("source_sha256", c_char * 65), ("problems", c_long), ("problems_with_site", c_long),
                ("candidates", c_long), ("sites", c_long), ("pairs", c_long),
                ("drops", c_long * PAIRS_MAX_REASONS), ("duplicates", c_long)]


class PairSite(Structure):
    _fields_ = [("start", c_int64), ("end", c_int64), ("expr", c_char_p), ("clean_value", c_char_p),
                ("corrupted_value", c_char_p)]


class Pair(Structure):
    _fields_ = [("id", c_char_p), ("source", c_char_p), ("source_sha256", c_char_p), ("problem", c_char_p),
                ("clean_prefix", c_char_p), ("corrupted_prefix", c_char_p), ("site", PairSite),
                ("cut", c_char_p), ("corrupt", c_char_p), ("seed", c_uint64), ("candidate_index", c_int64),
                ("format", c_char_p), ("answer", c_char_p), ("line", c_int64), ("n_sites", c_int),
                ("site_index", c_int), ("site_rule", c_int), ("site_verified", c_int),
                ("solution_source", c_char_p), ("generator", c_char_p)]


P = c_void_p  # opaque handles
PI32 = POINTER(c_int32)
PF = POINTER(c_float)
PD = POINTER(c_double)

# name: (restype, argtypes)
PROTOTYPES = {
    "clens_status_name": (c_char_p, [c_int]),
    "clens_model_default_params": (ModelParams, []),
    "clens_model_open": (c_int, [POINTER(P), c_char_p, POINTER(ModelParams), POINTER(Error_)]),
    "clens_model_free": (None, [P]),
    "clens_model_get_info": (POINTER(ModelInfo), [P]),
    "clens_model_fingerprint": (None, [P, c_char_p, c_char_p]),
    "clens_model_kernel_name": (c_char_p, [P]),
    "clens_model_stop_ids": (c_int, [P, POINTER(PI32), POINTER(c_int)]),
    "clens_hook_name": (c_char_p, [c_int, c_int, ctypes.c_char_p, c_size_t]),
    "clens_hook_parse": (c_int, [c_char_p, POINTER(c_int), POINTER(c_int), POINTER(Error_)]),
    "clens_hook_short_name": (c_char_p, [c_int]),
    "clens_hook_short_parse": (c_int, [c_char_p, POINTER(c_int), POINTER(Error_)]),
    "clens_hook_per_head": (c_int, [c_int]),
    "clens_hook_patchable": (c_int, [c_int]),
    "clens_hook_max_layer": (c_int, [c_int, c_int]),
    "clens_site_name": (c_char_p, [POINTER(Site), ctypes.c_char_p, c_size_t]),
    "clens_site_parse": (c_int, [c_char_p, POINTER(Site), POINTER(Error_)]),
    "clens_site_check": (c_int, [P, POINTER(Site), POINTER(Error_)]),
    "clens_hook_width": (c_int, [P, c_int]),
    "clens_ctx_new": (c_int, [POINTER(P), P, c_int, c_int, c_int, POINTER(Error_)]),
    "clens_ctx_free": (None, [P]),
    "clens_ctx_seq_len": (c_int, [P, c_int]),
    "clens_ctx_seq_clear": (None, [P, c_int]),
    "clens_forward": (c_int, [P, POINTER(Row), c_int, POINTER(ForwardArgs), POINTER(Error_)]),
    "clens_logits_from_resid_rows": (None, [P, PF, c_int, PF, PF]),
    "clens_prefill": (c_int, [P, c_int, PI32, c_int, PF, PF, POINTER(ForwardArgs), POINTER(Error_)]),
    "clens_sample_default_params": (SampleParams, []),
    "clens_generate": (c_int, [P, POINTER(PI32), POINTER(c_int), c_int, POINTER(SampleParams),
                               POINTER(PI32), POINTER(c_int), POINTER(Error_)]),
    "clens_tokenizer_open": (c_int, [POINTER(P), c_char_p, POINTER(Error_)]),
    "clens_tokenizer_free": (None, [P]),
    "clens_tokenize": (c_int, [P, c_char_p, c_size_t, c_int, POINTER(PI32), POINTER(c_int),
                               POINTER(POINTER(c_size_t)), POINTER(Error_)]),
    "clens_detokenize": (c_int, [P, PI32, c_int, c_int, POINTER(c_void_p), POINTER(c_size_t), POINTER(Error_)]),
    "clens_tokenizer_token_to_id": (c_int32, [P, c_char_p]),
    "clens_tokenizer_id_to_token": (c_char_p, [P, c_int32]),
    "clens_tokenizer_get_info": (c_int, [P, POINTER(TokenizerInfo)]),
    "clens_chat_template_open": (c_int, [POINTER(P), c_char_p, POINTER(Error_)]),
    "clens_chat_template_free": (None, [P]),
    "clens_chat_template_sha256": (c_char_p, [P]),
    "clens_chat_template_render": (c_int, [P, c_char_p, c_int, c_char_p, POINTER(c_void_p), POINTER(c_size_t),
                                           POINTER(Error_)]),
    "clens_chat_template_tokenize": (c_int, [P, P, c_char_p, c_size_t, POINTER(PI32), POINTER(c_int),
                                             POINTER(c_int), POINTER(Error_)]),
    "clens_pairs_default_params": (PairsParams, []),
    "clens_pairs_parse_cut": (c_int, [POINTER(PairsParams), c_char_p, POINTER(Error_)]),
    "clens_pairs_parse_corrupt": (c_int, [POINTER(PairsParams), c_char_p, POINTER(Error_)]),
    "clens_pairs_parse_site": (c_int, [POINTER(PairsParams), c_char_p, POINTER(Error_)]),
    "clens_pairs_parse_format": (c_int, [POINTER(PairsParams), c_char_p, POINTER(Error_)]),
    "clens_pairs_build": (c_int, [POINTER(PairsParams), POINTER(POINTER(Pair)), POINTER(c_size_t),
                                  POINTER(PairsStats), POINTER(Error_)]),
    "clens_pairs_read_jsonl": (c_int, [c_char_p, POINTER(POINTER(Pair)), POINTER(c_size_t), POINTER(Error_)]),
    "clens_pairs_write_jsonl": (c_int, [c_char_p, POINTER(Pair), c_size_t, POINTER(Error_)]),
    "clens_pairs_reason_count": (c_int, []),
    "clens_pairs_reason_name": (c_char_p, [c_int]),
    "clens_pair_to_json": (c_int, [POINTER(Pair), POINTER(c_void_p), POINTER(Error_)]),
    "clens_pairs_free": (None, [POINTER(Pair), c_size_t]),
    "clens_metric_name": (c_char_p, [c_int]),
    "clens_metric_parse": (c_int, [c_char_p, POINTER(c_int), POINTER(Error_)]),
    "clens_metric_value": (c_double, [POINTER(Metric), PF, c_int]),
    "clens_patcher_new": (c_int, [POINTER(P), P, c_int, POINTER(Site), c_int, POINTER(Metric), c_int,
                                  POINTER(Error_)]),
    "clens_patcher_free": (None, [P]),
    "clens_patch_begin": (c_int, [P, PI32, PI32, c_int, c_int, PD, POINTER(c_int), POINTER(Error_)]),
    "clens_patch_sites": (c_int, [P, PD, POINTER(Error_)]),
    "clens_results_build": (c_int, [c_char_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_void_p),
                                    POINTER(Error_)]),
    "clens_model_kv_budget": (c_int64, [P]),
    "clens_patch_run": (c_int, [P, PI32, PI32, c_int, c_int, PD, POINTER(c_int), POINTER(Error_)]),
    "clens_run_default_params": (RunParams, []),
    "clens_run_open": (c_int, [POINTER(P), c_char_p, P, POINTER(RunParams), POINTER(Error_)]),
    "clens_run_get_info": (POINTER(RunInfo), [P]),
    "clens_run_execute": (c_int, [P, RUN_PROGRESS_FN, c_void_p, POINTER(Error_)]),
    "clens_run_finish": (c_int, [P, POINTER(c_void_p), POINTER(Error_)]),
    "clens_run_free": (None, [P]),
    "clens_filter_parse": (c_int, [c_char_p, POINTER(c_int)]),
    "clens_study_load": (c_int, [POINTER(P), c_char_p, POINTER(StudyOptions), POINTER(Error_)]),
    "clens_study_out": (c_char_p, [P]),
    "clens_study_settings_hash": (c_char_p, [P]),
    "clens_study_plan": (c_int, [P, POINTER(c_void_p), POINTER(Error_)]),
    "clens_study_run": (c_int, [P, LINE_PROGRESS_FN, c_void_p, POINTER(c_void_p), POINTER(Error_)]),
    "clens_study_free": (None, [P]),
    "clens_capture_default_params": (CaptureParams, []),
    "clens_capture_pairs": (c_int, [P, POINTER(CaptureParams), c_char_p, CAPTURE_PROGRESS_FN, c_void_p,
                                    POINTER(Error_)]),
    "clens_probe_default_params": (ProbeParams, []),
    "clens_probe_run": (c_int, [c_char_p, POINTER(ProbeParams), c_char_p, POINTER(c_void_p), POINTER(Error_)]),
    "clens_compare_default_params": (CompareParams, []),
    "clens_compare_write": (c_int, [POINTER(c_char_p), c_int, POINTER(CompareParams), c_char_p, POINTER(c_void_p),
                                    POINTER(Error_)]),
    "clens_steer_mode_parse": (c_int, [c_char_p, POINTER(c_int)]),
    "clens_steer_positions_parse": (c_int, [c_char_p, POINTER(c_int)]),
    "clens_steer_pair": (c_int, [P, PI32, PI32, c_int, POINTER(Steer), c_int, POINTER(Metric), c_int, c_int, PD,
                                 POINTER(c_int), POINTER(Error_)]),
    "clens_steer_generate": (c_int, [P, POINTER(PI32), POINTER(c_int), c_int, POINTER(Steer), PI32, c_int, c_int,
                                     PI32, c_int, POINTER(PI32), POINTER(c_int), POINTER(Error_)]),
    "clens_steer_generate_sampled": (c_int, [P, POINTER(PI32), POINTER(c_int), c_int, POINTER(Steer), PI32, c_int,
                                             POINTER(SampleParams), POINTER(PI32), POINTER(c_int), POINTER(Error_)]),
}


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def repo_root():
    """The source repository: this package inside a checkout (python/clens), or
    the one recorded at install time; None if unknown."""
    up = os.path.dirname(os.path.dirname(_package_dir()))
    if os.path.exists(os.path.join(up, "include", "clens.h")):
        return up
    try:
        from . import _origin  # written by setup.py
        return _origin.REPO
    except ImportError:
        return None


def find_library():
    """Path of libclens.so to load (see the module docstring); builds it if needed."""
    env = os.environ.get("CLENS_LIB")
    if env:
        return env
    here = _package_dir()
    for name in ("libclens.so", SONAME):
        p = os.path.join(here, name)
        if os.path.exists(p):
            return p
    repo = repo_root()
    if repo:
        build = os.environ.get("CLENS_BUILD", "build")
        p = os.path.join(repo, build, "libclens.so")
        if not os.path.exists(p):
            r = subprocess.run(["make", "-C", repo, "BUILD=" + build, build + "/libclens.so"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise OSError("clens: building libclens.so with make -C %s failed:\n%s" % (repo, r.stdout[-2000:]))
        return p
    raise OSError("clens: libclens.so not found: set CLENS_LIB, or install with `make python` from the repository")


def load():
    path = find_library()
    lib = ctypes.CDLL(path)
    for name, (res, args) in PROTOTYPES.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    libc = ctypes.CDLL(None)
    lib.free = libc.free
    lib.free.restype = None
    lib.free.argtypes = [c_void_p]
    lib.path = path
    return lib


lib = load()
