"""The training loop's batch gather, as ``mlpipes.training.InMemorySource`` and mnist's
``batch_inputs`` do it, and the plain baseline.

Records are loaded once into memory as uint8 ``(N, 1, H, W)``; each step indexes a batch out of
them and converts it to float in [0, 1], channels-last. ``GATHER_FRAGMENTS`` are the pieces of
``training.py`` this mirrors: a test checks they are still there, so this benchmark cannot
silently drift from the code it claims to measure.
"""

from __future__ import annotations

import torch

GATHER_FRAGMENTS = ("{name: column[index] for name, column in self.columns.items()}",)


def our_gather(images: torch.Tensor, labels: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch from the uint8 images in memory (on the training device), as the trainer builds it."""
    from mnist.dataset import batch_inputs

    columns = {"image": images[:, 0], "label": labels}
    picked = {name: column[batch] for name, column in columns.items()}  # InMemorySource.batches
    return batch_inputs(picked), picked["label"]


def plain_gather(images: torch.Tensor, labels: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: index a float32 tensor that already holds every image, ready to use."""
    return images[batch], labels[batch]


def batches(rows: int, batch_size: int, seed: int, drop_last: bool = True) -> list[torch.Tensor]:
    """One epoch's shuffled batches of row indices, seeded like train.py's."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    stop = rows - rows % batch_size if drop_last else rows
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]
