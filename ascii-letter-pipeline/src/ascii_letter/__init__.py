"""Letters a-z (upper and lower case are one class), 32x32, learned from MNIST's features.

>>> from ascii_letter import ascii_letter_classifier
>>> model = ascii_letter_classifier(pretrained=True)
>>> model.labels[model.predict(images).argmax(1)[0]]
"""

from ascii_letter.__version__ import __version__
from ascii_letter.config import AsciiLetterConfig
from ascii_letter.model import ascii_letter_classifier

__all__ = ["AsciiLetterConfig", "__version__", "ascii_letter_classifier"]
