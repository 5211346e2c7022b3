"""Turn command functions into a command-line interface (used by every pipeline and by ``mlpipes``).

A command is a plain function. When its first parameter is the pipeline's config, the command
takes settings::

    def train_model(config: MnistConfig, resume: Annotated[bool, "continue the latest run"] = False):
        \"\"\"Train the classifier and write a run record and versioned weights.\"\"\"

``run_cli([train_model, ...], MnistConfig, prog="mnist")`` gives ``mnist train-model`` with
every config field as a typed flag (``--batch-size 64``; a nested dataclass field's fields as
``--outer.inner``), settings read from a YAML file given as ``--config FILE`` or as the first
positional argument when it ends in ``.yml``/``.yaml`` (``mnist save-datasets my.yml``), flags
applied after the file, and ``--help`` listing each field's type, default and meaning. A child
pipeline's config subclass gets its new fields as flags with no CLI code of its own. Commands
without a config (``config_cls=None``, or a first parameter that is not ``config``) get only their
own parameters, so the ``mlpipes`` command uses this layer too.

The other parameters become positionals (no default; ``list``/``tuple`` take one or more) or
options (``bool`` → ``--flag``; ``list`` → repeatable; ``tuple`` → comma-separated). Every error
is one line on stderr: a bad flag exits 2 (argparse's convention), a failed command 1, an
interrupt 130, a closed stdout pipe (``mnist predict … | head -1``) 141 quietly, as ``cat`` does.
``--debug`` or ``MLPIPES_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import os
import re
import sys
import traceback
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from mlpipes.config import Config, flag_name, merge, parse_flag, read_yaml, settings, type_name
from mlpipes.errors import ConfigError, one_line

Command = Callable[..., Any]
DEBUG_ENV = "MLPIPES_DEBUG"
CONFIG_SUFFIXES = (".yml", ".yaml")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


@dataclasses.dataclass
class _Param:
    name: str
    tp: Any
    help: str
    default: Any

    @property
    def positional(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def many(self) -> bool:
        return typing.get_origin(self.tp) in (list, tuple) or self.tp in (list, tuple)

    @property
    def dest(self) -> str:
        return f"_arg_{self.name}"


@dataclasses.dataclass
class _Spec:
    fn: Command
    config_cls: type[Config] | None
    params: list[_Param]


def command_name(fn: Command) -> str:
    return fn.__name__.strip("_").replace("_", "-")


def run_cli(
    commands: Sequence[Command],
    config_cls: type[Config] | None = None,
    *,
    prog: str,
    version: str = "",
    description: str = "",
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv``, build the config, run the chosen command; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_env() or "--debug" in argv
    chosen = next((word for word in argv if not word.startswith("-")), "")
    parser = build_parser(commands, config_cls, prog=prog, version=version, description=description, only=chosen)
    args, unknown = parser.parse_known_args(argv)
    spec: _Spec = args._spec
    kwargs, config_file = _bind(args._parser, spec, args, unknown)
    try:
        if spec.config_cls is not None:
            spec.fn(_config_from_args(args, spec.config_cls, config_file), **kwargs)
        else:
            spec.fn(**kwargs)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as e:
        if e.filename is None:  # our stdout's reader went away (… | head -1): not an error
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        return _report(prog, e, debug, spec)
    except Exception as e:
        return _report(prog, e, debug, spec)
    return 0


def debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def _report(prog: str, error: Exception, debug: bool, spec: _Spec) -> int:
    if debug:
        traceback.print_exc()
    dir_flag = "--artifact-dir" if spec.config_cls is not None else ""
    print(f"{prog}: error: {one_line(error, dir_flag)}", file=sys.stderr)
    return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture stdout)
        pass


def build_parser(
    commands: Sequence[Command],
    config_cls: type[Config] | None = None,
    *,
    prog: str,
    version: str = "",
    description: str = "",
    only: str | None = None,
) -> argparse.ArgumentParser:
    """The parser of every command; with ``only``, just that command gets its arguments (faster --help)."""
    parser = _Parser(
        prog=prog, description=clean_doc(description), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if version:
        parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for fn in commands:
        doc = clean_doc(inspect.getdoc(fn) or "")
        cmd = sub.add_parser(
            command_name(fn),
            help=_help(doc.split("\n", 1)[0]),
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if only is None or only == command_name(fn):
            spec = _spec(fn, config_cls)
            cmd.set_defaults(_spec=spec, _parser=cmd)
            _add_command(cmd, spec)
    return parser


def _spec(fn: Command, config_cls: type[Config] | None) -> _Spec:
    """Which parameters ``fn`` has; whether its first one is the config."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params = list(inspect.signature(fn).parameters.values())
    takes_config = bool(params) and (
        params[0].name == "config"
        or (isinstance(hints.get(params[0].name), type) and issubclass(hints[params[0].name], Config))
    )
    if takes_config:
        if config_cls is None:
            raise TypeError(f"command {fn.__name__} takes a config but run_cli got config_cls=None")
        params = params[1:]
    described = []
    for p in params:
        tp, help_text = hints.get(p.name, str), ""
        if typing.get_origin(tp) is Annotated:
            tp, help_text = typing.get_args(tp)[0], typing.get_args(tp)[1]
        described.append(_Param(p.name, tp, clean_doc(help_text), p.default))
    return _Spec(fn, config_cls if takes_config else None, described)


