"""``mlpipes new``: generated packages (standalone and child of mnist) pass their own tests as generated;
bad names, taken names, non-empty folders and unusable parents are refused with one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from mlpipes.__main__ import main
from mlpipes.errors import ConfigError, UserError
from mlpipes.scaffold import find_parent, new, package_names, render

RUFF = Path(sys.executable).parent / "ruff"


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


@pytest.mark.parametrize("folder", ["json", "mlpipes", "pytest"])
def test_names_of_importable_modules_are_refused(tmp_path, folder):
    with pytest.raises(ConfigError, match="already importable"):
        new(str(tmp_path / folder))


def test_a_non_empty_folder_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "shapes"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    assert main(["new", str(target)]) == 1
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
    MnistConfig = pytest.importorskip("mnist").MnistConfig

    monkeypatch.setattr(MnistConfig, "bundled_weights", tmp_path / "nothing")
    with pytest.raises(ConfigError, match="no bundled weights"):
        find_parent("mnist")


def test_the_parent_config_is_found_among_the_public_names():
    pytest.importorskip("ascii_letter")
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

    pytest.importorskip("mnist")  # the repository's parent pipeline
    return parent_values(find_parent("mnist"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A standalone package and a child of mnist, generated once for the tests below."""
    pytest.importorskip("mnist")  # the repository's parent pipeline
    root = tmp_path_factory.mktemp("generated")
    new(str(root / "toy-blobs"))
    new(str(root / "toy_shapes"), parent="mnist")
    return {"standalone": root / "toy-blobs", "child": root / "toy_shapes"}


def test_the_standalone_package_has_the_seeds_layout(generated):
    package = generated["standalone"]
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["name"] == "toy-blobs-pipeline"
    assert project["scripts"] == {"toy-blobs": "toy_blobs.__main__:main"}
    assert "mlpipes" in project["dependencies"] and project["license"] == "MIT"
    assert (package / "LICENSE").exists() and (package / "README.md").exists()
    modules = {p.name for p in (package / "src" / "toy_blobs").glob("*.py")}
    assert modules == {
        "__init__.py", "__main__.py", "__version__.py", "commands.py", "config.py", "dataset.py", "model.py",
        "preprocess.py", "train.py",
    }  # fmt: skip
    assert (package / "src" / "toy_blobs" / "configs" / "pretrained.yml").exists()


def test_the_child_subclasses_the_parents_config_and_depends_on_it(generated):
    package = generated["child"]
    config = (package / "src" / "toy_shapes" / "config.py").read_text()
    assert "class ToyShapesConfig(MnistConfig)" in config and "pretrained_features" in config
    assert "model_factory" in config and "batch_inputs" not in config  # the record format is the parent's
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert "mnist-pipeline" in project["dependencies"]
    assert project["scripts"] == {"toy-shapes": "toy_shapes.__main__:main"}


def test_the_child_refuses_the_parents_own_recipe_settings_its_code_would_ignore(generated, tmp_path):
    """mnist's train.py reads --augment and --teachers; the child's own train.py does not."""
    paths = [str(generated["child"] / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}

    def child(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "toy_shapes", *argv], env=env, capture_output=True, text=True)

    shown = child("train-model", "--help").stdout
    assert "--learning-rate" in shown and "--freeze-features" in shown  # what its recipe reads
    assert "--augment" not in shown and "--teachers" not in shown and "--label-smoothing" not in shown
    for flag, value in (("--augment", "true"), ("--teachers", "a.json"), ("--pen-digits", "10")):
        refused = child("train-model", flag, value, "--artifact-dir", str(tmp_path))
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert f"key '{flag[2:].replace('-', '_')}': ToyShapesConfig's code does not read it" in refused.stderr
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed beside this Python")
def test_generated_code_is_lint_clean(generated, tmp_path):
    tabular_child = tmp_path / "tabular_child"  # a child of a tabular parent: rendered only (none is installed)
    for path, text in render({**package_names("tabular_child"), **_child_values()}, "child", "columns").items():
        (tabular_child / path).parent.mkdir(parents=True, exist_ok=True)
        (tabular_child / path).write_text(text)
    folders = [*map(str, generated.values()), str(tabular_child)]
    lint = subprocess.run([str(RUFF), "check", "--no-cache", *folders], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_both_packages_pass_their_own_tests_as_generated(generated):
    """Their tests train, evaluate, predict and export; the child's check the transfer and its lineage."""
    packages = list(generated.values())
    paths = [str(p / "src") for p in packages] + [os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    env.pop("MLPIPES_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
         *[str(p / "tests") for p in packages]],
        env=env, cwd=packages[0].parent, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed)", result.stdout)}
    written = sum(f.read_text().count("\ndef test_") for p in packages for f in (p / "tests").glob("test_*.py"))
    assert counts.get("passed", 0) + counts.get("skipped", 0) == written, counts  # none failed, none left out
    assert counts.get("passed", 0) >= written - 2, counts  # only export-onnx may skip (without onnx)


def test_refusals_raise_user_errors_the_cli_prints_as_one_line(tmp_path, capsys):
    assert main(["new", str(tmp_path / "9lives")]) == 1
    assert main(["new", str(tmp_path / "ok_name"), "--parent", "json"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("mlpipes: error: ") for e in errors)
    assert issubclass(ConfigError, UserError)
