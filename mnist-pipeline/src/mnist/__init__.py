"""MNIST digit classifier as a pipeline package.

>>> from mnist import mnist_classifier
>>> model = mnist_classifier(pretrained=True)      # bundled weights, offline, sha256-verified
>>> model.predict(images)                           # -> float32 (N, 10) probabilities
"""

from __future__ import annotations

import importlib
from typing import Any

from mnist.__version__ import __version__
from mnist.config import MnistConfig

_LAZY = {  # imported on first use, so the command line starts without torch
    "Classifier": "mnist.model",
    "mnist_classifier": "mnist.model",
    "mnist_features": "mnist.model",
    "preprocess_images": "mnist.preprocess",
    "preprocess_labels": "mnist.preprocess",
}
__all__ = ["MnistConfig", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnist' has no attribute {name!r}")