def _add_command(cmd: argparse.ArgumentParser, spec: _Spec) -> None:
    if spec.config_cls is not None:
        cmd.add_argument(
            "_config_file",
            nargs="?",
            metavar="CONFIG.yml",
            help="YAML file of settings, like --config (only a first positional ending in .yml or .yaml)",
        )
    for p in spec.params:
        if p.positional:
            cmd.add_argument(p.dest, metavar=p.name.upper(), nargs="+" if p.many else None, help=_help(p.help))
        elif p.tp is bool:
            cmd.add_argument(
                f"--{flag_name(p.name)}", dest=p.dest, action="store_true", default=p.default, help=_help(p.help)
            )
            if p.default:
                cmd.add_argument(f"--no-{flag_name(p.name)}", dest=p.dest, action="store_false", help=argparse.SUPPRESS)
        elif typing.get_origin(p.tp) is list or p.tp is list:
            kind = (typing.get_args(p.tp) or (str,))[0]
            shown = f" [default: {_shown(p.default)}]" if p.default else ""
            cmd.add_argument(
                f"--{flag_name(p.name)}",
                dest=p.dest,
                action="append",
                type=_converter(kind),
                metavar=metavar(kind),
                help=_help(f"{p.help} (repeatable){shown}"),
            )
        else:
            cmd.add_argument(
                f"--{flag_name(p.name)}",
                dest=p.dest,
                default=p.default,
                type=_converter(p.tp),
                metavar=metavar(p.tp),
                help=_help(f"{p.help} [default: {_shown(p.default)!r}]"),
            )
    if spec.config_cls is not None:
        cmd.add_argument("--config", metavar="FILE", help="YAML file of settings, applied before the flags below")
    cmd.add_argument("--debug", action="store_true", help=f"show the full traceback on error (or set {DEBUG_ENV}=1)")
    if spec.config_cls is not None:
        group = cmd.add_argument_group(
            f"settings ({spec.config_cls.__name__}; the config file applies first, then these flags; "
            "a nested setting is --outer.inner)"
        )
        for key, tp, default, help_text in settings(spec.config_cls):
            # an unused setting is still parsed, so setting it is refused by name, but it is not offered
            _add_setting(group, key, tp, default, help_text, hidden=key in getattr(spec.config_cls, "unused", ()))


class _Parser(argparse.ArgumentParser):
    """argparse, with one-line errors and a did-you-mean for mistyped flags."""

    def error(self, message: str) -> typing.NoReturn:
        if "unrecognized arguments" in message:
            known = [s for a in self._actions for s in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], known, n=1) if word.startswith("-") else []
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        wrong = re.search(r"invalid choice: '([^']*)'", message)
        if wrong:  # a mistyped command
            names = [name for a in self._actions if isinstance(a.choices, dict) for name in a.choices]
            close = difflib.get_close_matches(wrong.group(1), names, n=1)
            message = f"unknown command '{wrong.group(1)}'" + (f"; did you mean '{close[0]}'?" if close else "")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _Parser)
        return super().add_subparsers(**kwargs)


def _add_setting(
    group: argparse._ArgumentGroup, key: str, tp: Any, default: Any, help_text: str, hidden: bool = False
) -> None:
    help_line = _help(f"{clean_doc(help_text)} [{type_name(tp)}, default: {_shown(default)!r}]")
    help_line = argparse.SUPPRESS if hidden else help_line
    dest = f"_set_{key}"
    if tp is bool:
        group.add_argument(
            f"--{flag_name(key)}",
            dest=dest,
            nargs="?",
            const=True,
            type=_converter(bool),
            metavar="BOOL",
            help=help_line,
        )
        group.add_argument(
            f"--no-{flag_name(key)}", dest=dest, action="store_const", const=False, help=argparse.SUPPRESS
        )
    else:
        group.add_argument(f"--{flag_name(key)}", dest=dest, type=_converter(tp), metavar=metavar(tp), help=help_line)


