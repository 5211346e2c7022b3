"""``mlpipes new``: generated packages (standalone and child of mnist) pass their own tests as generated;
bad names, taken names, non-empty folders and unusable parents are refused with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlpipes.errors import ConfigError, UserError
from mlpipes.scaffold import find_parent, main, new, package_names, render

RUFF = Path(sys.executable).parent / "ruff"


def run_generated_tests(package: Path) -> subprocess.CompletedProcess:
    """The generated tests in a fresh interpreter, the package importable from its src/ (no install needed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("MLPIPES_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        env=env, cwd=package, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_folder_names_give_the_distribution_import_and_command_names():
    names = package_names("my-shapes")
    assert (names["distribution"], names["package"], names["command"], names["Package"]) == (
        "my-shapes-pipeline", "my_shapes", "my-shapes", "MyShapes",
    )  # fmt: skip


@pytest.mark.parametrize("folder", ["2fast", "has space", "class", "dé", "a.b"])
def test_names_that_are_not_identifiers_are_refused(tmp_path, folder):
    with pytest.raises(ConfigError, match="Python identifier"):
        new(str(tmp_path / folder))
    assert not (tmp_path / folder).exists()


@pytest.mark.parametrize("folder", ["json", "mlpipes", "mnist"])
def test_names_of_importable_modules_are_refused(tmp_path, folder):
    with pytest.raises(ConfigError, match="already importable"):
        new(str(tmp_path / folder))


def test_a_non_empty_folder_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "shapes"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    assert main([str(target)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(target) in error and "not empty" in error
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_an_empty_folder_is_used(tmp_path):
    (tmp_path / "shapes").mkdir()
    new(str(tmp_path / "shapes"))
    assert (tmp_path / "shapes" / "src" / "shapes" / "model.py").exists()


@pytest.mark.parametrize(
    ("parent", "message"),
    [
        ("no_such_pipeline_here", "no importable package"),
        ("json", "PipelineConfig subclass"),
        ("mnist:NoConfig", "PipelineConfig subclass"),
    ],
)
def test_parents_that_cannot_be_used_are_refused(tmp_path, parent, message):
    with pytest.raises(ConfigError, match=message):
        new(str(tmp_path / "child"), parent=parent)
    assert not (tmp_path / "child").exists()


def test_a_parent_without_bundled_feature_weights_is_refused(tmp_path, monkeypatch):
    from mnist import MnistConfig

    monkeypatch.setattr(MnistConfig, "bundled_weights", tmp_path / "nothing")
    with pytest.raises(ConfigError, match="no bundled weights"):
        find_parent("mnist")


def test_the_parent_config_is_found_among_the_public_names():
    parent = find_parent("ascii_letter")
    assert (parent.config.__name__, parent.distribution, parent.kind) == (
        "AsciiLetterConfig", "ascii-letter-pipeline", "images",
    )  # fmt: skip


def test_every_template_value_is_filled():
    names = package_names("shapes")
    for variant, kind in (("standalone", ""), ("child", "images"), ("child", "columns")):
        values = {**names, **(_child_values() if variant == "child" else {})}
        for path, text in render(values, variant, kind).items():
            assert "{{" not in text and "PACKAGE" not in path, path


def _child_values() -> dict[str, str]:
    from mlpipes.scaffold import parent_values

    return parent_values(find_parent("mnist"))


def test_the_standalone_package_installs_lints_and_passes_its_own_tests(tmp_path):
    package = tmp_path / "toy-blobs"
    new(str(package))
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["name"] == "toy-blobs-pipeline"
    assert project["scripts"] == {"toy-blobs": "toy_blobs.__main__:main"}
    assert "mlpipes" in project["dependencies"] and project["license"] == "MIT"
    modules = {p.name for p in (package / "src" / "toy_blobs").glob("*.py")}
    assert modules == {
        "__init__.py", "__main__.py", "__version__.py", "commands.py", "config.py", "dataset.py", "model.py",
        "preprocess.py", "train.py",
    }  # fmt: skip
    if RUFF.exists():
        lint = subprocess.run([str(RUFF), "check", "--no-cache", str(package)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    result = run_generated_tests(package)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_a_child_of_mnist_transfers_its_features_and_passes_its_own_tests(tmp_path):
    package = tmp_path / "toy_shapes"
    new(str(package), parent="mnist")
    config = (package / "src" / "toy_shapes" / "config.py").read_text()
    assert "class ToyShapesConfig(MnistConfig)" in config and "pretrained_features" in config
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert "mnist-pipeline" in project["dependencies"]
    if RUFF.exists():
        lint = subprocess.run([str(RUFF), "check", "--no-cache", str(package)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    result = run_generated_tests(package)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_refusals_raise_user_errors_the_cli_prints_as_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "9lives")]) == 1
    assert main([str(tmp_path / "ok_name"), "--parent", "json"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("mlpipes new: error: ") for e in errors)
    assert issubclass(ConfigError, UserError)
