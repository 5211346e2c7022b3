"""deploy, list-versions and pull with a local folder registry; pretrained=<registry> loads what was published."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

from breast_cancer import BreastCancerConfig, breast_cancer_classifier
from mlpipes.resolve import bundled
from mlpipes.weights import read_manifest


def test_deploy_list_pull_and_load_from_a_folder_registry(tmp_path, bc_cli, capsys):
    registry = tmp_path / "registry"
    assert bc_cli("deploy", "--weights", "pretrained", "--registry", registry) == 0
    assert "published" in capsys.readouterr().out
    assert bc_cli("deploy", "--weights", "pretrained", "--registry", registry) == 0  # same content: a no-op
    assert "nothing to do" in capsys.readouterr().out

    assert bc_cli("list-versions", "--registry", registry) == 0
    listing = capsys.readouterr().out
    accuracy = read_manifest(bundled(BreastCancerConfig()))["metrics"]
    assert "1.0.0" in listing and f"test accuracy {accuracy['test_accuracy']:.4f}" in listing
    assert "features, classifier" in listing and "(bundled version)" in listing

    assert bc_cli("pull", "1.0.0", "--registry", registry) == 0  # into the (empty, private) cache, verified
    cached = Path(capsys.readouterr().out.strip().rsplit(" ", 1)[-1])
    assert cached.exists() and str(tmp_path / "cache") in str(cached)

    rows = load_breast_cancer().data
    from_registry = breast_cancer_classifier(pretrained=str(registry), version="1.0.0").predict(rows)
    np.testing.assert_array_equal(from_registry, breast_cancer_classifier(pretrained=True).predict(rows))


def test_pulling_a_version_that_was_never_published_is_a_clear_error(tmp_path, bc_cli, capsys):
    assert bc_cli("pull", "9.9.9", "--registry", tmp_path / "empty") == 1
    err = capsys.readouterr().err
    assert err.startswith("breast-cancer: error:") and "9.9.9" in err and err.count("\n") == 1
