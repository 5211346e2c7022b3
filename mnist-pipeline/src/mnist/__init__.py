"""MNIST digit classifier as a pipeline package.

>>> from mnist import mnist_classifier
>>> model = mnist_classifier(pretrained=True)      # bundled weights, offline, sha256-verified
>>> model.predict(images)                           # -> float32 (N, 10) probabilities
"""

from mnist.__version__ import __version__
from mnist.config import MnistConfig
from mnist.model import Classifier, mnist_classifier, mnist_features
from mnist.preprocess import preprocess_images, preprocess_labels

__all__ = [
    "Classifier",
    "MnistConfig",
    "__version__",
    "mnist_classifier",
    "mnist_features",
    "preprocess_images",
    "preprocess_labels",
]
