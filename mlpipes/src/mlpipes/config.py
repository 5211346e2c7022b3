"""Strict, typed pipeline configuration: a frozen dataclass that round-trips through YAML.

A pipeline subclasses :class:`Config`, declares every setting with :func:`param` (default plus a
one-line meaning, which becomes the ``--help`` text, plus optional bounds) and exposes derived
values as properties. YAML files override only the keys they name; unknown keys, wrong types,
out-of-range and non-finite numbers are refused with a message naming the key, so a typo can never
silently fall back to a default.

Field types: ``bool``, ``int``, ``float`` (always finite), ``str``, ``Path``, ``Literal[...]``,
``X | None``, unions, ``tuple[T, ...]`` and fixed tuples, ``list[T]``, ``dict[K, V]`` and nested
dataclasses (a YAML mapping overrides only the inner keys it names). YAML is read with a loader
that refuses duplicate keys, oversized files and alias bombs, because configs come from users.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import operator
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any, ClassVar, Literal, TypeVar

from mlpipes.errors import ConfigError

C = TypeVar("C", bound="Config")

HOME_ENV = "MLPIPES_HOME"
REGISTRY_ENV = "MLPIPES_REGISTRY"
MAX_BYTES_ENV = "MLPIPES_MAX_CONFIG_BYTES"
MAX_BYTES = 1 << 20  # a config file is settings, not data
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add on top of the file's own (stops "billion laughs")
MAX_DEPTH = 100  # nesting levels of a YAML document

_BOUNDS = {"gt": (">", operator.gt), "ge": (">=", operator.ge), "lt": ("<", operator.lt), "le": ("<=", operator.le)}


def param(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> Any:
    """A config field: its default, the one-line meaning ``--help`` shows, and optional bounds.

    ``factory`` builds the default per instance (``factory=list``, ``factory=Inner``); a mutable
    default such as ``[1, 2]`` is copied per instance automatically. ``gt``/``ge``/``lt``/``le``
    are checked on every construction (for a list, tuple or dict: on each number in it).
    """
    if (default is dataclasses.MISSING) == (factory is None):
        raise TypeError("param() needs exactly one of a default or factory=")
    bounds = {name: value for name, value in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if value is not None}
    metadata = {"help": help, "bounds": bounds}
    if factory is None and type(default).__hash__ is None:  # list, dict, set, mutable dataclass
        factory = functools.partial(copy.deepcopy, default)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings shared by every pipeline. Subclass it (also ``frozen=True``) and add fields.

    A subclass may check relations between fields in its own ``__post_init__``; it must call
    ``super().__post_init__()`` first, which checks and normalises every field.
    """

    pipeline: ClassVar[str] = "pipeline"
    # Inherited fields this class's code never reads (a child that replaces its parent's training or
    # data code): left at their defaults they are harmless, set to anything else they are refused.
    unused: ClassVar[tuple[str, ...]] = ()

    artifact_dir: str = param(
        "", f"datasets, runs and weights go here (default: ${HOME_ENV}/<pipeline> or ~/.mlpipes/<pipeline>)"
    )
    seed: int = param(0, "seed for every random choice: same seed, same run", ge=0)
    registry: str = param(
        "",
        f"where deploy publishes and pull fetches model versions, any fsspec URL such as s3://bucket/models "
        f"(default: ${REGISTRY_ENV}, else ${HOME_ENV}/registry or ~/.mlpipes/registry)",
    )

    def __post_init__(self) -> None:
        hints = type_hints(type(self))
        require_fields(self, self.unused)
        for f in dataclasses.fields(self):
            value = check_field(f, getattr(self, f.name), hints[f.name], f.name, _default_instance(f))
            object.__setattr__(self, f.name, value)
            if f.name in self.unused:
                default = check_field(f, _default(f), hints[f.name], f.name, _default_instance(f))
                if value != default:
                    raise ConfigError(
                        f"key '{f.name}': {type(self).__name__}'s code does not read it (its parent's does; this "
                        f"pipeline replaces that code), so {_show(value)} would be ignored; leave it at "
                        f"{_show(default)}, or make this pipeline's code use it and drop it from `unused`"
                    )

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
    def from_dict(cls: type[C], values: Mapping[str, Any], source: str = "config") -> C:
        """Build from a mapping of overrides, refusing unknown keys (naming the closest valid one)."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        try:
            return _build(cls, values, "")
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}" if source else str(e)) from None

    @classmethod
    def from_yaml(cls: type[C], path: str | os.PathLike, **overrides: Any) -> C:
        """Defaults, then the file's keys, then ``overrides`` (a mapping for a nested field merges)."""
        values = read_yaml(path)
        return cls.from_dict(merge(cls, values, overrides), source=str(path))

    def replace(self: C, **overrides: Any) -> C:
        """A copy with ``overrides`` applied and checked (a mapping for a nested field merges into it)."""
        return type(self).from_dict(merge(type(self), self.to_dict(), overrides))

    # ---- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON types: tuples become lists, paths strings, nested dataclasses mappings."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def describe(cls) -> list[tuple[str, Any, Any, str]]:
        """(name, type, default, help) for every field, in declaration order."""
        return describe(cls)


