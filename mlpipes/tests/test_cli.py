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


def test_bad_flag_value_is_one_line_without_traceback(capsys):
    assert cli("train", "--batch-size", "big") == 1
    err = capsys.readouterr().err
    assert err.strip() == "demo: error: --batch-size: expected int, got 'big'"


def test_unknown_key_in_config_file(tmp_path, capsys):
    path = tmp_path / "c.yml"
    path.write_text("learning_rat: 0.1\n")
    assert cli("train", "--config", str(path)) == 1
    assert "unknown key 'learning_rat'; did you mean 'learning_rate'?" in capsys.readouterr().err


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
