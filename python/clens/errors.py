"""errors.py: clens.Error and one subclass per clens_status code (include/clens.h).

The message is the library's one-line message (clens_error.msg), unchanged.
"""


class Error(Exception):
    """A libclens call failed. .code is the clens_status number, .status its name, .message the
    library's one-line message."""
    code = -1
    status = "error"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class IOError(Error):  # noqa: A001 (the status is named "io" in the library)
    code, status = 1, "io"


class FormatError(Error):
    code, status = 2, "format"


class UnsupportedError(Error):
    code, status = 3, "unsupported"


class ArgError(Error, ValueError):
    code, status = 4, "argument"


class NoMemError(Error, MemoryError):
    code, status = 5, "nomem"


class StateError(Error):
    code, status = 6, "state"


BY_CODE = {c.code: c for c in (IOError, FormatError, UnsupportedError, ArgError, NoMemError, StateError)}


def from_status(code, message):
    cls = BY_CODE.get(code, Error)
    e = cls(message)
    if cls is Error:
        e.code = code
    return e
