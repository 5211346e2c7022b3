import json

import pytest
import torch

from mlpipes.errors import IntegrityError
from mlpipes.weights import load_state_dict, read_manifest, save_version


@pytest.fixture
def version(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    manifest = save_version(
        tmp_path,
        name="demo",
        version="1.2.0",
        state_dicts={"classifier": model.state_dict(), "head": model[0].state_dict()},
        config={"lr": 0.1},
        metrics={"test_accuracy": 0.9},
        dataset_sha256="d" * 64,
        code_version="demo 0.1.0",
        meta={"labels": ["a", "b", "c"]},
        parent={"name": "mnist", "version": "1.0.0", "sha256": "e" * 64},
    )
    return manifest, model


def test_weights_round_trip_with_a_complete_manifest(version):
    path, model = version
    assert path.name == "demo-1.2.0.json"
    manifest = read_manifest(path)
    assert manifest["files"]["classifier"]["file"] == "demo-classifier-1.2.0.safetensors"
    assert manifest["files"]["head"]["parameters"] == 15
    assert (manifest["config"], manifest["metrics"], manifest["dataset_sha256"]) == (
        {"lr": 0.1},
        {"test_accuracy": 0.9},
        "d" * 64,
    )
    assert manifest["code_version"] == "demo 0.1.0" and manifest["parent"]["version"] == "1.0.0"
    loaded = load_state_dict(path, "classifier")
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded[key], tensor)


def test_a_tampered_file_is_refused(version):
    path, _ = version
    weights = path.parent / "demo-head-1.2.0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="demo-head-1.2.0.safetensors: sha256 .* does not match"):
        load_state_dict(path, "head")
    assert load_state_dict(path, "classifier")  # the untouched file still loads


def test_a_manifest_without_hash_fails_closed(version):
    path, _ = version
    manifest = json.loads(path.read_text())
    del manifest["files"]["head"]["sha256"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="no sha256"):
        load_state_dict(path, "head")
