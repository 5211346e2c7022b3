"""The MNIST model: a convolutional feature extractor, then a small classifier head.

``mnist_features`` is fully convolutional, so it takes any image of 28 pixels or more and can
be reused by other pipelines (the letter pipeline starts from it). The head averages the feature
maps over a small grid (3×3 overlapping cells of a 28-pixel digit's 7×7 maps) and maps that to
class logits, so it knows *where* a stroke is: a flat-topped 3 and a 5 differ in which end of the
bar the stroke below it leaves from.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from mlpipes.resolve import fit_parent_weights, locate, parent_weights
from mlpipes.weights import load_weights, read_manifest
from mnist.config import MnistConfig
from mnist.preprocess import preprocess_images

ARCHITECTURE = ("channels", "head_grid")  # the config fields that shape the weights


def conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def mnist_features(channels: tuple[int, ...] = (16, 32, 64, 64)) -> nn.Sequential:
    """Conv blocks, halving the resolution after each of the first two: (N,1,H,W) → (N,C,H/4,W/4)."""
    layers: list[nn.Module] = []
    in_channels = 1
    for i, out_channels in enumerate(channels):
        layers += conv_block(in_channels, out_channels)
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        in_channels = out_channels
    return nn.Sequential(*layers)


@functools.cache
def uniform_windows(size: int, cells: int) -> tuple[int, int] | None:
    """(kernel, stride) when adaptive pooling of ``size`` into ``cells`` uses equal, evenly spaced
    windows (7 into 3: 3 wide, every 2), else None (also when cells outnumber positions)."""
    if cells > size:
        return None
    starts = [i * size // cells for i in range(cells)]
    ends = [((i + 1) * size + cells - 1) // cells for i in range(cells)]
    kernel = ends[0] - starts[0]
    stride = starts[1] - starts[0] if cells > 1 else size
    if all(end - start == kernel for start, end in zip(starts, ends)) and starts == [i * stride for i in range(cells)]:
        return kernel, stride
    return None


class GridPool(nn.Module):
    """Average feature maps over a ``grid``×``grid`` grid, as adaptive average pooling does.

    Maps already that size pass as they are, and evenly spaced windows run as a plain average pool,
    so an exported graph holds one cheap op or none (7×7 maps into 3×3 cells: 3-wide windows every 2).
    """

    def __init__(self, grid: int):
        super().__init__()
        self.grid = grid

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if maps.shape[-2:] == (self.grid, self.grid):
            return maps
        rows, columns = (uniform_windows(size, self.grid) for size in maps.shape[-2:])
        if rows and columns:
            return nn.functional.avg_pool2d(maps, (rows[0], columns[0]), (rows[1], columns[1]))
        return nn.functional.adaptive_avg_pool2d(maps, self.grid)


class Classifier(nn.Module):
    """Features + head, with ``predict`` for inference on raw images.

    ``temperature`` (fitted after training, stored in the manifest) divides the logits in
    ``predict`` so its probabilities are calibrated; ``forward`` returns the raw logits.
    """

    def __init__(self, features: nn.Sequential, num_features: int, labels: tuple[str, ...], grid: int = 1):
        super().__init__()
        self.labels = labels
        self.temperature = 1.0
        self.frozen_features = False
        self.features = features
        self.head = nn.Sequential(
            GridPool(grid), nn.Flatten(), nn.Linear(num_features * grid * grid, len(labels))
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (N,1,H,W) in [0, 1] → class logits (N, classes)."""
        return self.head(self.features(images))

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.frozen_features:
            self.features.eval()  # keep the transferred batch-norm statistics
        return self

    def freeze_features(self) -> list[nn.Parameter]:
        """Train only the head from now on; returns the parameters left to train."""
        self.frozen_features = True
        self.features.requires_grad_(False)
        return list(self.head.parameters())

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor, invert: bool | None = None) -> np.ndarray:
        """Raw images (any layout of ``preprocess_images``) → float32 (N, classes) probabilities."""
        self.eval()
        x = preprocess_images(images, invert=invert).to(next(self.parameters()).device)
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        return torch.softmax(self(x).float() / self.temperature, dim=1).cpu().numpy()  # fp32 even under bf16 autocast


def mnist_classifier(
    config: MnistConfig | None = None, pretrained: bool | str = False, version: str | None = None
) -> Classifier:
    """The classifier the config describes (labels, channels, head grid).

    ``pretrained=True`` loads the weights shipped with the config's package (a version it does
    not ship comes from the configured registry), a registry URL (``s3://bucket/models``) pulls
    ``version`` (default: the bundled version) into the local cache, a path loads that manifest's
    weights; otherwise ``config.pretrained_features`` may seed the feature extractor with MNIST's.
    Weights bring their own channels and head grid (their manifest's config), whatever ``config`` says.
    """
    config = config or MnistConfig()
    manifest_path = locate(config, pretrained, version).manifest if pretrained else None
    if manifest_path:
        config = trained_architecture(config, read_manifest(manifest_path))
    model = Classifier(mnist_features(config.channels), config.channels[-1], config.labels, config.head_grid)
    if manifest_path:
        manifest = load_weights(model, manifest_path, "classifier", config.labels)
        model.temperature = float(manifest.get("meta", {}).get("temperature", 1.0))
        model.eval()
    elif config.pretrained_features:
        fit_parent_weights(model.features, *mnist_parent_features(config))
    return model


def trained_architecture(config: MnistConfig, manifest: dict) -> MnistConfig:
    """``config`` with the channels and head grid the manifest's weights were trained with: weights
    carry their architecture, so a version trained with another head loads under any config."""
    saved = manifest.get("config", {})
    if saved and "head_grid" not in saved:  # written before the field existed (MNIST ≤ 1.3.0, letters ≤ 1.5.0)
        saved = {**saved, "head_grid": 1}
    return config.replace(**{key: saved[key] for key in ARCHITECTURE if key in saved})


def mnist_parent_features(config: MnistConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """MNIST's published feature weights named by ``config.pretrained_features``, and their lineage.

    ``True`` means the features bundled with the ``mnist`` package, whichever pipeline asks (the
    letter pipeline transfers them); a registry URL pulls MNIST's bundled version from it.
    """
    return parent_weights(MnistConfig(registry=config.registry), config.pretrained_features, "features")
