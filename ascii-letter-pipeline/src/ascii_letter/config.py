"""The letter pipeline's settings: MNIST's, less what differs."""

from __future__ import annotations

import dataclasses
import string
from pathlib import Path
from typing import ClassVar, Literal

from mlpipes.config import param
from mnist.config import MnistConfig


@dataclasses.dataclass(frozen=True)
class AsciiLetterConfig(MnistConfig):
    pipeline = "ascii_letter"
    bundled_weights: ClassVar[Path] = Path(__file__).parent / "pretrained"
    pretrained_version: ClassVar[str] = "1.8.0"
    model_factory = "ascii_letter.model:ascii_letter_classifier"
    # mnist's, plus the letters' own dataset.py settings (examples_per_class stays: a generated
    # child of this pipeline draws its own examples under that name)
    recipe_fields = (*MnistConfig.recipe_fields, "test_per_class", "tarball", "generator")

    image_size: int = param(32, "height and width of the letter images in pixels")
    head_grid: int = param(
        4, "the head averages the feature maps (image size / 4 a side) over a grid this many cells a side", ge=1
    )
    validation_samples: int = param(0, "training examples held out for validation (0: validate on the test split)")
    examples_per_class: int = param(100, "images per letter that make-raw-data renders")
    test_per_class: int = param(20, "images per letter held out for test by save-datasets")
    tarball: str = param("", "raw data tarball (default: <artifacts>/raw/images.tar.gz, rendered if missing)")
    pretrained_features: bool | str = param(True, "start from MNIST's feature weights: true (bundled), false, or a URL")
    epochs: int = param(15, "passes over the training set")
    batch_size: int = param(32, "examples per optimisation step")
    learning_rate: float = param(0.003, "peak learning rate of the one-cycle schedule (AdamW)")
    generator: Literal["strokes", "fonts", "mixed"] = param(
        "strokes", "what make-raw-data draws: pen strokes like handwriting, font glyphs, or mixed (4 strokes : 1 font)"
    )

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(string.ascii_lowercase)

    @property
    def tarball_path(self) -> Path:
        return Path(self.tarball).expanduser() if self.tarball else self.raw_dir / "images.tar.gz"
