"""The letter classifier: MNIST's architecture with a 26-class head, starting from MNIST's features."""

from __future__ import annotations

from ascii_letter.config import AsciiLetterConfig
from mnist.model import Classifier, mnist_classifier


def ascii_letter_classifier(
    config: AsciiLetterConfig | None = None, pretrained: bool | str = False, version: str | None = None
) -> Classifier:
    """Letters a–z (``.labels``). ``pretrained=True`` loads the weights shipped in this package;
    otherwise the features start from MNIST's published ones (``config.pretrained_features``)."""
    return mnist_classifier(config or AsciiLetterConfig(), pretrained, version)
