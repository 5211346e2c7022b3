"""Row about batch augmentation: what it costs next to the training step it feeds.

Both are timed in the same process, interleaved, on the same real MNIST batches of 128 with the
default config's model, AdamW and threads (all cores), so machine noise hits both alike; the
ratio is the number that matters.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from benchmarks.bench import Bench
from benchmarks.registry import Metric, Target, row
from benchmarks.timing import median, time_once
from mnist import MnistConfig
from mnist.augment import Augmentation, batch_seed
from mnist.dataset import load_split
from mnist.model import mnist_classifier

BATCH = 128
MONTAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "augmented_digits.png"


@row("augment", "augmentation of a batch of 128 digits vs one training step", "augmentation <= 25% of a step")
def augment(bench: Bench) -> list[Metric]:
    config = bench.config("augment")
    images, labels = load_split(config, "train", 20 * BATCH)
    model = mnist_classifier(config).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    augmentation = Augmentation()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    augment_s, step_s = [], []
    batches = bench.repeats(full=60, quick=20)
    for i in range(batches + 5):  # the first 5 warm up
        sl = slice((i % 20) * BATCH, (i % 20 + 1) * BATCH)
        x, y = images[sl].float().div_(255), labels[sl]
        seconds, x = time_once(lambda x=x, i=i: augmentation(x, batch_seed(0, 0, i)))
        step_seconds, _ = time_once(lambda x=x, y=y: step(x, y))
        if i >= 5:
            augment_s.append(seconds * 1000)
            step_s.append(step_seconds * 1000)
    ratio = [100 * a / s for a, s in zip(augment_s, step_s)]
    bench.details["threads"] = torch.get_num_threads()
    bench.details["augmentation"] = str(augmentation)
    return [
        Metric("augmentation, batch of 128", median(augment_s), "ms", None, augment_s),
        Metric("training step, batch of 128", median(step_s), "ms", None, step_s),
        Metric("augmentation / step", median(ratio), "%", Target("<=", 25), ratio),
    ]


def save_montage(images: torch.Tensor, path: Path = MONTAGE, variants: int = 9, seed: int = 0) -> Path:
    """A grid PNG: each row one digit, first column as MNIST has it, then ``variants`` augmentations."""
    from PIL import Image

    augmentation = Augmentation()
    x = images.float().div(255)
    columns = [x] + [augmentation(x, batch_seed(seed, 0, k)) for k in range(variants)]
    gap = torch.full((len(x), 1, x.shape[2], 2), 0.35)  # a grey line after the original
    tiles = torch.cat([columns[0], gap, *columns[1:]], dim=3)  # (N, 1, H, W * (variants + 1) + 2)
    grid = torch.cat(list(tiles[:, 0]), dim=0).mul(255).round().byte().numpy()
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(path)
    return path


def montage_of_mnist(config: MnistConfig, path: Path = MONTAGE) -> Path:
    """The docs' montage: the first test image of each digit and its augmentations.

    ``python -c "from benchmarks.rows.augment import *; montage_of_mnist(MnistConfig())"``
    """
    images, labels = load_split(config, "test", 200)
    picks = torch.cat([torch.nonzero(labels == d)[:1, 0] for d in range(10)])
    return save_montage(images[picks], path)
