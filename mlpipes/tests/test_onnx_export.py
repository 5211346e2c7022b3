"""ONNX export: one file, dynamic batch, metadata, parity enforced, manifest entry, verified loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mlpipes.errors import IntegrityError, UserError
from mlpipes.onnx import OnnxClassifier, ParityError, check_parity, export_onnx, export_version, read_metadata
from mlpipes.weights import read_manifest, save_version

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


class Tiny(nn.Module):
    """A small conv classifier with the forward signature the exporter expects."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.labels = tuple("abc"[:classes])
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


METADATA = {"pipeline": "tiny", "model_version": "0.1.0", "labels": ["a", "b", "c"], "image_size": 12}


@pytest.fixture(scope="module")
def model() -> Tiny:
    torch.manual_seed(0)
    model = Tiny().eval()
    model.features[1].running_mean.uniform_(-0.5, 0.5)  # non-trivial batch norm, folded by the exporter
    model.features[1].running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(model, path, example=torch.rand(2, 1, 12, 12), metadata=METADATA)
    return path


def test_export_is_one_file_with_a_dynamic_batch(model, exported):
    assert sorted(p.name for p in exported.parent.iterdir()) == ["tiny.onnx"]  # no .onnx.data, no temp file
    clf = OnnxClassifier(exported)
    for batch in (1, 7):
        x = torch.rand(batch, 1, 12, 12)
        with torch.inference_mode():
            expected = model(x).numpy()
        np.testing.assert_allclose(clf.logits(x.numpy()), expected, atol=1e-5)


def test_metadata_carries_the_contract(exported):
    meta = read_metadata(exported)
    assert meta["labels"] == ["a", "b", "c"]
    assert meta["image_size"] == 12
    assert meta["pipeline"] == "tiny" and meta["model_version"] == "0.1.0"
    assert meta["format"] == "mlpipes.onnx/1"
    assert OnnxClassifier(exported).labels == ("a", "b", "c")


def test_parity_report_and_refusal(model, exported):
    images = torch.rand(32, 1, 12, 12)
    report = check_parity(model, exported, images)
    assert report["examples"] == 32 and report["argmax_agreement"] == 1.0
    assert report["max_abs_diff"] < 1e-5
    other = Tiny().eval()  # different weights: the graph no longer computes this model
    with pytest.raises(ParityError, match="disagrees with PyTorch"):
        check_parity(other, exported, images)


def test_predict_gives_probabilities_through_preprocess(exported, model):
    seen = {}

    def preprocess(images, invert=None):
        seen["invert"] = invert
        return torch.as_tensor(images, dtype=torch.float32)[:, None] / 255

    clf = OnnxClassifier(exported, preprocess=preprocess)
    raw = np.random.default_rng(0).integers(0, 256, (5, 12, 12), dtype=np.uint8)
    probabilities = clf.predict(raw, invert=False)
    assert seen["invert"] is False  # keyword arguments reach the pipeline's preprocessing
    assert probabilities.dtype == np.float32 and probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-6)
    with torch.inference_mode():
        expected = torch.softmax(model(preprocess(raw)), 1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_export_version_records_onnx_in_the_manifest(model, tmp_path):
    manifest_path = save_version(
        tmp_path,
        name="tiny",
        version="0.1.0",
        state_dicts={"classifier": model.state_dict()},
        config={},
        metrics={},
        dataset_sha256=None,
        code_version="test",
    )
    before = read_manifest(manifest_path)
    entry = export_version(model, manifest_path, torch.rand(16, 1, 12, 12), metadata=METADATA)
    after = read_manifest(manifest_path)
    assert after["files"]["onnx"] == entry
    assert entry["file"] == f"tiny-onnx-0.1.0.{entry['sha256'][:16]}.onnx"
    assert entry["bytes"] == (tmp_path / entry["file"]).stat().st_size
    assert entry["parity"]["examples"] == 16 and entry["parity"]["argmax_agreement"] == 1.0
    assert {k: v for k, v in after["files"].items() if k != "onnx"} == before["files"]  # weights untouched
    assert not list(tmp_path.glob("*.tmp")) and [p.name for p in tmp_path.glob(".*")] == [".weights.lock"]
    weights_bytes = {p.name: p.read_bytes() for p in tmp_path.glob("*.safetensors")}
    manifest_bytes = manifest_path.read_bytes()
    again = export_version(model, manifest_path, torch.rand(16, 1, 12, 12), metadata=METADATA)
    assert again["sha256"] == entry["sha256"] and manifest_path.read_bytes() == manifest_bytes  # same export: no-op
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.safetensors")} == weights_bytes

    clf = OnnxClassifier.from_manifest(manifest_path)
    assert clf.labels == ("a", "b", "c")
    onnx_file = tmp_path / entry["file"]
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        OnnxClassifier.from_manifest(manifest_path)


def test_failed_parity_keeps_nothing(model, tmp_path, monkeypatch):
    manifest_path = save_version(
        tmp_path,
        name="tiny",
        version="0.2.0",
        state_dicts={"classifier": model.state_dict()},
        config={},
        metrics={},
        dataset_sha256=None,
        code_version="test",
    )
    manifest_bytes = manifest_path.read_bytes()
    import mlpipes.onnx as module

    def broken(*args, **kwargs):
        raise ParityError("simulated disagreement")

    monkeypatch.setattr(module, "check_parity", broken)
    with pytest.raises(ParityError):
        export_version(model, manifest_path, torch.rand(4, 1, 12, 12), metadata=METADATA)
    assert not list(tmp_path.glob("*.onnx"))
    assert manifest_path.read_bytes() == manifest_bytes
    weights_file = read_manifest(manifest_path)["files"]["classifier"]["file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".weights.lock", "tiny-0.2.0.json", weights_file])


def test_manifest_without_onnx_and_unreadable_files_fail_clearly(model, tmp_path):
    manifest_path = save_version(
        tmp_path,
        name="tiny",
        version="0.3.0",
        state_dicts={"classifier": model.state_dict()},
        config={},
        metrics={},
        dataset_sha256=None,
        code_version="test",
    )
    with pytest.raises(UserError, match="no ONNX export; run export-onnx"):
        OnnxClassifier.from_manifest(manifest_path)
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text(json.dumps({"not": "onnx"}))
    with pytest.raises(UserError, match=r"bogus\.onnx: not a readable ONNX model"):
        OnnxClassifier(bogus)
