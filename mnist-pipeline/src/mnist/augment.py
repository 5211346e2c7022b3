"""Batch augmentation: make MNIST digits look like the ones people draw on the page's pad.

People write at a slant, rotate, squash or stretch a digit, wobble, and use pens of other
widths than MNIST's. One call augments a whole batch with batched tensor ops, no per-image
Python: one random affine (rotation, slant, scale per axis, translation) and a smooth elastic
displacement field are folded into a single sampling grid (``grid_sample``), then the pen width
changes by blending each image with its grey dilation or erosion (3×3 max/min pooling).

Every random number is drawn on the CPU from the ``torch.Generator`` (or integer seed) passed
in, so a batch's augmentation is the same on any device, and a recipe that seeds each batch
with :func:`batch_seed` resumes mid-epoch and trains data-parallel reproducibly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import torch
import torch.nn.functional as F

from mlpipes.errors import ConfigError

CONFIG_PREFIX = "augment_"


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Strengths of each random change; 0 switches that change off. Call it on a batch.

    Defaults suit 28-pixel digits framed like MNIST (20-pixel box): changes a person's drawing
    shows after the page's framing, not so strong that a 1 becomes a 7 or a 6 a 0.
    """

    rotation: float = 12.0  # degrees, uniform in ±rotation
    shear: float = 0.25  # horizontal slant (tan of the angle), uniform in ±shear
    scale: float = 0.15  # each axis scaled by exp(u), u uniform in ±log(1 + scale): aspect varies too
    translate: float = 0.06  # shift, uniform in ±translate × image size, per axis
    elastic: float = 1.0  # std of the smooth displacement field, in pixels
    elastic_grid: int = 4  # control points per side of the displacement field (its smoothness)
    thickness: float = 0.5  # pen width: blend towards dilation (>0) or erosion (<0), uniform in ±thickness

    def __post_init__(self) -> None:
        """Refuse a strength that makes no sense, naming it as the config key it comes from."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"key '{CONFIG_PREFIX}{field.name}': must be finite and >= 0, got {value}")
        if self.elastic_grid < 2:
            raise ConfigError(
                f"key '{CONFIG_PREFIX}elastic_grid': needs at least 2 control points, got {self.elastic_grid}"
            )
        if self.thickness > 1:
            raise ConfigError(f"key '{CONFIG_PREFIX}thickness': a blend weight in [0, 1], got {self.thickness}")

    @classmethod
    def from_config(cls, config: Any) -> Augmentation:
        """The strengths a config sets as ``augment_<name>`` fields (others keep their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        found = {name: getattr(config, CONFIG_PREFIX + name) for name in names if hasattr(config, CONFIG_PREFIX + name)}
        return cls(**found)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Float images ``(N, 1, H, W)`` in [0, 1], white ink on black → augmented copies, same shape and device."""
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(f"augment: expected float images (N, C, H, W), got {tuple(images.shape)} {images.dtype}")
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        n, _, h, w = images.shape
        if n == 0:
            return images
        grid = self.sampling_grid(n, h, w, generator).to(images.device, images.dtype)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.thickness > 0:
            out = self.pen_width(out, generator)
        return out.clamp_(0, 1)

    def sampling_grid(self, n: int, h: int, w: int, generator: torch.Generator | None) -> torch.Tensor:
        """Where each output pixel samples its input, ``(N, H, W, 2)`` in grid_sample's [-1, 1] coordinates."""
        u = torch.rand(n, 6, generator=generator, dtype=torch.float64) * 2 - 1  # uniform in [-1, 1)
        angle = u[:, 0] * math.radians(self.rotation)
        shear = u[:, 1] * self.shear
        log_scale = math.log1p(self.scale)
        sx, sy = torch.exp(u[:, 2] * log_scale), torch.exp(u[:, 3] * log_scale)
        tx, ty = u[:, 4] * 2 * self.translate, u[:, 5] * 2 * self.translate  # [-1, 1] spans the image: 2 units
        # Output -> input map: the inverse of "scale, then slant, then rotate", written out per
        # entry (broadcast over the pixel grid; affine_grid's batched matmul is slower on CPU).
        # Sampling a region 1/s as large enlarges the digit by s, so s and 1/s are equally likely.
        cos, sin = torch.cos(angle), torch.sin(angle)
        a = torch.stack([(cos - shear * sin) / sx, (sin + shear * cos) / sx, -sin / sy, cos / sy, tx, ty], -1).float()
        a = a.view(n, 6, 1, 1)
        ys, xs = _pixel_centres(h, w)
        grid = torch.stack([a[:, 0] * xs + a[:, 1] * ys + a[:, 4], a[:, 2] * xs + a[:, 3] * ys + a[:, 5]], -1)
        if self.elastic > 0:
            g = self.elastic_grid
            control = torch.randn(n * 2, g * g, generator=generator) * self.elastic
            # A smooth field: cubic interpolation of g×g control points, one matrix product.
            field = (control @ _cubic_basis(g, h, w)).view(n, 2, h, w)
            grid += field.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h])  # pixels -> grid units
        return grid

    def pen_width(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Thicker or thinner strokes: blend each image with its 3×3 grey dilation or erosion."""
        weight = (torch.rand(len(images), generator=generator) * 2 - 1) * self.thickness
        weight = weight.to(images.device, images.dtype).view(-1, 1, 1, 1)
        target = torch.where(weight > 0, _extreme3x3(images, torch.maximum), _extreme3x3(images, torch.minimum))
        return torch.lerp(images, target, weight.abs())


def _extreme3x3(images: torch.Tensor, pick) -> torch.Tensor:
    """3×3 grey dilation (``torch.maximum``) or erosion (``torch.minimum``) as separable shifts.

    Same result as ``max_pool2d(x, 3, stride=1, padding=1)``, but stride-1 pooling is slow on
    CPU (~7 ms for a batch of 128 digits); four element-wise ops take a fraction of that.
    """
    fill = 0.0 if pick is torch.maximum else 1.0  # outside the image: never picked
    x = F.pad(images, (1, 1, 1, 1), value=fill)
    rows = pick(pick(x[..., :-2], x[..., 1:-1]), x[..., 2:])
    return pick(pick(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


@functools.lru_cache(maxsize=16)
def _pixel_centres(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres in grid_sample's coordinates (align_corners=False), as (1, H, 1) and (1, 1, W)."""
    ys = (torch.arange(h) * 2 + 1) / h - 1
    xs = (torch.arange(w) * 2 + 1) / w - 1
    return ys.view(1, h, 1), xs.view(1, 1, w)


@functools.lru_cache(maxsize=16)
def _cubic_basis(points: int, h: int, w: int) -> torch.Tensor:
    """(points², H·W) weights: bicubic interpolation of a points×points grid over an H×W image."""
    eye = torch.eye(points * points).view(points * points, 1, points, points)
    return F.interpolate(eye, size=(h, w), mode="bicubic", align_corners=True).view(points * points, h * w)


def batch_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """A seed for one batch's augmentation, unique per (seed, epoch, step, rank) and stable across runs.

    Seeding each batch on its own, instead of drawing from one generator for the whole run, makes
    a resumed run augment the remaining batches exactly as the uninterrupted run would have.
    """
    return (((seed * 1_000_003 + epoch) * 1_000_003 + step) * 1_009 + rank) & (2**63 - 1)
