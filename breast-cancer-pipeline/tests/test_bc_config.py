"""The config and the command line: labels, features, strict settings, a light start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import breast_cancer
from breast_cancer import FEATURES, BreastCancerConfig
from breast_cancer.config import identifier


def test_labels_features_and_folders_follow_scikit_learn_and_mlpipes(tmp_path):
    config = BreastCancerConfig(artifact_dir=str(tmp_path))
    assert config.labels == ("malignant", "benign") and config.num_classes == 2
    assert len(FEATURES) == len(set(FEATURES)) == 30 and all(name.isidentifier() for name in FEATURES)
    assert FEATURES[:2] == ("mean_radius", "mean_texture") and FEATURES[17] == "concave_points_error"
    assert FEATURES[-1] == "worst_fractal_dimension"
    assert identifier(" worst  concave points ") == "worst_concave_points"
    assert config.records_url == str(tmp_path / "datasets" / "breast_cancer")
    assert config.onnx_metadata()["features"] == list(FEATURES)


def test_the_committed_pretrained_config_loads():
    path = Path(breast_cancer.__file__).parent / "configs" / "pretrained.yml"
    assert BreastCancerConfig.from_yaml(path).seed == 0


def test_help_starts_without_torch_numpy_or_scikit_learn():
    code = (
        "import sys, contextlib, io\n"
        "from breast_cancer.__main__ import main\n"
        "sys.argv = ['breast-cancer', 'train-model', '--help']\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit): main()\n"
        "heavy = sorted({'torch', 'numpy', 'sklearn', 'pyarrow'} & set(sys.modules))\n"
        "print(heavy, '--hidden' in out.getvalue(), '--test-fraction' in out.getvalue())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["[]", "True", "True"], result.stderr


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--test-fraction=1.5", "'test_fraction'"),
        ("--dropout=1", "'dropout'"),
        ("--hidden=0,8", "key 'hidden': expected positive layer widths"),
        ("--batch-sise=8", "did you mean"),
    ],
)
def test_invalid_settings_are_refused_in_one_line(flag, message, bc_cli, tmp_path, capsys):
    with pytest.raises(SystemExit) if "sise" in flag else _no_exit():
        status = bc_cli("train-model", flag, "--artifact-dir", tmp_path)
        assert status == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
