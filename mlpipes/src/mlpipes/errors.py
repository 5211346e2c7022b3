"""Errors a user can act on. The CLI prints them as one line (no traceback) and exits non-zero."""


class UserError(Exception):
    """Bad input or state the user can fix; the message names the culprit and what to do."""


class ConfigError(UserError):
    """An unknown key, a wrong type or an unreadable config file."""


class DataError(UserError):
    """Missing, corrupted or malformed data (a shard, a raw file, an image)."""


class IntegrityError(UserError):
    """A file whose sha256 differs from the one its manifest promises. Never loaded."""
