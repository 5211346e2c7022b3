"""Strict, typed pipeline configuration: a frozen dataclass that round-trips through YAML.

A pipeline subclasses :class:`Config`, declares every setting with :func:`param` (default plus a
one-line meaning, which becomes the ``--help`` text) and exposes derived values as properties.
YAML files override only the keys they name; unknown keys and wrong types are refused with a
message naming the key, so a typo can never silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from mlpipes.errors import ConfigError

C = TypeVar("C", bound="Config")

HOME_ENV = "MLPIPES_HOME"
REGISTRY_ENV = "MLPIPES_REGISTRY"


def param(default: Any, help: str) -> Any:
    """A config field with its default and the one-line meaning shown by ``--help``."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings shared by every pipeline. Subclass it (also ``frozen=True``) and add fields."""

    pipeline: ClassVar[str] = "pipeline"

    artifact_dir: str = param(
        "", f"datasets, runs and weights go here (default: ${HOME_ENV}/<pipeline> or ~/.mlpipes/<pipeline>)"
    )
    seed: int = param(0, "seed for every random choice: same seed, same run")
    registry: str = param(
        "",
        f"where deploy publishes and pull fetches model versions, any fsspec URL such as s3://bucket/models "
        f"(default: ${REGISTRY_ENV}, else ${HOME_ENV}/registry or ~/.mlpipes/registry)",
    )

    def __post_init__(self) -> None:
        hints = type_hints(type(self))
        for f in dataclasses.fields(self):
            value = coerce(getattr(self, f.name), hints[f.name], f.name)
            object.__setattr__(self, f.name, value)

    # ---- derived values -------------------------------------------------------------------
    @property
    def artifacts(self) -> Path:
        """The artifact directory: the field, else ``$MLPIPES_HOME/<pipeline>``, else ``~/.mlpipes``."""
        if self.artifact_dir:
            return Path(self.artifact_dir).expanduser()
        root = os.environ.get(HOME_ENV) or "~/.mlpipes"
        return Path(root).expanduser() / self.pipeline

    @property
    def registry_url(self) -> str:
        """The registry: the field, else ``$MLPIPES_REGISTRY``, else ``registry`` beside the artifact dirs."""
        if self.registry or os.environ.get(REGISTRY_ENV):
            return self.registry or os.environ[REGISTRY_ENV]
        return str(Path(os.environ.get(HOME_ENV) or "~/.mlpipes").expanduser() / "registry")

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any], source: str = "config") -> C:
        """Build from a mapping of overrides, refusing unknown keys (naming the closest valid one)."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"
                raise ConfigError(f"{source}: unknown key '{key}'{hint}")
        return cls(**values)

    @classmethod
    def from_yaml(cls: type[C], path: str | os.PathLike, **overrides: Any) -> C:
        """Defaults, then the file's keys, then ``overrides``."""
        values = read_yaml(path)
        return cls.from_dict({**values, **overrides}, source=str(path))

    def replace(self: C, **overrides: Any) -> C:
        return type(self).from_dict({**self.to_dict(), **overrides})

    # ---- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def describe(cls) -> list[tuple[str, Any, Any, str]]:
        """(name, type, default, help) for every field, in declaration order."""
        hints = type_hints(cls)
        return [(f.name, hints[f.name], f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(values).__name__}")
    return values


def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "{" + ",".join(str(a) for a in typing.get_args(tp)) + "}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"tuple[{type_name(typing.get_args(tp)[0])}, ...]"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it normalised (int→float, list→tuple)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad() -> ConfigError:
        return ConfigError(f"key '{key}': expected {type_name(tp)}, got {value!r} ({type(value).__name__})")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError:
                pass
        raise bad()
    if origin is Literal:
        if value in args:
            return value
        raise bad()
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        try:
            return tuple(coerce(v, args[0], key) for v in value)
        except ConfigError:
            raise bad() from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    raise ConfigError(f"key '{key}': unsupported field type {tp!r}")


def parse_text(text: str, tp: Any, key: str) -> Any:
    """Parse a command-line string into a value of type ``tp`` (comma-separated for tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_text(text, arg, key)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is tuple:
        parts = [p.strip() for p in text.split(",") if p.strip()] if text else []
        return tuple(parse_text(p, args[0], key) for p in parts)
    if origin is Literal:
        for option in args:
            if str(option) == text:
                return option
        raise ConfigError(f"--{flag_name(key)}: expected one of {type_name(tp)}, got '{text}'")
    try:
        if tp is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"--{flag_name(key)}: expected {type_name(tp)}, got '{text}'") from None
    if tp is str:
        return text
    return coerce(yaml.safe_load(text), tp, key)


def flag_name(key: str) -> str:
    return key.replace("_", "-")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
