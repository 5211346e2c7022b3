"""MNIST from its canonical IDX files to dataset records, and record batches to model input.

The four files are fetched from the first mirror that has them (a folder or any fsspec URL),
verified by the sha256 of their decompressed bytes, and cached in ``<artifacts>/raw``. With
``pen_digits``, digits drawn by ``mnist.pen`` (the page's pen, varied writers, forms MNIST rarely
shows such as the slashed zero or the crossed 7) join the training split; the test split stays MNIST's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mlpipes.artifacts import sha256_file
from mlpipes.commands import existing_records
from mlpipes.download import fetch
from mlpipes.errors import ConfigError, DataError
from mlpipes.records import Records, write_records
from mlpipes.training import InMemorySource
from mnist.config import MIRROR_ENV, MnistConfig
from mnist.pen import FONT_SHARE, draw_framed, find_fonts, font_characters, font_glyph, hand, read_forms

RAW_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DIGIT_FORMS = Path(__file__).with_name("digitforms.txt")
MNIST_SIZE = 28  # pixels per side of the IDX images, and so of the records
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def mirrors(config: MnistConfig) -> list[str]:
    """The mirrors to try, in order: ``$MNIST_MIRROR`` (if set) first, then the config's."""
    extra = [m for m in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if m]
    return extra + list(config.mirrors)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (the MNIST format: magic, dimensions, then raw uint8 data) as a numpy array."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise DataError(f"{path}: {len(data) - offset} data bytes, header promises shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def save_datasets(config: MnistConfig, force: bool = False) -> Records:
    """Raw IDX files → train/test records; a no-op when intact records of the same inputs exist.

    The records go to ``config.records_url``: the artifact directory, or any fsspec URL given as
    ``dataset_url`` (``s3://bucket/datasets/mnist`` uploads them for training elsewhere).
    """
    if config.image_size != MNIST_SIZE:  # records at another size would be refused by train-model, in a loop
        raise ConfigError(
            f"key 'image_size': MNIST's records keep its {MNIST_SIZE}x{MNIST_SIZE} digits, got {config.image_size}; "
            f"leave --image-size at {MNIST_SIZE} (a child pipeline renders its own data at its own size)"
        )
    provenance: dict = {name: {"file": f"{name}.gz", "sha256": sha} for name, sha in RAW_FILES.items()}
    if config.pen_digits:
        provenance["pen_digits"] = {
            "per_class": config.pen_digits,
            "seed": config.seed,
            "forms": sha256_file(DIGIT_FORMS),
        }
        if config.handwriting_fonts:
            provenance["pen_digits"]["fonts"] = list(config.handwriting_fonts)
    existing = None if force else existing_records(config.records_url, provenance)
    if existing is not None:
        return existing
    hint = f"Set ${MIRROR_ENV} to a folder or URL holding the MNIST .gz files (offline machines: a local copy)."
    raw = {name: fetch(name, sha, mirrors(config), config.raw_dir, hint) for name, sha in RAW_FILES.items()}
    splits = {
        split: {"image": read_idx(raw[images]), "label": read_idx(raw[labels]).astype(np.int64)}
        for split, (images, labels) in SPLIT_FILES.items()
    }
    if config.pen_digits:
        images, labels = pen_digits(config)
        train = splits["train"]
        splits["train"] = {
            "image": np.concatenate([train["image"], images]),
            "label": np.concatenate([train["label"], labels]),
        }
    write_records(config.records_url, splits, name=config.pipeline, provenance=provenance)
    return Records.open(config.records_url)


def pen_digits(config: MnistConfig) -> tuple[np.ndarray, np.ndarray]:
    """``config.pen_digits`` digits per class, drawn with the page's pen and framed like it: uint8 images, labels.

    Deterministic by seed: each image has its own RNG, drawn from ``(seed, digit, i)``.
    """
    forms, fonts = read_forms(DIGIT_FORMS), find_fonts(config.handwriting_fonts)
    images, labels = [], []
    for digit in range(10):
        choices = forms[str(digit)]
        for i in range(config.pen_digits):
            rng = np.random.default_rng([config.seed, 100 + digit, i])
            form = choices[rng.integers(len(choices))]
            if fonts and rng.random() < FONT_SHARE:
                form = font_glyph(fonts[rng.integers(len(fonts))], str(digit)) or form
            images.append(draw_framed(hand(list(form), rng), rng, config.drawing))
            labels.append(digit)
    return np.stack(images), np.array(labels, dtype=np.int64)


CALIBRATION_PER_LABEL = 20  # of each case: 1,040 letters, 200 digits


def font_calibration(config: MnistConfig) -> InMemorySource:
    """Characters drawn from ``config.calibration_fonts``, which training never sees: other writers'
    hands, on which to fit the temperature so that confidence holds for people the data never met."""
    images, labels = font_characters(
        find_fonts(config.calibration_fonts), config.labels, CALIBRATION_PER_LABEL, config.drawing, config.seed
    )
    return InMemorySource({"image": torch.from_numpy(images), "label": torch.from_numpy(labels)}, 1024, shuffle=False)


def batch_inputs(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """A batch of uint8 record images (N,H,W) → the model's float input (N,1,H,W) in [0, 1], channels-last."""
    images = batch["image"]
    return images.unsqueeze(1).float().div_(255).contiguous(memory_format=torch.channels_last)


def load_split(config: MnistConfig, split: str, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's first ``limit`` examples (0: all) as uint8 images (N,1,H,W) and int64 labels (N,)."""
    columns = Records.open(config.records_url).load(split, limit=limit)
    return torch.from_numpy(columns["image"].copy()).unsqueeze(1), torch.from_numpy(columns["label"].astype(np.int64))
