import dataclasses
from typing import Annotated

import pytest

from mlpipes.cli import run_cli
from mlpipes.config import Config, param
from mlpipes.errors import DataError


@dataclasses.dataclass(frozen=True)
class DemoConfig(Config):
    pipeline = "demo"
    batch_size: int = param(128, "examples per optimisation step")
    learning_rate: float = param(0.01, "peak learning rate")
    name: str = param("run", "a label for the run")
    channels: tuple[int, ...] = param((16, 32), "conv widths")
    augment: bool = param(False, "random shifts")


@dataclasses.dataclass(frozen=True)
class ChildDemoConfig(DemoConfig):
    letters: int = param(26, "number of letter classes")


seen = {}


def train(config: DemoConfig, resume: Annotated[bool, "continue the latest run"] = False) -> None:
    """Train something."""
    seen["config"], seen["resume"] = config, resume


def predict(config: DemoConfig, files: Annotated[list[str], "images"], top: Annotated[int, "how many"] = 1) -> None:
    """Predict files."""
    seen["files"], seen["top"] = files, top


def fail(config: DemoConfig) -> None:
    """Always fails with a user error."""
    raise DataError("shard-00001.parquet: sha256 mismatch")


def crash(config: DemoConfig) -> None:
    """Fails with a bug."""
    raise RuntimeError("boom")


def cli(*argv, config_cls=DemoConfig):
    seen.clear()
    return run_cli([train, predict, fail, crash], config_cls, prog="demo", argv=list(argv))


def test_flags_are_typed():
    assert cli("train", "--batch-size", "64", "--learning-rate", "7.30", "--name", "7.30", "--channels", "8,8,8") == 0
    config = seen["config"]
    assert (config.batch_size, config.learning_rate, config.name, config.channels) == (64, 7.3, "7.30", (8, 8, 8))


