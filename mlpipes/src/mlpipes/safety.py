"""Names that become paths, and URLs that may carry secrets (placeholder until the store branch lands)."""

from __future__ import annotations

import re

from mlpipes.errors import UserError

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def safe_name(value: object, what: str) -> str:
    """``value`` if it is one plain path segment (letters, digits, ``._+-``; no ``..``), else a one-line error."""
    if not isinstance(value, str) or not _SAFE.fullmatch(value) or ".." in value:
        raise UserError(f"{what} {str(value)[:80]!r} is not a safe name (letters, digits, '._+-'; at most 128)")
    return value


def redact_url(url: str) -> str:
    """``url`` without ``user:secret@`` (safe to persist or print)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", str(url))


def redact_config(values: dict) -> dict:
    """A config mapping with every URL-like string value redacted (nested mappings and lists too)."""

    def clean(value: object) -> object:
        if isinstance(value, str) and "://" in value:
            return redact_url(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return {k: clean(v) for k, v in values.items()}
