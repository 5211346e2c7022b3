"""Letters a-z (upper and lower case are one class), 32x32, learned from MNIST's features.

>>> from ascii_letter import ascii_letter_classifier
>>> model = ascii_letter_classifier(pretrained=True)
>>> model.labels[model.predict(images).argmax(1)[0]]
"""

from __future__ import annotations

from typing import Any

from ascii_letter.__version__ import __version__
from ascii_letter.config import AsciiLetterConfig

__all__ = ["AsciiLetterConfig", "__version__", "ascii_letter_classifier"]


def __getattr__(name: str) -> Any:
    if name == "ascii_letter_classifier":  # imported on first use: the command line starts without torch
        from ascii_letter.model import ascii_letter_classifier

        return ascii_letter_classifier
    raise AttributeError(f"module 'ascii_letter' has no attribute {name!r}")