def test_flags_override_the_config_file_which_overrides_defaults(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("batch_size: 32\nlearning_rate: 0.5\n")
    assert cli("train", "--config", str(path), "--batch-size", "64") == 0
    assert (seen["config"].batch_size, seen["config"].learning_rate, seen["config"].name) == (64, 0.5, "run")


def test_bool_settings_and_command_options():
    assert cli("train", "--augment", "--resume") == 0
    assert seen["config"].augment is True and seen["resume"] is True
    assert cli("train", "--augment", "false") == 0
    assert seen["config"].augment is False and seen["resume"] is False
    assert cli("train", "--no-augment") == 0 and seen["config"].augment is False


def test_positional_list_and_typed_option():
    assert cli("predict", "a.png", "b.png", "--top", "3") == 0
    assert seen["files"] == ["a.png", "b.png"] and seen["top"] == 3


def test_help_lists_every_field_with_type_default_and_meaning(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("train", "--help")
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag, meaning, default in [
        ("--batch-size", "examples per optimisation step", "[int, default: 128]"),
        ("--learning-rate", "peak learning rate", "[float, default: 0.01]"),
        ("--channels", "conv widths", "default: '16,32'"),
        ("--seed", "seed for every random choice", "[int, default: 0]"),
        ("--resume", "continue the latest run", ""),
    ]:
        assert flag in text and meaning in text and default in text


def test_child_config_gets_its_own_fields_without_new_cli_code(capsys):
    assert cli("train", "--letters", "10", "--batch-size", "8", config_cls=ChildDemoConfig) == 0
    assert type(seen["config"]) is ChildDemoConfig and seen["config"].letters == 10
    with pytest.raises(SystemExit):
        cli("train", "--help", config_cls=ChildDemoConfig)
    assert "number of letter classes" in capsys.readouterr().out


@dataclasses.dataclass(frozen=True)
class OwnRecipeDemoConfig(ChildDemoConfig):
    unused = ("augment",)  # its parent's flag, which this child's own code does not read


def test_unused_settings_are_not_offered_and_setting_one_is_one_line_naming_it(capsys):
    with pytest.raises(SystemExit):
        cli("train", "--help", config_cls=OwnRecipeDemoConfig)
    shown = capsys.readouterr().out
    assert "--augment" not in shown and "random shifts" not in shown and "--letters" in shown
    assert cli("train", config_cls=OwnRecipeDemoConfig) == 0 and seen["config"].augment is False
    assert cli("train", "--augment", config_cls=OwnRecipeDemoConfig) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "key 'augment': OwnRecipeDemoConfig's code does not read it" in err[0], err


def test_bad_flag_value_is_one_line_without_traceback(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("train", "--batch-size", "big")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == "demo train: error: argument --batch-size: expected int, got 'big' (see demo train --help)\n"


def test_unknown_key_in_config_file(tmp_path, capsys):
    path = tmp_path / "c.yml"
    path.write_text("learning_rat: 0.1\n")
    assert cli("train", "--config", str(path)) == 1
    assert "unknown key 'learning_rat'; did you mean 'learning_rate'?" in capsys.readouterr().err


def test_unknown_command_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("trian")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "demo: error: unknown command 'trian'; did you mean 'train'? (see demo --help)\n"


def test_unknown_flag_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("train", "--batch-sise", "3")
    assert exit_.value.code == 2
    assert "did you mean --batch-size" in capsys.readouterr().err


def test_user_error_and_bug_are_one_line_unless_debug(capsys):
    assert cli("fail") == 1
    assert capsys.readouterr().err.strip() == "demo: error: shard-00001.parquet: sha256 mismatch"
    assert cli("crash") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom" in err and "--debug" in err
    assert cli("crash", "--debug") == 1
    assert "Traceback" in capsys.readouterr().err


# ---- richer types, positional config files, one-line errors ------------------------------------------
import errno  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import urllib.error  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Literal  # noqa: E402

from mlpipes.cli import clean_doc  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Optimizer:
    name: Literal["adamw", "sgd"] = param("adamw", "which optimizer")
    learning_rate: float = param(0.01, "peak learning rate", gt=0)


@dataclasses.dataclass(frozen=True)
class RichConfig(Config):
    pipeline = "rich"
    data_dir: Path = param(Path("data"), "where the data is")
    tags: list[str] = param(help="labels", factory=list)
    class_weights: dict[str, float] = param({"cat": 1.0}, "loss weight per class")
    optimizer: Optimizer = param(Optimizer(), "the optimizer")
    epochs: int = param(3, "passes", gt=0)
    dropout: float | None = param(None, "dropout probability")
    warm: Optimizer | None = param(None, "an optional nested setting")


def fit(config: RichConfig) -> None:
    """Fit with the ``optimizer`` (see :class:`Optimizer`)."""
    seen["config"] = config


def classify(
    config: RichConfig,
    files: Annotated[list[Path], "inputs"],
    backend: Annotated[Literal["torch", "onnx"], "engine"] = "torch",
    threshold: Annotated[float, "minimum probability"] = 0.5,
) -> None:
    """Classify files."""
    seen.update(files=files, backend=backend, threshold=threshold)


def pull(config: RichConfig, version: Annotated[str, "the version"]) -> None:
    """Pull a version."""
    seen.update(version=version, config=config)


def raising(error: BaseException):
    def broken(config: RichConfig) -> None:
        """Fails."""
        raise error

    return broken


def rich(*argv, commands=(fit, classify, pull)):
    seen.clear()
    return run_cli(list(commands), RichConfig, prog="rich", argv=list(argv))


def test_rich_settings_as_flags():
    assert (
        rich("fit", "--data-dir", "/srv", "--tags", "a,b", "--class-weights", "cat=1,dog=2.5", "--dropout", "0.1") == 0
    )
    config = seen["config"]
    assert config.data_dir == Path("/srv") and config.tags == ["a", "b"] and config.dropout == 0.1
    assert config.class_weights == {"cat": 1.0, "dog": 2.5}
    assert rich("fit", "--tags", '[a, "b,c"]', "--class-weights", "{x: 3}", "--dropout", "none") == 0
    assert seen["config"].tags == ["a", "b,c"] and seen["config"].class_weights == {"x": 3.0}
    assert seen["config"].dropout is None


def test_optional_nested_setting_takes_a_yaml_mapping_or_none():
    assert rich("fit", "--warm", "{name: sgd}") == 0 and seen["config"].warm == Optimizer("sgd")
    assert rich("fit", "--warm", "none") == 0 and seen["config"].warm is None


def test_nested_flags_merge_into_the_config_file(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("optimizer: {name: sgd, learning_rate: 0.5}\nepochs: 7\n")
    assert rich("fit", "--config", str(path), "--optimizer.learning-rate", "0.1") == 0
    assert seen["config"].optimizer == Optimizer("sgd", 0.1) and seen["config"].epochs == 7


def test_help_documents_nested_flags_and_strips_rest_markup(capsys):
    with pytest.raises(SystemExit):
        rich("fit", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "--optimizer.learning-rate FLOAT peak learning rate [float, default: 0.01]" in out
    assert "--optimizer.name {adamw,sgd}" in out and "--outer.inner" in out
    assert "Fit with the optimizer (see Optimizer)." in out and "`" not in out
    assert "CONFIG.yml" in out


def test_clean_doc_removes_roles_and_double_backticks():
    text = "Use ``mnist --help``; see :func:`mlpipes.cli.run_cli` and :ref:`guide <new-pipeline>`. Example::"
    assert clean_doc(text) == "Use mnist --help; see mlpipes.cli.run_cli and guide. Example:"


def test_config_file_by_position(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 9\n")
    assert rich("fit", str(path), "--tags", "x") == 0
    assert seen["config"].epochs == 9 and seen["config"].tags == ["x"]
    assert rich("classify", str(path), "a.png", "b.png", "--threshold", "0.9") == 0
    assert seen["files"] == [Path("a.png"), Path("b.png")] and seen["threshold"] == 0.9
    assert rich("classify", "a.png", "b.png") == 0 and seen["files"] == [Path("a.png"), Path("b.png")]
    assert rich("classify", "a.png", "--backend", "onnx", "b.png") == 0  # options between positionals
    assert seen["files"] == [Path("a.png"), Path("b.png")] and seen["backend"] == "onnx"
    assert rich("pull", str(path), "1.0.0") == 0 and (seen["version"], seen["config"].epochs) == ("1.0.0", 9)
    assert rich("pull", "1.0.0") == 0 and seen["version"] == "1.0.0"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("fit", "c.txt"), "unrecognized arguments: c.txt (a config file given by position must end in .yml or .yaml)"),
        (("fit", "a.yml", "--config", "b.yml"), "two config files, a.yml and --config b.yml: give one"),
        (("classify", "c.yml"), "the following arguments are required: FILES"),
        (("pull", "c.yml"), "the following arguments are required: VERSION"),
        (("pull", "1.0", "2.0"), "unrecognized arguments: 2.0"),
        (
            ("classify", "a.png", "--backend", "tensorflow"),
            "argument --backend: expected one of {torch,onnx}, got 'tensorflow'",
        ),
        (("classify", "a.png", "--threshold", "high"), "argument --threshold: expected float, got 'high'"),
        (("fit", "--optimizer.name", "adam"), "argument --optimizer.name: expected one of {adamw,sgd}, got 'adam'"),
        (("fit", "--class-weights", "cat"), "argument --class-weights: expected dict[str, float] as key=value"),
        (("fit", "--tags", "[a"), "argument --tags: flag:"),
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        rich(*argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bounds_errors_name_the_key_and_the_file_only_when_it_is_the_culprit(tmp_path, capsys):
    assert rich("fit", "--epochs", "0") == 1
    assert capsys.readouterr().err == "rich: error: key 'epochs': must be > 0, got 0\n"
    assert rich("fit", "--optimizer.learning-rate", "inf") == 1
    assert capsys.readouterr().err == "rich: error: key 'optimizer.learning_rate': must be finite, got inf\n"
    path = tmp_path / "c.yml"
    path.write_text("epochs: -2\n")
    assert rich("fit", str(path)) == 1
    assert capsys.readouterr().err == f"rich: error: {path}: key 'epochs': must be > 0, got -2\n"
    assert rich("fit", str(path), "--epochs", "0") == 1
    assert capsys.readouterr().err == "rich: error: key 'epochs': must be > 0, got 0\n"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/d/w.safetensors"),
            "disk full writing /d/w.safetensors: free space or set --artifact-dir to another disk",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/ro/x"),
            "cannot write /ro/x: read-only file system; set --artifact-dir to a writable folder",
        ),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), "cannot access /root/x: permission denied"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope"), "/nope: no such file or directory"),
        (FileNotFoundError("s3://bucket/records/index.json"), "s3://bucket/records/index.json: not found"),
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "network error: [Errno 111]"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "network error: Connection refused"),
        (TimeoutError("timed out"), "network error: timed out"),
        (__import__("socket").gaierror(-2, "Name or service not known"), "network error: Name or service not known"),
        (
            UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"),
            "cannot decode text as utf-8: byte 0xff at offset 2 (invalid start byte)",
        ),
        (json.JSONDecodeError("Expecting value", "{\n x", 3), "malformed JSON at line 2 column 2: Expecting value"),
        (RuntimeError("line one\nline two"), "RuntimeError: line one line two (run with --debug for the traceback)"),
    ],
)
def test_errors_reaching_the_cli_are_one_line_naming_the_culprit(capsys, error, message):
    assert rich("broken", commands=[raising(error)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rich: error: ") and message in err and err.count("\n") == 1


def test_http_error_names_the_url(capsys):
    error = urllib.error.HTTPError("https://mirror.example/x.gz", 404, "Not Found", {}, None)
    assert rich("broken", commands=[raising(error)]) == 1
    assert "network error reaching https://mirror.example/x.gz: HTTP 404 Not Found" in capsys.readouterr().err


def test_huge_messages_are_cut(capsys):
    assert rich("broken", commands=[raising(ValueError("x" * 10_000))]) == 1
    assert len(capsys.readouterr().err) < 1100


def test_debug_environment_keeps_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("MLPIPES_DEBUG", "1")
    assert rich("broken", commands=[raising(OSError(errno.ENOSPC, "full", "/x"))]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith(
        "disk full writing /x: free space or set --artifact-dir to another disk"
    )
    monkeypatch.setenv("MLPIPES_DEBUG", "0")
    assert rich("broken", commands=[raising(OSError(errno.ENOSPC, "full", "/x"))]) == 1
    assert "Traceback" not in capsys.readouterr().err


# ---- commands without a config (the mlpipes command) ----------------------------------------------------
def tool(
    root: Annotated[Path, "a folder"],
    models: Annotated[list[str], "model folders"] = (),
    mode: Annotated[Literal["fast", "exact"], "how"] = "fast",
    size: Annotated[tuple[int, int], "height,width"] = (28, 28),
    scale: float = 1.0,
    verbose: Annotated[bool, "talk"] = False,
    color: Annotated[bool, "colours"] = True,
) -> None:
    """A ``tool`` without a config."""
    seen.update(root=root, models=models, mode=mode, size=size, scale=scale, verbose=verbose, color=color)


def test_commands_without_config():
    assert run_cli([tool], None, prog="t", argv=["tool", "r"]) == 0
    assert seen == dict(root=Path("r"), models=[], mode="fast", size=(28, 28), scale=1.0, verbose=False, color=True)
    argv = ["tool", "r.yml", "--models", "a", "--models", "b", "--mode", "exact", "--size", "32,16", "--scale", "2"]
    assert run_cli([tool], None, prog="t", argv=[*argv, "--verbose", "--no-color"]) == 0
    assert seen["root"] == Path("r.yml")  # no config: a .yml positional is the command's own argument
    assert (seen["models"], seen["mode"], seen["size"], seen["scale"]) == (["a", "b"], "exact", (32, 16), 2.0)
    assert seen["verbose"] is True and seen["color"] is False


def test_a_command_that_needs_a_config_without_one_is_a_programming_error():
    with pytest.raises(TypeError, match="takes a config"):
        run_cli([train], None, prog="t", argv=["train"])


def test_mlpipes_help_has_no_rest_markup_and_serve_keeps_its_flags(capsys):
    from mlpipes.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "serve" in out and "new" in out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--root PATH" in out and "--models PATH" in out and "--port INT" in out and "repeatable" in out


def test_mlpipes_new_without_a_scaffold_module_is_one_line(monkeypatch, capsys):
    from mlpipes.__main__ import main

    monkeypatch.setitem(sys.modules, "mlpipes.scaffold", None)
    assert main(["new", "x-pipeline"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlpipes: error: ") and "no mlpipes.scaffold module" in err and err.count("\n") == 1


def test_mlpipes_new_calls_the_scaffold(monkeypatch):
    import types

    from mlpipes.__main__ import main

    calls = []
    fake = types.ModuleType("mlpipes.scaffold")
    fake.new = lambda path, parent="": calls.append((path, parent))
    monkeypatch.setitem(sys.modules, "mlpipes.scaffold", fake)
    assert main(["new", "letters", "--parent", "mnist"]) == 0
    assert calls == [("letters", "mnist")]


# ---- process-level behaviour -------------------------------------------------------------------------
def test_closed_pipe_is_quiet(tmp_path):
    script = tmp_path / "many.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from mlpipes.cli import run_cli

            def lines(count: int = 100000) -> None:
                for i in range(count):
                    print(i)

            sys.exit(run_cli([lines], None, prog="many"))
            """
        )
    )
    proc = subprocess.run(
        f"{sys.executable} {script} lines | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "0\n" and proc.stderr == "" and proc.returncode == 141


def test_cli_and_config_import_no_heavy_module():
    """--help must answer fast: nothing heavy at import (PyYAML too loads only to read or write a file)."""
    code = (
        "import sys, mlpipes, mlpipes.cli, mlpipes.config, mlpipes.errors, mlpipes.__main__; "
        "from mlpipes import Config, param, run_cli, errors; "
        "print(sorted({'torch', 'numpy', 'pyarrow', 'matplotlib', 'PIL', 'yaml'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
