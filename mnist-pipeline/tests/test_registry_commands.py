"""The MNIST pipeline with a registry: deploy, list-versions, pull, and pretrained=<registry URL>."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mlpipes.cli import run_cli
from mlpipes.errors import UserError
from mlpipes.resolve import bundled
from mlpipes.weights import load_state_dict, read_manifest, save_version
from mnist import MnistConfig, mnist_classifier
from mnist.commands import COMMANDS
from mnist.dataset import load_split
from mnist.model import mnist_parent_features

BUNDLED = bundled(MnistConfig())
PINNED = MnistConfig.pretrained_version


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLPIPES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLPIPES_REGISTRY", raising=False)


def mnist(*argv: str) -> int:
    return run_cli(COMMANDS, MnistConfig, prog="mnist", argv=list(argv))


def mnist_test_images(count: int, mnist_config: MnistConfig) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` real MNIST test images and labels."""
    images, labels = load_split(mnist_config, "test", limit=count)
    return images[:, 0].numpy(), labels.numpy()


def test_deploy_to_s3_then_pull_into_an_empty_cache_and_predict(
    mnist_config: MnistConfig, s3_bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = f"s3://{s3_bucket}/models"
    assert mnist("deploy", "--weights", "pretrained", "--registry", url) == 0
    assert "published" in capsys.readouterr().out
    assert mnist("deploy", "--weights", "pretrained", "--registry", url) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert mnist("list-versions", "--registry", url) == 0
    listing = capsys.readouterr().out
    accuracy = read_manifest(BUNDLED)["metrics"]["test_accuracy"]
    assert PINNED in listing and f"test accuracy {accuracy:.4f}" in listing and "features, classifier" in listing

    model = mnist_classifier(pretrained=url)  # the pinned version, pulled into the empty cache
    images, labels = mnist_test_images(500, mnist_config)
    probabilities = model.predict(images)
    assert (probabilities.argmax(1) == labels).mean() > 0.97
    np.testing.assert_array_equal(probabilities, mnist_classifier(pretrained=True).predict(images))

    assert mnist("pull", PINNED, "--registry", url) == 0
    cached = Path(capsys.readouterr().out.strip().rsplit(" ", 1)[-1])
    assert cached.read_bytes() == BUNDLED.read_bytes()
    assert mnist("pull", "2.0.0", "--registry", url) == 1
    assert f"no mnist version 2.0.0 (published: {PINNED})" in capsys.readouterr().err


def test_deploy_refuses_changed_content_and_needs_trained_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    registry = str(tmp_path / "registry")
    assert mnist("deploy", "--registry", registry) == 1
    assert "no trained mnist weights" in capsys.readouterr().err
    assert mnist("deploy", "--weights", "pretrained", "--registry", registry) == 0
    retrained = save_copy(tmp_path / "retrained", PINNED, scale=0.5)
    assert mnist("deploy", "--weights", str(retrained), "--registry", registry) == 1
    error = capsys.readouterr().err
    pattern = rf"mnist-features-{re.escape(PINNED)}[\w.+-]*\.safetensors differs"
    assert re.search(pattern, error) and error.count("\n") == 1


def save_copy(folder: Path, version: str, scale: float = 1.0) -> Path:
    """The bundled weights (scaled: a 'retrained' model) saved as another version."""
    states = {role: load_state_dict(BUNDLED, role) for role in ("features", "classifier")}
    states = {role: {k: v * scale if v.is_floating_point() else v for k, v in s.items()} for role, s in states.items()}
    info = read_manifest(BUNDLED)
    return save_version(
        folder, name="mnist", version=version, state_dicts=states, config=info["config"], metrics=info["metrics"],
        dataset_sha256=info["dataset_sha256"], code_version=info["code_version"], meta=info["meta"],
    )  # fmt: skip


def test_pretrained_true_pulls_an_unbundled_version_from_the_configured_registry(
    mnist_config: MnistConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    registry = str(tmp_path / "registry")
    monkeypatch.setenv("MLPIPES_REGISTRY", registry)
    assert mnist("deploy", "--weights", str(save_copy(tmp_path / "w", "1.1.0"))) == 0
    model = mnist_classifier(pretrained=True, version="1.1.0")
    bundled = mnist_classifier(pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), bundled.state_dict().values()))
    with pytest.raises(UserError, match=r"mnist 9\.9\.9 is not bundled with the package.*published: 1\.1\.0"):
        mnist_classifier(pretrained=True, version="9.9.9")

    images, labels = mnist_test_images(3, mnist_config)
    np.save(tmp_path / "digits.npy", images)
    capsys.readouterr()
    assert mnist("predict", str(tmp_path / "digits.npy"), "--weights", "registry", "--model-version", "1.1.0") == 0
    predicted = [line.split(": ")[1][0] for line in capsys.readouterr().out.splitlines()]
    assert predicted == [str(label) for label in labels]


def test_pretrained_features_from_a_registry_are_recorded_in_the_lineage(tmp_path: Path) -> None:
    registry = str(tmp_path / "registry")
    assert mnist("deploy", "--weights", "pretrained", "--registry", registry) == 0
    child = MnistConfig(pretrained_features=registry, artifact_dir=str(tmp_path / "child"))
    features, lineage = mnist_parent_features(child)
    expected = read_manifest(BUNDLED)["files"]["features"]
    assert lineage["source"] == registry and lineage["version"] == PINNED
    assert lineage["sha256"] == expected["sha256"] and lineage["file"] == expected["file"]
    model = mnist_classifier(child)  # a fresh classifier starts from the registry's features
    assert all(torch.equal(model.features.state_dict()[k], v) for k, v in features.items())
