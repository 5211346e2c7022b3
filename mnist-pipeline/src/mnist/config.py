"""Every setting of the MNIST pipeline, in one frozen dataclass.

YAML files and command-line flags override fields by name; derived values are properties, so
they can never disagree with the fields they come from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from mlpipes.config import Config, param
from mlpipes.errors import ConfigError

MIRROR_ENV = "MNIST_MIRROR"


@dataclasses.dataclass(frozen=True)
class MnistConfig(Config):
    pipeline = "mnist"
    bundled_weights: ClassVar[Path] = Path(__file__).parent / "pretrained"

    # data
    mirrors: tuple[str, ...] = param(
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        f"folders or URLs holding the MNIST .gz files, tried in order (${MIRROR_ENV} is tried first)",
    )
    dataset_url: str = param(
        "", "dataset records to train on, any fsspec URL (default: <artifacts>/datasets/<pipeline>)"
    )
    image_size: int = param(28, "height and width of the training images in pixels")
    train_samples: int = param(60_000, "training examples to use (the first N of the split), validation included")
    validation_samples: int = param(
        5_000, "training examples held out for validation each epoch (0: use the test split)"
    )
    test_samples: int = param(10_000, "test examples to evaluate on (the first N of the split)")

    # model
    channels: tuple[int, ...] = param((16, 32, 64, 64), "output channels of the feature extractor's conv blocks")
    model_version: str = param("1.0.0", "version of the weights this config produces; names the weight files")
    pretrained_features: bool | str = param(
        False, "start from published feature weights: false, true (the bundled ones) or a registry URL"
    )
    freeze_features: bool = param(False, "train only the head, keeping the feature weights fixed")

    # training
    epochs: int = param(3, "passes over the training set")
    batch_size: int = param(
        128, "examples per optimisation step, over all processes (torchrun: each takes batch_size / world size)"
    )
    learning_rate: float = param(0.01, "peak learning rate of the one-cycle schedule (AdamW)")
    weight_decay: float = param(5e-4, "AdamW weight decay")
    warmup_fraction: float = param(0.25, "fraction of the steps spent raising the learning rate")
    label_smoothing: float = param(0.1, "cross-entropy label smoothing")
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where to train: auto picks cuda when available")
    threads: int = param(0, "CPU threads for torch (0: all cores)")
    precision: Literal["fp32", "bf16"] = param("fp32", "bf16: autocast forward passes to bfloat16 (for CUDA GPUs)")

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(digit) for digit in range(10))

    @property
    def drawing(self) -> dict[str, int | str]:
        """How a free-hand drawing is framed like the training data (``preprocess.frame_ink``).

        MNIST's digits were scaled into a 20-pixel box and centred by mass in 28 pixels; the web
        app reads this from the ONNX metadata, so a child pipeline overrides it here only.
        """
        return {"size": self.image_size, "box": round(self.image_size * 20 / 28), "center": "mass"}

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    @property
    def train_rows(self) -> int:
        """Examples the optimiser sees per epoch (training samples less validation)."""
        return self.train_samples - self.validation_samples

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.train_rows // self.batch_size)

    @property
    def raw_dir(self) -> Path:
        return self.artifacts / "raw"

    @property
    def records_url(self) -> str:
        return self.dataset_url or str(self.artifacts / "datasets" / self.pipeline)

    @property
    def runs_dir(self) -> Path:
        return self.artifacts / "runs"

    @property
    def weights_dir(self) -> Path:
        return self.artifacts / "weights"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"key '{name}': must be positive, got {getattr(self, name)}")
        if self.image_size < 28:
            raise ConfigError(f"key 'image_size': the features need at least 28 pixels, got {self.image_size}")
        if self.train_samples and self.validation_samples >= self.train_samples:
            raise ConfigError(
                f"key 'validation_samples': {self.validation_samples} leaves no training data of {self.train_samples}"
            )
