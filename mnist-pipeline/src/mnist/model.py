"""The MNIST model: a convolutional feature extractor, then a small classifier head.

``mnist_features`` is fully convolutional, so it takes any image of 28 pixels or more and can
be reused by other pipelines (the letter pipeline starts from it). The head pools the feature
maps to one vector and maps it to class logits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mnist.config import MnistConfig
from mnist.preprocess import preprocess_images
from mnist.weights import load_parent_features, load_pretrained


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


class Classifier(nn.Module):
    """Features + head, with ``predict`` for inference on raw images."""

    def __init__(self, features: nn.Sequential, num_features: int, labels: tuple[str, ...]):
        super().__init__()
        self.labels = labels
        self.features = features
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(num_features, len(labels)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (N,1,H,W) in [0, 1] → class logits (N, classes)."""
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor, invert: bool | None = None) -> np.ndarray:
        """Raw images (any layout of ``preprocess_images``) → float32 (N, classes) probabilities."""
        self.eval()
        device = next(self.parameters()).device
        x = preprocess_images(images, invert=invert).to(device)
        return torch.softmax(self(x), dim=1).float().cpu().numpy()


def mnist_classifier(
    config: MnistConfig | None = None, pretrained: bool | str = False, version: str | None = None
) -> Classifier:
    """The classifier the config describes (labels, channels).

    ``pretrained=True`` loads the weights shipped with the config's package (a version it does
    not ship comes from the configured registry), a registry URL
    (``s3://bucket/models``) pulls ``version`` (default: ``config.model_version``, the one the
    package pins) into the local cache, a path loads that manifest's weights; otherwise
    ``config.pretrained_features`` may seed the feature extractor.
    """
    config = config or MnistConfig()
    model = Classifier(mnist_features(config.channels), config.channels[-1], config.labels)
    if pretrained:
        model.load_state_dict(load_pretrained(config, pretrained, role="classifier", version=version))
        model.eval()
    elif config.pretrained_features:
        model.features.load_state_dict(load_parent_features(config)[0])
    return model