def require_fields(config: Any, names: tuple[str, ...]) -> None:
    """``names`` (a class's ``unused`` or ``recipe_fields``) are all fields: a typo there is the class's bug."""
    strays = set(names) - {f.name for f in dataclasses.fields(config)}
    if strays:
        raise TypeError(f"{type(config).__name__}: unused/recipe_fields name no field {', '.join(sorted(strays))}")


def describe(cls: type) -> list[tuple[str, Any, Any, str]]:
    """(name, type, default, help) for every field of any dataclass, in declaration order."""
    hints = type_hints(cls)
    return [(f.name, hints[f.name], _default(f), f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


def settings(cls: type, prefix: str = "", base: Any = None) -> list[tuple[str, Any, Any, str]]:
    """Like :func:`describe`, with a nested dataclass field's fields flattened to dotted keys."""
    rows = []
    for name, tp, default, help_text in describe(cls):
        value = getattr(base, name) if base is not None else default
        if _is_dataclass_type(tp):
            rows += settings(tp, f"{prefix}{name}.", value)
        else:
            rows.append((f"{prefix}{name}", tp, value, help_text))
    return rows


def merge(cls: type, base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overrides``; a mapping for a nested-dataclass field updates only its keys."""
    merged = dict(base)
    hints = type_hints(cls) if dataclasses.is_dataclass(cls) else {}
    for key, value in overrides.items():
        inner = _nested_type(hints.get(key))
        if inner is not None and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(inner, merged[key], value)
        else:
            merged[key] = value
    return merged


def plain(value: Any) -> Any:
    """``value`` as YAML-safe builtins (the inverse of what :func:`coerce` accepts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    return value


# ---- checking ---------------------------------------------------------------------------------
class _Mismatch(ConfigError):
    """The value's type is not the annotation's (so a union may try its next member)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_field(f: dataclasses.Field, value: Any, tp: Any, key: str, base: Any = None) -> Any:
    """``value`` checked against the field's type and bounds; returned normalised."""
    value = coerce(value, tp, key, base)
    bounds = f.metadata.get("bounds")
    if bounds:
        _check_bounds(value, bounds, key)
    return value


def coerce(value: Any, tp: Any, key: str, base: Any = None) -> Any:
    """Check ``value`` against the annotation ``tp``; return it normalised (int→float, list→tuple, str→Path).

    ``base`` is the instance a mapping for a nested dataclass overrides (its field default).
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad() -> _Mismatch:
        return _Mismatch(f"key '{key}': expected {type_name(tp)}, got {_show(value)} ({type(value).__name__})", key)

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key, base)
            except _Mismatch as e:
                if e.key != key:  # a nested key failed: that message is the precise one
                    raise
        raise bad()
    if origin is Literal:
        for option in args:
            if value == option and type(value) is type(option):
                return option
        raise bad()
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        if args == ((),):
            kinds: list[Any] = []
        elif not args or (len(args) == 2 and args[1] is Ellipsis):
            kinds = [args[0] if args else Any] * len(value)
        else:
            kinds = list(args)
        if len(kinds) != len(value):
            raise bad()
        return tuple(_element(v, t, f"{key}[{i}]", bad) for i, (v, t) in enumerate(zip(value, kinds)))
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise bad()
        kind = args[0] if args else Any
        return [_element(v, kind, f"{key}[{i}]", bad) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise bad()
        key_type, value_type = args if args else (Any, Any)
        return {
            _element(k, key_type, f"{key}.{k}", bad): _element(v, value_type, f"{key}.{k}", bad)
            for k, v in value.items()
        }
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
            if not math.isfinite(value):
                raise ConfigError(f"key '{key}': must be finite, got {value!r}")
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if isinstance(tp, type) and issubclass(tp, PurePath):
        if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
            return tp(value)
        raise bad()
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value if isinstance(value, Config) else _build(type(value), plain_fields(value), key)
        if isinstance(value, Mapping):
            return _build(tp, value, key, base if isinstance(base, tp) else None)
        raise bad()
    raise ConfigError(f"key '{key}': unsupported field type {tp!r}")


def plain_fields(instance: Any) -> dict[str, Any]:
    return {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance) if f.init}


def _element(value: Any, tp: Any, key: str, bad: Callable[[], _Mismatch]) -> Any:
    """An element of a container; a plain type mismatch is reported for the whole container."""
    try:
        return coerce(value, tp, key)
    except _Mismatch as e:
        if e.key == key:
            raise bad() from None
        raise


def _build(cls: type, values: Mapping[str, Any], prefix: str, base: Any = None) -> Any:
    """An instance of dataclass ``cls`` from ``values``, the rest from ``base`` (else the defaults)."""
    dotted = f"{prefix}." if prefix else ""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{dotted}{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"unknown key '{dotted}{key}'{hint}")
    hints = type_hints(cls)
    kwargs = {}
    for f in fields:
        inner_base = getattr(base, f.name) if base is not None else _default_instance(f)
        if f.name in values:
            kwargs[f.name] = check_field(f, values[f.name], hints[f.name], f"{dotted}{f.name}", inner_base)
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"key '{dotted}{f.name}': required, it has no default")
    try:
        return cls(**kwargs)
    except ConfigError as e:  # a check in a nested class's own __post_init__: name the full key
        message = str(e)
        if prefix and message.startswith("key '") and not message.startswith(f"key '{dotted}"):
            message = f"key '{dotted}{message[5:]}"
        raise ConfigError(message) from None


def _check_bounds(value: Any, bounds: dict[str, float], key: str) -> None:
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_bounds(v, bounds, key)
        return
    if isinstance(value, Mapping):
        for v in value.values():
            _check_bounds(v, bounds, key)
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if not all(_BOUNDS[name][1](value, limit) for name, limit in bounds.items()):
        rule = " and ".join(f"{_BOUNDS[name][0]} {limit}" for name, limit in bounds.items())
        raise ConfigError(f"key '{key}': must be {rule}, got {value!r}")


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _default_instance(f: dataclasses.Field) -> Any:
    """The field's default when it is a dataclass instance (what a partial mapping overrides)."""
    if f.default is not dataclasses.MISSING:
        return f.default if dataclasses.is_dataclass(f.default) else None
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return value if dataclasses.is_dataclass(value) else None
    return None


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _nested_type(tp: Any) -> type | None:
    """The dataclass in ``Inner`` or ``Inner | None``, else None."""
    if _is_dataclass_type(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if _is_dataclass_type(a)]
        return inner[0] if len(inner) == 1 else None
    return None


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "{" + ",".join(str(a) for a in args) + "}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{type_name(args[0])}, ...]"
        return "tuple[" + ", ".join(type_name(a) for a in args) + "]"
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "path"
    return getattr(tp, "__name__", str(tp))


# ---- YAML -------------------------------------------------------------------------------------
@functools.cache
def strict_loader(fast: bool = True) -> type:
    """The YAML loader every config file goes through (built on first use: PyYAML loads lazily).

    Safe tags only (``yaml.SafeConstructor``); duplicate keys, deep nesting and alias bombs are
    refused. Aliases share nodes, so a 1 KB file can describe 10⁹ values that only explode when
    the config walks them: each node's expanded size is counted as it is composed and the file is
    refused once aliases would add more than ``MAX_ALIAS_NODES`` nodes. With ``fast`` and libyaml,
    the C parser makes the events (a 1 MiB file parses in about a second, not tens) and this
    Python composer counts them.
    """
    import yaml
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    if fast and getattr(yaml, "__with_libyaml__", False):
        events: tuple[type, ...] = (yaml.cyaml.CParser,)
    else:
        events = (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)

    class StrictLoader(*events, Composer, SafeConstructor, Resolver):  # type: ignore[misc]
        check_node = Composer.check_node  # the C parser's own composer would skip the counting below
        get_node = Composer.get_node
        get_single_node = Composer.get_single_node

        def __init__(self, stream: str) -> None:
            if len(events) == 1:
                events[0].__init__(self, stream)
            else:
                yaml.reader.Reader.__init__(self, stream)
                yaml.scanner.Scanner.__init__(self)
                yaml.parser.Parser.__init__(self)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._sizes: dict[int, int] = {}
            self._composed = 0
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                node = self.anchors.get(event.anchor)
                if node is not None and id(node) not in self._sizes:
                    raise yaml.composer.ComposerError(
                        None, None, f"alias *{event.anchor} refers to a node that contains it", event.start_mark
                    )
                return super().compose_node(parent, index)
            mark = self.peek_event().start_mark
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            node = super().compose_node(parent, index)
            self._depth -= 1
            self._composed += 1
            if isinstance(node, yaml.MappingNode):
                size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                size = 1 + sum(self._sizes[id(v)] for v in node.value)
            else:
                size = 1
            if size - self._composed > MAX_ALIAS_NODES:
                message = f"aliases expand to more than {MAX_ALIAS_NODES} extra values; refusing (alias bomb?)"
                raise yaml.composer.ComposerError(None, None, message, mark)
            self._sizes[id(node)] = size
            return node

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:  # unhashable: the base class reports it
                        continue
                    if first is not key_node:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                            key_node.start_mark,
                        )
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_yaml(text: str, source: str = "<text>", fast: bool = True) -> Any:
    """Parse YAML text with :func:`strict_loader`; every error is one line naming ``source:line:col``."""
    import yaml

    try:
        return yaml.load(text, Loader=strict_loader(fast))  # safe tags only, see strict_loader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(str(e.problem or e.context or "").split())
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as e:
        raise ConfigError(
            f"{source}: invalid YAML: character #x{e.character:04x} at offset {e.position} is not allowed"
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None


def max_config_bytes() -> int:
    from mlpipes.budgets import budget

    return budget(MAX_BYTES_ENV, MAX_BYTES)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping of settings; size, encoding and syntax errors name the file (and line)."""
    path = Path(path)
    limit = max_config_bytes()
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror or e})") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: config file is larger than {limit} bytes; set ${MAX_BYTES_ENV} to raise the limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save it as UTF-8"
        ) from None
    values = load_yaml(text, str(path))
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(values).__name__}")
    return values


# ---- command-line text ------------------------------------------------------------------------
def parse_text(text: str, tp: Any, key: str) -> Any:
    """Parse a command-line string into a value of type ``tp``; errors name the flag."""
    try:
        return parse_flag(text, tp)
    except ValueError as e:
        raise ConfigError(f"--{flag_name(key)}: {e}") from None


def parse_flag(text: str, tp: Any) -> Any:
    """Parse one flag's text; raises ValueError("expected …, got '…'") for argparse to report.

    Lists, tuples and dicts take comma-separated items (``8,16``; ``a=1,b=2``) or YAML flow syntax
    (``[8, 16]``, ``{a: 1}``) when an item itself holds a comma.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad(what: str = "") -> ValueError:
        return ValueError(f"expected {what or type_name(tp)}, got {text!r}")

    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return parse_flag(text, arg)
                except ValueError:
                    pass
        raise bad()
    if origin is Literal:
        for option in args:
            if str(option) == text:
                return option
        raise bad(f"one of {type_name(tp)}")
    if tp is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise bad("bool (true/false)")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise bad() from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise bad() from None
    if tp is str or tp is Any:
        return text
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return tp(text)
    if origin in (list, tuple, dict) or tp in (list, tuple, dict) or _is_dataclass_type(tp):
        return _parse_container(text, tp, bad)
    raise bad()


def _parse_container(text: str, tp: Any, bad: Callable[..., ValueError]) -> Any:
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if text.strip()[:1] in ("[", "{"):
        try:
            value = load_yaml(text, "flag")
            return value if _is_dataclass_type(tp) else coerce(value, tp, "value")
        except ConfigError as e:
            raise ValueError(f"{e} in {text!r}") from None
    if _is_dataclass_type(tp):
        raise bad("a YAML mapping such as {key: value}")
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if origin is dict:
        key_type, value_type = args if args else (str, str)
        pairs = [item.partition("=") for item in items]
        if any(not sep for _, sep, _ in pairs):
            raise bad(f"{type_name(tp)} as key=value,key=value")
        return {parse_flag(k.strip(), key_type): parse_flag(v.strip(), value_type) for k, _, v in pairs}
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis) and args != ((),):
        if len(items) != len(args):
            raise bad(f"{type_name(tp)} ({len(args)} comma-separated values)")
        return tuple(parse_flag(item, kind) for item, kind in zip(items, args))
    kind = args[0] if args else str
    values = [parse_flag(item, kind) for item in items]
    return tuple(values) if origin is tuple else values


def flag_name(key: str) -> str:
    return key.replace("_", "-")
