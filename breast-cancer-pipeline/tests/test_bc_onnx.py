"""export-onnx through the command line: one file whose input is named ``features``, parity with PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from breast_cancer import FEATURES, BreastCancerConfig, breast_cancer_classifier
from breast_cancer.commands import COMMANDS
from mlpipes.cli import run_cli
from mlpipes.commands import onnx_classifier
from mlpipes.resolve import bundled
from mlpipes.weights import read_manifest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(bc_config, tmp_path_factory) -> BreastCancerConfig:
    """The bundled weights exported by the command into a private artifact directory."""
    config = BreastCancerConfig(artifact_dir=str(tmp_path_factory.mktemp("bc-onnx")), dataset_url=bc_config.records_url)
    package_manifest = bundled(config).read_bytes()
    argv = ["export-onnx", "--weights", "pretrained", "--artifact-dir", config.artifact_dir]
    assert (
        run_cli(COMMANDS, BreastCancerConfig, prog="breast-cancer", argv=[*argv, "--dataset-url", config.dataset_url])
        == 0
    )
    assert bundled(config).read_bytes() == package_manifest  # the package's own files are never rewritten
    return config


def onnx_entry(config: BreastCancerConfig) -> dict:
    return read_manifest(config.weights_dir / "breast_cancer-1.0.0.json")["files"]["onnx"]


def test_the_export_is_recorded_with_its_parity(exported):
    entry = onnx_entry(exported)
    assert entry["file"].endswith(".onnx") and (exported.weights_dir / entry["file"]).exists()
    parity = entry["parity"]
    assert parity["examples"] == 114 and parity["argmax_agreement"] == 1.0 and parity["max_abs_diff"] <= 1e-4


def test_the_onnx_input_is_named_features_and_its_metadata_is_the_contract(exported):
    session = ort.InferenceSession(str(exported.weights_dir / onnx_entry(exported)["file"]))
    (model_input,) = session.get_inputs()
    assert model_input.name == "features" and model_input.shape[1] == 30
    clf = onnx_classifier(exported)
    assert clf.labels == ("malignant", "benign") and clf.metadata["features"] == list(FEATURES)
    assert clf.metadata["input_shape"] == ["N", 30] and clf.metadata["pipeline"] == "breast_cancer"
    assert clf.temperature == pytest.approx(read_manifest(bundled(exported))["meta"]["temperature"])


def test_onnx_runtime_predicts_like_pytorch_on_raw_rows(exported):
    table = load_breast_cancer(as_frame=True).data  # raw measurements: the scaler is inside both models
    torch_p = breast_cancer_classifier(pretrained=True).predict(table)
    onnx_p = onnx_classifier(exported).predict(table)
    assert onnx_p.shape == (569, 2) and onnx_p.dtype == np.float32
    np.testing.assert_allclose(onnx_p, torch_p, atol=1e-5)


def test_predict_on_the_onnx_backend(exported, tmp_path, bc_cli, capsys):
    path = tmp_path / "cases.csv"
    load_breast_cancer(as_frame=True).data.iloc[:5].to_csv(path, index=False)
    common = ["predict", path, "--json", "--artifact-dir", exported.artifact_dir]
    assert bc_cli(*common, "--backend", "onnx") == 0
    onnx_results = json.loads(capsys.readouterr().out)
    assert bc_cli(*common) == 0
    torch_results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in onnx_results] == [r["label"] for r in torch_results] == ["malignant"] * 5
    for a, b in zip(onnx_results, torch_results):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
