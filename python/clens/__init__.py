"""clens: Python binding of libclens (ctypes over include/clens.h; rulings R18).

    import clens
    model = clens.Model("path/to/hf-model")
    logits, cache = model.run_with_cache(model.to_tokens("2 + 2 ="))
    cache["blocks.0.hook_resid_pre"]          # numpy float32 [T, d_model]

Guide: docs/python.md.
"""
from . import errors
from ._lib import lib as _lib_handle
from .errors import (ArgError, Error, FormatError, IOError, NoMemError, StateError,  # noqa: A004
                     UnsupportedError)
from .model import HookPoint, Model, Tokenizer
from .pairs import pairs, read_pairs
from .patching import PatchResult, logprob_mass
from .studies import compare, probe, study

__version__ = "0.1.0"
library_path = _lib_handle.path

__all__ = ["Model", "Tokenizer", "HookPoint", "PatchResult", "pairs", "read_pairs", "logprob_mass", "study", "probe",
           "compare", "Error",
           "IOError", "FormatError", "UnsupportedError", "ArgError", "NoMemError", "StateError", "errors",
           "library_path"]
