"""Every setting of the MNIST pipeline, in one frozen dataclass.

The folders, training loop settings and weights versions every pipeline has come from
``mlpipes.pipeline.PipelineConfig``; this adds what is MNIST's own. YAML files and command-line
flags override fields by name; derived values are properties, so they can never disagree with
the fields they come from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from mlpipes.config import param
from mlpipes.errors import ConfigError, DataError
from mlpipes.pipeline import PipelineConfig

MIRROR_ENV = "MNIST_MIRROR"


@dataclasses.dataclass(frozen=True)
class MnistConfig(PipelineConfig):
    pipeline = "mnist"
    bundled_weights: ClassVar[Path] = Path(__file__).parent / "pretrained"
    pretrained_version: ClassVar[str] = "1.5.0"
    model_factory = "mnist.model:mnist_classifier"
    batch_inputs = "mnist.dataset:batch_inputs"
    read_input = "mnist.preprocess:read_image"
    preprocess = "mnist.preprocess:preprocess_array"
    recipe_fields = (  # read by dataset.py and train.py alone: a generated child's own code ignores them
        "mirrors", "pen_digits", "handwriting_fonts", "augment", "augment_rotation", "augment_shear",
        "augment_scale", "augment_translate", "augment_elastic", "augment_thickness", "calibration_fonts",
        "calibrate_augmented", "warmup_fraction", "label_smoothing", "teachers",
    )  # fmt: skip

    # data
    mirrors: tuple[str, ...] = param(
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        f"folders or URLs holding the MNIST .gz files, tried in order (${MIRROR_ENV} is tried first)",
    )
    image_size: int = param(28, "height and width of the training images in pixels (the features need 28+)", ge=28)
    pen_digits: int = param(
        0,
        "pen-drawn digits per class added to the training split (mnist/digitforms.txt), as the page's pad draws",
        ge=0,
    )
    handwriting_fonts: tuple[str, ...] = param(
        (), "handwriting fonts (TTF/OTF names or paths) the pen generator also draws, as their glyphs' centre lines"
    )
    validation_samples: int = param(5_000, "training examples held out (seeded) for validation (0: use the test split)")

    # model
    channels: tuple[int, ...] = param((16, 32, 64, 64), "output channels of the feature extractor's conv blocks", gt=0)
    head_grid: int = param(
        3, "the head averages the feature maps over a grid this many cells a side (1: one global average)", ge=1
    )
    pretrained_features: bool | str = param(
        False, "start from published feature weights: false, true (the bundled ones) or a registry URL"
    )
    freeze_features: bool = param(False, "train only the head, keeping the feature weights fixed")

    # training recipe
    augment: bool = param(False, "augment training batches (random affine, elastic, pen width) to read drawn digits")
    augment_rotation: float = param(12.0, "augmentation: rotation, uniform in ±degrees", ge=0)
    augment_shear: float = param(0.25, "augmentation: horizontal slant (tan of the angle), uniform in ±shear", ge=0)
    augment_scale: float = param(0.15, "augmentation: each axis scaled by up to 1 ± scale", ge=0)
    augment_translate: float = param(0.06, "augmentation: shift per axis, up to ± this fraction of the size", ge=0)
    augment_elastic: float = param(1.0, "augmentation: std of the smooth elastic displacement, pixels", ge=0)
    augment_thickness: float = param(0.5, "augmentation: pen width, blend towards dilation/erosion", ge=0, le=1)
    calibration_fonts: tuple[str, ...] = param(
        (),
        "handwriting fonts kept out of training: the temperature is fitted on characters drawn from them "
        "(other writers' hands) instead of on the validation split",
    )
    calibrate_augmented: bool = param(
        False, "fit the temperature on validation images augmented as above: confidence that holds on unlike data"
    )
    warmup_fraction: float = param(0.25, "fraction of the steps raising the learning rate (one-cycle)", ge=0, lt=1)
    label_smoothing: float = param(0.1, "cross-entropy label smoothing", ge=0, lt=1)
    teachers: tuple[str, ...] = param(
        (), "weights manifests whose averaged probabilities on each batch replace the labels (distillation)"
    )

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
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    def onnx_metadata(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size, "input_layout": "NCHW", "input_range": [0.0, 1.0],
            "scale": "pixel / 255", "polarity": "white on black", "drawing": self.drawing,
        }  # fmt: skip

    def check_records(self, records: Any) -> None:
        shape = tuple(records.index["schema"].get("image", {}).get("shape", ()))
        if shape[-2:] != (self.image_size, self.image_size):
            raise DataError(
                f"{records.url}: images are {'x'.join(map(str, shape[-2:]))} pixels but image_size is "
                f"{self.image_size}; set --image-size to match or rewrite the records (save-datasets --force)"
            )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.channels:
            raise ConfigError("key 'channels': expected at least one conv block")