def _converter(tp: Any) -> Callable[[str], Any]:
    """argparse ``type=``: parse the text as ``tp``; a bad value is argparse's one-line error, exit 2."""

    def convert(text: str) -> Any:
        try:
            return parse_flag(text, tp)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def metavar(tp: Any) -> str:
    """``INT``, ``INT,...`` for lists and tuples, ``KEY=VALUE,...`` for dicts, ``{a,b}`` for choices."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return type_name(tp)
    if origin in (list, tuple):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return ",".join(metavar(a) for a in args)
        return f"{metavar(args[0]) if args else 'STR'},..."
    if origin is dict:
        return "KEY=VALUE,..."
    return type_name(tp).upper().replace(" ", "")


def _shown(default: Any) -> Any:
    """A default as the user would type it."""
    if isinstance(default, (list, tuple)):
        return ",".join(str(_shown(v)) for v in default)
    if isinstance(default, dict):
        return ",".join(f"{k}={_shown(v)}" for k, v in default.items())
    if isinstance(default, os.PathLike):
        return os.fspath(default)
    return default


_REST = [
    (re.compile(r":[\w:]+:`~?([^`<]*?)\s*(?:<[^>]*>)?`"), r"\1"),  # :func:`name`, :ref:`text <target>`
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``literal``
    (re.compile(r"::$", re.MULTILINE), ":"),  # literal block marker
]


def clean_doc(text: str) -> str:
    """A docstring as plain text for ``--help``: reST roles and double backticks removed."""
    for pattern, replacement in _REST:
        text = pattern.sub(replacement, text)
    return text


def _help(text: str) -> str:
    return text.replace("%", "%%")


def _bind(
    parser: argparse.ArgumentParser, spec: _Spec, args: argparse.Namespace, unknown: list[str]
) -> tuple[dict[str, Any], str | None]:
    """The command's keyword arguments and the config file, positionals assigned in order.

    argparse cannot tell ``predict my.yml a.png`` from ``predict a.png b.png``, so every positional
    word is collected and a first one ending in ``.yml``/``.yaml`` becomes the config file.
    """
    if any(word.startswith("-") for word in unknown):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    words: list[str] = []
    if spec.config_cls is not None and args._config_file is not None:
        words.append(args._config_file)
    positionals = [p for p in spec.params if p.positional]
    for p in positionals:
        value = getattr(args, p.dest)
        words += value if isinstance(value, list) else [] if value is None else [value]
    words += unknown
    config_file = getattr(args, "config", None) if spec.config_cls is not None else None
    if spec.config_cls is not None and words and words[0].lower().endswith(CONFIG_SUFFIXES):
        if config_file:
            parser.error(f"two config files, {words[0]} and --config {config_file}: give one")
        config_file = words.pop(0)
    kwargs: dict[str, Any] = {}
    for i, p in enumerate(positionals):
        singles_after = sum(not q.many for q in positionals[i + 1 :])
        take = max(1, len(words) - singles_after) if p.many else 1
        if len(words) < take:
            parser.error(f"the following arguments are required: {p.name.upper()}")
        taken, words = words[:take], words[take:]
        kinds = typing.get_args(p.tp) or (str,)
        try:
            if p.many:
                values = [parse_flag(w, kinds[0]) for w in taken]
                kwargs[p.name] = tuple(values) if typing.get_origin(p.tp) is tuple else values
            else:
                kwargs[p.name] = parse_flag(taken[0], p.tp)
        except ValueError as e:
            parser.error(f"argument {p.name.upper()}: {e}")
    if words:
        hint = " (a config file given by position must end in .yml or .yaml)" if spec.config_cls is not None else ""
        parser.error(f"unrecognized arguments: {' '.join(words)}{hint}")
    for p in spec.params:
        if not p.positional:
            value = getattr(args, p.dest)
            repeatable_unset = value is None and p.many and p.default is not None
            kwargs[p.name] = list(p.default) if repeatable_unset else value
    return kwargs, config_file


def _config_from_args(args: argparse.Namespace, config_cls: type[Config], config_file: str | None) -> Config:
    """Defaults, then the config file, then the flags (a nested setting merges into its mapping)."""
    flags: dict[str, Any] = {}
    for key, *_ in settings(config_cls):
        value = getattr(args, f"_set_{key}", None)
        if value is not None:
            *outer, name = key.split(".")
            target = flags
            for part in outer:
                target = target.setdefault(part, {})
            target[name] = value
    values = read_yaml(config_file) if config_file else {}
    try:
        return config_cls.from_dict(merge(config_cls, values, flags), source="")
    except ConfigError as e:
        culprit = re.match(r"(?:unknown )?key '([^'.\[]+)", str(e))
        if config_file and not (culprit and culprit.group(1) in flags):
            raise ConfigError(f"{config_file}: {e}") from None
        raise
