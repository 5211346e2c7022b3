"""Turn a pipeline's command functions into a command-line interface.

A command is a plain function whose first parameter is the pipeline's config::

    def train_model(config: MnistConfig, resume: Annotated[bool, "continue the latest run"] = False):
        \"\"\"Train the classifier and write a run record and versioned weights.\"\"\"

``run_cli([train_model, ...], MnistConfig, prog="mnist")`` gives ``mnist train-model`` with
every config field as a typed flag (``--batch-size 64``), ``--config FILE`` applied first and
flags after, and ``--help`` listing each field's type, default and meaning. A child pipeline's
config subclass gets its new fields as flags with no CLI code of its own.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import sys
import traceback
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from mlpipes.config import Config, flag_name, parse_text, read_yaml, type_hints, type_name
from mlpipes.errors import UserError

Command = Callable[..., Any]


def command_name(fn: Command) -> str:
    return fn.__name__.strip("_").replace("_", "-")


def run_cli(
    commands: Sequence[Command],
    config_cls: type[Config],
    *,
    prog: str,
    version: str = "",
    description: str = "",
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv``, build the config, run the chosen command; return the exit status."""
    parser = build_parser(commands, config_cls, prog=prog, version=version, description=description)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    debug = args.debug or bool(os.environ.get("MLPIPES_DEBUG"))
    try:
        config = _config_from_args(args, config_cls)
        fn = args._command
        kwargs = {name: getattr(args, f"_arg_{name}") for name in _command_params(fn)}
        fn(config, **kwargs)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if debug:
            traceback.print_exc()
        else:
            print(f"{prog}: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


def build_parser(
    commands: Sequence[Command], config_cls: type[Config], *, prog: str, version: str = "", description: str = ""
) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description)
    if version:
        parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for fn in commands:
        doc = inspect.getdoc(fn) or ""
        summary = doc.splitlines()[0] if doc else ""
        cmd = sub.add_parser(
            command_name(fn), help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        cmd.set_defaults(_command=fn, _parser=cmd)
        _add_command_params(cmd, fn)
        cmd.add_argument("--config", metavar="FILE", help="YAML file of settings, applied before the flags below")
        cmd.add_argument("--debug", action="store_true", help="show the full traceback on error")
        group = cmd.add_argument_group(f"settings ({config_cls.__name__}; flags override --config)")
        for name, tp, default, help_text in config_cls.describe():
            _add_setting(group, name, tp, default, help_text)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse, plus a did-you-mean for mistyped flags."""

    def error(self, message: str) -> typing.NoReturn:
        if "unrecognized arguments" in message:
            known = [s for a in self._actions for s in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        super().error(message)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _Parser)
        return super().add_subparsers(**kwargs)


def _add_setting(group: argparse._ArgumentGroup, name: str, tp: Any, default: Any, help_text: str) -> None:
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    help_line = f"{help_text} [{type_name(tp)}, default: {shown!r}]".replace("%", "%%")
    dest = f"_set_{name}"
    if tp is bool:
        group.add_argument(f"--{flag_name(name)}", dest=dest, nargs="?", const="true", metavar="BOOL", help=help_line)
        group.add_argument(
            f"--no-{flag_name(name)}", dest=dest, action="store_const", const="false", help=argparse.SUPPRESS
        )
    else:
        group.add_argument(f"--{flag_name(name)}", dest=dest, metavar=metavar(tp), help=help_line)


def metavar(tp: Any) -> str:
    """``INT``, ``STR,...`` for tuples, ``{a,b}`` for choices."""
    if typing.get_origin(tp) is typing.Literal:
        return type_name(tp)
    if typing.get_origin(tp) is tuple:
        return f"{type_name(typing.get_args(tp)[0]).upper()},..."
    return type_name(tp).upper().replace(" ", "")


def _command_params(fn: Command) -> list[str]:
    return list(inspect.signature(fn).parameters)[1:]


def _add_command_params(parser: argparse.ArgumentParser, fn: Command) -> None:
    hints = typing.get_type_hints(fn, include_extras=True)
    for name in _command_params(fn):
        param = inspect.signature(fn).parameters[name]
        tp, help_text = hints.get(name, str), ""
        if typing.get_origin(tp) is Annotated:
            tp, help_text = typing.get_args(tp)[0], typing.get_args(tp)[1]
        dest = f"_arg_{name}"
        if param.default is inspect.Parameter.empty:
            nargs = "+" if typing.get_origin(tp) in (list, tuple) else None
            parser.add_argument(dest, metavar=name.upper(), nargs=nargs, help=help_text)
        elif tp is bool:
            parser.add_argument(f"--{flag_name(name)}", dest=dest, action="store_true", help=help_text)
        else:
            parser.add_argument(
                f"--{flag_name(name)}",
                dest=dest,
                default=param.default,
                type=lambda text, tp=tp, name=name: parse_text(text, tp, name),
                metavar=metavar(tp),
                help=f"{help_text} [default: {param.default!r}]",
            )


def _config_from_args(args: argparse.Namespace, config_cls: type[Config]) -> Config:
    hints = type_hints(config_cls)
    flags = {
        name: parse_text(getattr(args, f"_set_{name}"), hints[name], name)
        for name in hints
        if getattr(args, f"_set_{name}", None) is not None
    }
    if args.config:
        return config_cls.from_dict({**read_yaml(args.config), **flags}, source=args.config)
    return config_cls.from_dict(flags, source="flags")
