"""One rule for names that become paths, and one for URLs that are stored or printed.

``safe_name`` is the only check between a user-supplied string (a pipeline name, a model
version, a file name read from a manifest or an index) and a path on disk or in a bucket: a
name that passes it is one path segment that cannot climb out of its folder. ``redact_url``
and ``redact_config`` strip credentials from anything persisted (config.yaml, manifests,
published manifests) or printed, so a secret typed into a URL never outlives the process.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlpipes.errors import ConfigError

MAX_NAME = 128
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Query parameters whose value is a credential (matched case-insensitively, as a substring of the key).
_SECRET_PARAMS = ("signature", "token", "secret", "password", "passwd", "pwd", "key", "credential", "auth", "sig")
REDACTED = "REDACTED"


def safe_name(value: Any, what: str) -> str:
    """``value`` if it is usable as one path segment, else a one-line :class:`ConfigError`.

    Letters, digits and ``._+-``; not starting with a dot, no ``..``, at most 128 characters.
    ``what`` names the value in the message (e.g. ``"model version"``).
    """
    if not isinstance(value, str):
        raise ConfigError(f"{what} {value!r} must be a string (letters, digits, '._+-')")
    if not value or len(value) > MAX_NAME or ".." in value or not _NAME.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ConfigError(
            f"{what} {shown!r} is not a safe name: use 1-{MAX_NAME} letters, digits or '._+-', "
            "not starting with '.', without '..' or '/'"
        )
    return value


def is_url(value: str) -> bool:
    return bool(_URL.match(value))


def _secret_key(key: str) -> bool:
    key = key.lower().replace("-", "").replace("_", "")
    return any(word in key for word in _SECRET_PARAMS)


def redact_url(url: str) -> str:
    """``url`` without ``user:secret@`` and with secret-looking query values replaced by REDACTED.

    Anything that is not a ``scheme://`` URL is returned unchanged; so is a URL with nothing to strip.
    """
    if not isinstance(url, str) or not is_url(url.strip()):
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an invalid IPv6 netloc: keep only the scheme, never the rest
        return url.split("://", 1)[0] + "://" + REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_key(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if _secret_key(k) else v) for k, v in pairs], safe="/:")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries anything :func:`redact_url` would strip."""
    return isinstance(url, str) and redact_url(url) != url


def redact_config(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, tuples of plain values) with every URL string redacted."""
    if isinstance(value, dict):
        return {k: redact_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_config(v) for v in value)
    if isinstance(value, str):
        return redact_url(value)
    return value


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it redacted."""
    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+", lambda m: redact_url(m.group(0)), text)
