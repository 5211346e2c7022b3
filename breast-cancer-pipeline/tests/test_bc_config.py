"""The config and the command line: labels, features, strict settings, a start without heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import breast_cancer
from breast_cancer import FEATURES, BreastCancerConfig
from mlpipes.errors import ConfigError


def test_labels_features_and_folders(tmp_path):
    config = BreastCancerConfig(artifact_dir=str(tmp_path))
    assert config.labels == ("malignant", "benign") and config.num_classes == 2
    assert len(set(FEATURES)) == 30 and all(name.isidentifier() for name in FEATURES)
    assert FEATURES[:2] == ("mean_radius", "mean_texture") and FEATURES[17] == "concave_points_error"
    assert config.records_url == str(tmp_path / "datasets" / "breast_cancer")
    assert config.onnx_metadata()["features"] == list(FEATURES)
    assert "labels" not in config.to_dict()  # a property of the pipeline, not a setting


def test_the_committed_pretrained_config_loads():
    path = Path(breast_cancer.__file__).parent / "configs" / "pretrained.yml"
    assert BreastCancerConfig.from_yaml(path) == BreastCancerConfig(seed=0)


def test_help_lists_the_recipe_and_imports_nothing_heavy():
    code = (
        "import sys, contextlib, io\n"
        "from breast_cancer.__main__ import main\n"
        "sys.argv = ['breast-cancer', 'train-model', '--help']\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit): main()\n"
        "print(sorted({'torch', 'numpy', 'sklearn', 'pyarrow', 'pandas'} & set(sys.modules)))\n"
        "print(all(flag in out.getvalue() for flag in ('--hidden', '--dropout', '--test-per-class', '--resume')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["[]", "True"], result.stderr


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--hidden=0,8", "key 'hidden': must be > 0, got 0"),
        ("--dropout=1", "key 'dropout': must be >= 0 and < 1, got 1.0"),
        ("--test-per-class=0", "key 'test_per_class': must be > 0, got 0"),
    ],
)
def test_nonsense_settings_are_refused_in_one_line_before_anything_runs(flag, message, tmp_path, bc_cli, capsys):
    assert bc_cli("train-model", flag, "--artifact-dir", tmp_path / "a") == 1
    err = capsys.readouterr().err
    assert err == f"breast-cancer: error: {message}\n"
    assert not (tmp_path / "a").exists()


def test_no_hidden_layer_is_logistic_regression():
    model = breast_cancer.breast_cancer_classifier(BreastCancerConfig(hidden=()))
    assert len(model.features) == 0 and model.head.in_features == 30


def test_a_misspelt_key_gets_a_suggestion(tmp_path, capsys):
    (tmp_path / "my.yml").write_text("hiden: [8]\n")
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        BreastCancerConfig.from_yaml(tmp_path / "my.yml")
