"""Budgets checked before work, and culprit names that keep an error message on one short line.

Every reader of untrusted input (images, tarballs) asks :func:`budget` for its limits, so each
limit has one default and one environment variable a user can raise, and every refusal says
which. :func:`shown` bounds and escapes names taken from that input: a hostile 1 GiB member
name or one with a newline in it must not become a 1 GiB or two-line error.
"""

from __future__ import annotations

import os

from mlpipes.errors import ConfigError, DataError

NAME_LIMIT = 160


def budget(env: str, default: int) -> int:
    """The positive integer in ``$env``, else ``default``."""
    text = os.environ.get(env, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"${env}={shown(os.environ[env], 40)}: expected a positive integer (default {default})")
    return value


def over_budget(culprit: str, what: str, value: int, limit: int, env: str) -> DataError:
    """The one-line refusal: who, what is too large, the limit, and how to raise it."""
    return DataError(f"{culprit}: {what} {value:,} is over the limit of {limit:,}; raise ${env} if this is intended")


def shown(name: object, limit: int = NAME_LIMIT) -> str:
    """``name`` as one printable line of at most about ``limit`` characters."""
    text = str(name)
    cut = f"…(+{len(text) - limit:,} chars)" if len(text) > limit else ""
    text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text + cut
