"""The training loop's batch gather, as ``mnist.train.train_one_epoch`` does it, and the plain baseline.

Records are loaded once into memory as uint8 ``(N, 1, H, W)``; each step indexes a batch out of
them and converts it to float in [0, 1], channels-last. ``GATHER_FRAGMENTS`` are the pieces of
``train.py`` this mirrors: a test checks they are still there, so this benchmark cannot silently
drift from the code it claims to measure.
"""

from __future__ import annotations

import torch

GATHER_FRAGMENTS = (
    "images[batch]",
    ".float().div_(255).contiguous(memory_format=torch.channels_last)",
    "labels[batch]",
)


def our_gather(images: torch.Tensor, labels: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch from the uint8 images in memory (on the training device), as train.py builds it."""
    x = images[batch].float().div_(255).contiguous(memory_format=torch.channels_last)
    return x, labels[batch]


def plain_gather(images: torch.Tensor, labels: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: index a float32 tensor that already holds every image, ready to use."""
    return images[batch], labels[batch]


def batches(rows: int, batch_size: int, seed: int, drop_last: bool = True) -> list[torch.Tensor]:
    """One epoch's shuffled batches of row indices, seeded like train.py's."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    stop = rows - rows % batch_size if drop_last else rows
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]
