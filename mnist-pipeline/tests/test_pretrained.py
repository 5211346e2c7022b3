"""The weights shipped inside the package: integrity, and accuracy on the real test set."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from mlpipes.artifacts import sha256_file
from mlpipes.errors import IntegrityError
from mlpipes.resolve import bundled
from mnist import MnistConfig, mnist_classifier
from mnist.dataset import load_split

MANIFEST = bundled(MnistConfig())


def test_bundled_files_match_their_manifest():
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["version"] == MnistConfig.pretrained_version
    for entry in manifest["files"].values():
        path = MANIFEST.parent / entry["file"]
        assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
    assert manifest["metrics"]["test_accuracy"] >= 0.99
    assert manifest["dataset_sha256"] and manifest["code_version"].startswith("mnist ")


def test_bundled_weights_reach_99_percent_on_the_full_real_test_set(mnist_config, accuracy_of):
    model = mnist_classifier(pretrained=True)
    images, labels = load_split(mnist_config, "test")
    assert len(images) == 10_000
    assert accuracy_of(model, images, labels) >= 0.990


def test_first_training_image_is_a_five_in_keras_layout(mnist_config):
    images, _ = load_split(mnist_config, "train", limit=1)
    x = images[0, 0].numpy()
    assert mnist_classifier(pretrained=True).predict(x[None, ..., None] / 255).argmax() == 5


def test_tampered_bundled_weights_are_refused(tmp_path):
    for path in MANIFEST.parent.glob("mnist-*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    classifier = tmp_path / json.loads(MANIFEST.read_text())["files"]["classifier"]["file"]
    data = bytearray(classifier.read_bytes())
    data[-5] ^= 0x01
    classifier.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=re.escape(classifier.name)):
        mnist_classifier(pretrained=str(tmp_path))


def test_cli_predict_and_evaluate(mnist_config, tmp_path):
    images, labels = load_split(mnist_config, "test", limit=3)
    np.save(tmp_path / "batch.npy", images[:, 0].numpy())
    from PIL import Image

    Image.fromarray(255 - images[0, 0].numpy()).resize((56, 56)).save(tmp_path / "digit.png")  # dark on white
    env_args = ["--artifact-dir", mnist_config.artifact_dir, "--weights", "pretrained"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist",
            "predict",
            str(tmp_path / "digit.png"),
            str(tmp_path / "batch.npy"),
            "--json",
            *env_args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    results = json.loads(out)
    assert [r["label"] for r in results] == [str(labels[0].item())] + [str(v) for v in labels.tolist()]
    assert all(0.5 < r["probability"] <= 1 for r in results)
    out = subprocess.run(
        [sys.executable, "-m", "mnist", "evaluate", *env_args], capture_output=True, text=True, check=True
    )
    accuracy = float(out.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy >= 0.99 and "confusion matrix" in out.stdout


def test_evaluate_and_predict_score_with_the_threads_device_and_precision(mnist_config, tmp_path, monkeypatch):
    import mlpipes.training
    from mlpipes import commands

    seen = []

    def settings(model) -> None:
        seen.append((torch.get_num_threads(), torch.is_autocast_enabled("cpu"), next(model.parameters()).device.type))

    score = mlpipes.training.evaluate
    monkeypatch.setattr(mlpipes.training, "evaluate", lambda model, *rest: settings(model) or score(model, *rest))
    classifier = type(mnist_classifier())
    predict = classifier.predict
    monkeypatch.setattr(classifier, "predict", lambda model, images: settings(model) or predict(model, images))
    np.save(tmp_path / "batch.npy", load_split(mnist_config, "test", limit=2)[0][:, 0].numpy())
    threads = torch.get_num_threads()
    # train_samples below one batch: scoring reads the test split alone, so training settings cannot stop it
    config = mnist_config.replace(
        threads=threads + 1, precision="bf16", device="cpu", train_samples=100, validation_samples=0
    )
    commands.evaluate(config, weights="pretrained")
    commands.predict(config, [str(tmp_path / "batch.npy")], weights="pretrained")
    assert seen == [(threads + 1, True, "cpu")] * 2
    assert torch.get_num_threads() == threads  # restored: a library call leaves the process as it found it


def test_weights_pretrained_honours_model_version(mnist_config, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mnist", "evaluate", "--weights", "pretrained", "--model-version", "9.9.9",
         "--artifact-dir", mnist_config.artifact_dir, "--registry", str(tmp_path / "empty-registry")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1 and "mnist 9.9.9 is not bundled with the package" in result.stderr


def test_cli_predict_on_a_missing_file_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mnist", "predict", str(tmp_path / "nope.png")], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"mnist: error: {tmp_path / 'nope.png'}: no such file"


def test_predict_is_deterministic_on_torch_input():
    model = mnist_classifier(pretrained=True)
    x = torch.zeros(2, 1, 28, 28)
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
