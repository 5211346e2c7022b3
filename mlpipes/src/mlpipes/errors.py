"""Errors a user can act on, and the one line the CLI prints for any error (no traceback)."""

from __future__ import annotations

import errno

MAX_MESSAGE = 1000  # characters of one error line: a hostile input must not print a gigabyte
_NETWORK = ("URLError", "HTTPError", "gaierror", "ClientConnectorError", "ClientOSError", "SSLError")


class UserError(Exception):
    """Bad input or state the user can fix; the message names the culprit and what to do."""


class ConfigError(UserError):
    """An unknown key, a wrong type or an unreadable config file."""


class DataError(UserError):
    """Missing, corrupted or malformed data (a shard, a raw file, an image)."""


class IntegrityError(UserError):
    """A file whose sha256 differs from the one its manifest promises. Never loaded."""


def one_line(error: BaseException, dir_flag: str = "") -> str:
    """What went wrong, as one line naming the culprit (a path, a URL, a position) and the fix.

    ``dir_flag`` (e.g. ``--artifact-dir``) is suggested for a full, read-only or forbidden folder.
    Unknown errors keep their type name and point to ``--debug``.
    """
    if isinstance(error, UserError):
        text = str(error)
    elif isinstance(error, OSError):
        text = _os_error(error, dir_flag)
    elif isinstance(error, UnicodeDecodeError):
        byte = error.object[error.start : error.start + 1].hex()
        text = (
            f"cannot decode text as {error.encoding}: byte 0x{byte} at offset {error.start} ({error.reason}); "
            f"is the file text in that encoding?"
        )
    elif type(error).__name__ == "JSONDecodeError" and hasattr(error, "lineno"):
        text = f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}"  # type: ignore[attr-defined]
    elif isinstance(error, MemoryError):
        text = "out of memory; use smaller inputs or batches, or a machine with more memory"
    else:
        text = f"{type(error).__name__}: {error} (run with --debug for the traceback)"
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _os_error(error: OSError, dir_flag: str) -> str:
    path = error.filename if error.filename is not None else None
    where = str(path) if path is not None else ""
    reason = error.strerror or str(error) or type(error).__name__
    url = getattr(error, "url", None) or getattr(getattr(error, "request", None), "url", None)
    code = error.errno
    if isinstance(error, (ConnectionError, TimeoutError)) or type(error).__name__ in _NETWORK:
        reason = getattr(error, "reason", None) or reason
        if type(error).__name__ == "HTTPError":
            reason = f"HTTP {getattr(error, 'code', '?')} {reason}"
        target = url or where
        return f"network error{f' reaching {target}' if target else ''}: {reason}; check the address and the connection"
    elsewhere = f" or set {dir_flag} to another disk" if dir_flag else " and retry"
    if code == errno.ENOSPC:
        return f"disk full writing {where or 'a file'}: free space{elsewhere}"
    if code == errno.EDQUOT:
        return f"disk quota exceeded writing {where or 'a file'}: free space{elsewhere}"
    writable = f"; set {dir_flag} to a writable folder" if dir_flag else ""
    if code == errno.EROFS:
        return f"cannot write {where or 'a file'}: read-only file system{writable}"
    if code in (errno.EACCES, errno.EPERM):
        return f"cannot access {where or 'a file'}: permission denied; check its permissions{writable}"
    if isinstance(error, FileNotFoundError) and not where and len(error.args) == 1:  # fsspec: the path only
        return f"{error.args[0]}: not found; check the path or URL"
    if code == errno.ENOENT:
        return f"{where or 'a file'}: no such file or directory; check the path"
    if code == errno.EISDIR:
        return f"{where}: is a directory, expected a file"
    if code == errno.ENOTDIR:
        return f"{where}: a part of this path is not a directory"
    if code == errno.EADDRINUSE:
        return f"address already in use: {reason}; pick another --port"
    if where:
        return f"{where}: {reason}"
    return f"{type(error).__name__}: {error} (run with --debug for the traceback)"
