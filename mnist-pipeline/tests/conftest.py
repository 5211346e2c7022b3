"""Shared fixtures: real MNIST records, written once per test session from the offline mirror."""

import os
from pathlib import Path

import pytest

from mnist import MnistConfig
from mnist.config import MIRROR_ENV
from mnist.dataset import save_datasets

LOCAL_MIRROR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_mirror() -> str:
    mirror = os.environ.get(MIRROR_ENV) or (str(LOCAL_MIRROR) if LOCAL_MIRROR.exists() else "")
    if not mirror:
        pytest.skip(f"real MNIST needed: set ${MIRROR_ENV} to a folder with the four MNIST .gz files")
    return mirror


@pytest.fixture(scope="session")
def mnist_config(tmp_path_factory, mnist_mirror) -> MnistConfig:
    """A config whose artifact directory holds real MNIST records."""
    config = MnistConfig(artifact_dir=str(tmp_path_factory.mktemp("mnist")), mirrors=(mnist_mirror,))
    save_datasets(config)
    return config


@pytest.fixture(scope="session")
def accuracy_of():
    """``accuracy_of(model, images, labels)``: accuracy on uint8 images (N,1,H,W), as training measures it."""
    from mlpipes.training import InMemorySource, evaluate
    from mnist.dataset import batch_inputs

    def accuracy(model, images, labels) -> float:
        source = InMemorySource({"image": images[:, 0], "label": labels}, 1000, shuffle=False)
        return evaluate(model, source, batch_inputs, model.labels)["accuracy"]

    return accuracy
