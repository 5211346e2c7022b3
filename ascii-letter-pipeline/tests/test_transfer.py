"""The child starts from the parent's published features, verified, and records that lineage."""

import json
import re
import subprocess
import sys

import pytest
import torch

from ascii_letter import AsciiLetterConfig, ascii_letter_classifier
from mlpipes.errors import DataError, IntegrityError
from mlpipes.records import Records
from mlpipes.resolve import bundled
from mlpipes.training import InMemorySource, evaluate
from mlpipes.weights import find_versions, load_state_dict, read_manifest
from mnist import MnistConfig
from mnist.dataset import batch_inputs, load_split

MNIST_MANIFEST = bundled(MnistConfig())


def test_the_child_starts_from_mnist_features_with_a_new_head():
    model = ascii_letter_classifier()
    for key, tensor in load_state_dict(MNIST_MANIFEST, "features").items():
        assert torch.equal(model.features.state_dict()[key], tensor), key
    assert model.head[-1].out_features == 26 and model.labels[0] == "a"
    scratch = ascii_letter_classifier(AsciiLetterConfig(pretrained_features=False))
    assert not torch.equal(scratch.features[0].weight, model.features[0].weight)


def test_weights_bring_their_own_head():
    """The default head averages the 8×8 maps over 4×4 cells; the bundled recipe averages globally, and loads anyway."""
    assert ascii_letter_classifier().head[-1].in_features == 64 * 4 * 4
    assert read_manifest(bundled(AsciiLetterConfig()))["config"]["head_grid"] == 1
    model = ascii_letter_classifier(pretrained=True)
    assert model.head[-1].in_features == 64 and model.predict(torch.zeros(1, 32, 32)).shape == (1, 26)


def test_tampered_parent_features_are_refused(tmp_path):
    for path in MNIST_MANIFEST.parent.glob("mnist-*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    features = tmp_path / json.loads(MNIST_MANIFEST.read_text())["files"]["features"]["file"]
    data = bytearray(features.read_bytes())
    data[-3] ^= 0x10
    features.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=re.escape(f"{features.name}: sha256")):
        ascii_letter_classifier(AsciiLetterConfig(pretrained_features=str(tmp_path)))


def test_weights_of_another_pipeline_or_architecture_are_refused_in_one_line():
    # MNIST's classifier as the letters' weights (or a teacher): 10 digits are not 26 letters.
    digits, letters = "10 labels (0, 1, 2, 3, 4, ...)", "26 (a, b, c, d, e, ...)"
    message = f"{MNIST_MANIFEST}: weights of 'mnist' for {digits}, but this model reads {letters}"
    with pytest.raises(DataError, match=re.escape(message)):
        ascii_letter_classifier(pretrained=str(MNIST_MANIFEST))
    # MNIST's features into a wider network: the parent's file and the first tensor that does not fit.
    parent = r"mnist ([0-9.]+) features \(mnist-features-\1\.[0-9a-f]{16}\.safetensors\)"
    with pytest.raises(DataError, match=parent + r": these weights do not fit the model \(0\.weight is \(16, 1, 3, 3"):
        ascii_letter_classifier(AsciiLetterConfig(channels=(24, 32, 64)))


def test_short_end_to_end_run_records_the_parent_lineage(tmp_path):
    def letters(*argv):
        command = [sys.executable, "-m", "ascii_letter", *argv, "--artifact-dir", str(tmp_path),
                   "--examples-per-class", "10", "--test-per-class", "3", "--train-samples", "182",
                   "--test-samples", "78", "--epochs", "2"]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    letters("make-raw-data")
    assert "dataset records (train 182, test 78)" in letters("save-datasets")
    assert "test accuracy" in letters("train-model")
    (manifest_path,) = find_versions(tmp_path / "weights", "ascii_letter")
    manifest = read_manifest(manifest_path)
    parent = json.loads(MNIST_MANIFEST.read_text())
    assert manifest["parent"]["name"] == "mnist" and manifest["parent"]["version"] == parent["version"]
    assert manifest["parent"]["sha256"] == parent["files"]["features"]["sha256"]
    assert manifest["meta"]["labels"][25] == "z" and manifest["code_version"].startswith("ascii_letter ")
    assert "test accuracy" in letters("evaluate")


def test_the_transfer_study_compares_the_chosen_mnist_features_with_scratch(tmp_path):
    # A copy of MNIST's bundled version stands for features a user trained: the study must start from those.
    for path in MNIST_MANIFEST.parent.glob("mnist-*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    command = [sys.executable, "-m", "ascii_letter", "transfer-study", "--artifact-dir", str(tmp_path / "study"),
               "--per-class", "2,4", "--seeds", "1", "--test-per-class", "2", "--epochs", "1",
               "--seed", "3", "--pretrained-features", str(tmp_path / MNIST_MANIFEST.name)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    folder = tmp_path / "study" / "transfer-study"
    rows = json.loads((folder / "transfer_study.json").read_text())["rows"]
    assert [(r["per_class"], r["start"]) for r in rows] == [(2, "mnist"), (2, "scratch"), (4, "mnist"), (4, "scratch")]
    assert all(len(r["accuracies"]) == 1 and 0 <= r["mean"] <= 1 for r in rows)
    assert "   4/class  scratch" in out and (folder / "transfer_study.png").stat().st_size > 0
    (mnist_run,) = find_versions(folder / "mnist-4-0" / "weights", "ascii_letter")
    (scratch_run,) = find_versions(folder / "scratch-4-0" / "weights", "ascii_letter")
    assert read_manifest(mnist_run)["parent"]["source"] == str(tmp_path / MNIST_MANIFEST.name)
    assert read_manifest(scratch_run)["parent"] is None
    assert read_manifest(mnist_run)["metrics"]["test_examples"] == 52
    assert read_manifest(mnist_run)["config"]["seed"] == read_manifest(scratch_run)["config"]["seed"] == 3


def test_bundled_letter_weights_on_the_generated_test_split(bundled_letter_config):
    letter_config = bundled_letter_config  # the records the bundled weights were trained and tested on
    images, labels = load_split(letter_config, "test")
    assert len(images) == 520
    model = ascii_letter_classifier(pretrained=True)
    source = InMemorySource({"image": images[:, 0], "label": labels}, 1000, shuffle=False)
    accuracy = evaluate(model, source, batch_inputs, model.labels)["accuracy"]
    manifest = read_manifest(bundled(AsciiLetterConfig()))
    assert accuracy == pytest.approx(manifest["metrics"]["test_accuracy"], abs=1e-6)  # what the manifest claims
    assert accuracy >= 0.94  # a floor for retrains: 493 of 520 with 1.8.0 and 1.7.0, 494 with 1.6.0
    assert manifest["parent"]["sha256"] == json.loads(MNIST_MANIFEST.read_text())["files"]["features"]["sha256"]
    assert manifest["dataset_sha256"] == Records.open(letter_config.records_url).sha256
