"""The weights shipped inside the package: integrity, lineage to the committed config, accuracy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import breast_cancer
from breast_cancer import BreastCancerConfig, breast_cancer_classifier
from breast_cancer.dataset import batch_inputs
from mlpipes.artifacts import sha256_file
from mlpipes.errors import IntegrityError
from mlpipes.records import Records
from mlpipes.training import evaluate, load_data

MANIFEST = Path(breast_cancer.__file__).parent / "pretrained" / "breast_cancer-1.0.0.json"


def test_bundled_files_match_their_manifest():
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["version"] == BreastCancerConfig.pretrained_version == "1.0.0"
    for entry in manifest["files"].values():
        path = MANIFEST.parent / entry["file"]
        assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
    assert manifest["code_version"].startswith("breast_cancer ") and manifest["parent"] is None
    assert 0.25 < manifest["meta"]["temperature"] < 4  # a calibration fit, not a degenerate one


def test_bundled_weights_come_from_the_committed_config_and_todays_records(bc_config):
    manifest = json.loads(MANIFEST.read_text())
    committed = BreastCancerConfig.from_yaml(MANIFEST.parent.parent / "configs" / "pretrained.yml")
    made_by_make = {"artifact_dir": "build/pretrained-breast-cancer", "model_version": "1.0.0"}  # the Makefile's flags
    assert manifest["config"] == {**committed.to_dict(), **made_by_make}
    # save-datasets is reproducible (with the pinned pyarrow: its version is written into every shard)
    assert manifest["dataset_sha256"] == Records.open(bc_config.records_url).sha256


def test_bundled_weights_reach_95_percent_on_the_test_split(bc_config):
    model = breast_cancer_classifier(pretrained=True)
    result = evaluate(model, load_data(bc_config).test, batch_inputs, model.labels)
    assert result["examples"] == 114 and result["accuracy"] >= 0.95
    assert result["accuracy"] == pytest.approx(json.loads(MANIFEST.read_text())["metrics"]["test_accuracy"])


def test_tampered_weights_fail_closed(tmp_path):
    for file in MANIFEST.parent.iterdir():
        shutil.copy(file, tmp_path / file.name)
    weights = tmp_path / json.loads(MANIFEST.read_text())["files"]["classifier"]["file"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        breast_cancer_classifier(pretrained=str(tmp_path / MANIFEST.name))
