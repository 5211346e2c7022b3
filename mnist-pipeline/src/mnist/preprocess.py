"""Turn user images and labels into the tensors the model trains and predicts on.

The same functions serve training and inference, so a model never sees data prepared two ways.
Images become float32 ``(N, 1, H, W)`` in [0, 1], white ink on black like MNIST.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlpipes.errors import DataError

MIN_SIZE = 28


@functools.cache
def border_weights(height: int, width: int) -> np.ndarray:
    """Flattened weights that average an image's outermost pixels (one matrix-vector product)."""
    mask = np.zeros((height, width), np.float32)
    mask[[0, -1], :] = mask[:, [0, -1]] = 1
    return mask.ravel() / mask.sum()


def preprocess_images(
    images: np.ndarray | torch.Tensor, invert: bool | None = None, min_size: int = MIN_SIZE
) -> torch.Tensor:
    """Images → float32 tensor ``(N, 1, H, W)`` in [0, 1].

    Accepts numpy or torch; uint8 0–255 or float 0–1; shapes (H, W), (N, H, W), (N, H, W, 1)
    channels-last as in Keras, or (N, 1, H, W). ``invert=None`` flips dark-on-white images
    (judged by their border) to MNIST's white-on-black; True/False forces it for all.
    """
    return torch.from_numpy(preprocess_array(images, invert, min_size))


def preprocess_array(
    images: np.ndarray | torch.Tensor, invert: bool | None = None, min_size: int = MIN_SIZE
) -> np.ndarray:
    """:func:`preprocess_images` as a NumPy array: what ONNX Runtime takes, with no torch round trip.

    The work is done in numpy: for one small image that is several times faster than torch ops,
    which matters when the model itself (on ONNX Runtime) takes tens of microseconds.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        x = (images.float() if images.dtype == torch.bfloat16 else images).numpy()
    else:
        try:
            x = np.asarray(images)
        except (ValueError, TypeError) as e:  # ragged nested lists
            raise DataError(f"images are not one rectangular array ({str(e)[:120]})") from None
    shape = x.shape
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] == 1:
        pass
    elif x.ndim == 4 and x.shape[-1] == 1:
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"images of shape {shape}: expected (H,W), (N,H,W), (N,H,W,1) or (N,1,H,W) with one channel")
    if x.shape[-1] < min_size or x.shape[-2] < min_size:
        raise DataError(f"images of shape {shape}: height and width must be at least {min_size} pixels")
    x = np.divide(x, np.float32(255), dtype=np.float32) if x.dtype == np.uint8 else _as_unit_float(x, shape)
    if invert is None:
        pixels = x.reshape(len(x), x.shape[-2] * x.shape[-1])  # not -1: an empty batch has no size to infer
        flip = pixels @ border_weights(*x.shape[-2:]) > 0.5  # mean of each image's border
        if flip.any():
            x = np.where(flip[:, None, None, None], 1 - x, x)
    elif invert:
        x = 1 - x
    return np.ascontiguousarray(x)


def _as_unit_float(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Non-uint8 images → float32 in [0, 1]: floats as they are, integers 0–255 scaled; else one line why not."""
    if x.dtype.kind in "iu":
        low, high = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if low < 0 or high > 255:
            raise DataError(f"images of shape {shape}, dtype {x.dtype}: values in [{low}, {high}], expected 0-255")
        return x.astype(np.float32) / np.float32(255)
    if x.dtype.kind != "f":
        raise DataError(f"images of shape {shape}, dtype {x.dtype}: expected uint8 (0-255) or float (0-1)")
    x = x.astype(np.float32)
    if x.size and not np.isfinite(x).all():
        raise DataError(f"images of shape {shape}: contain NaN or infinity")
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if low < 0 or high > 1:
        raise DataError(
            f"images of shape {shape}: float values must lie in [0, 1], got [{low:.3g}, {high:.3g}]; "
            "divide 0-255 values by 255 or pass uint8"
        )
    return x


def preprocess_labels(labels: np.ndarray | torch.Tensor | list[int], num_classes: int) -> torch.Tensor:
    """Class indices → int64 tensor ``(N,)``, each in ``[0, num_classes)``."""
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 1:
        raise DataError(f"labels of shape {tuple(y.shape)}: expected one dimension (N,)")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise DataError(f"labels of dtype {y.dtype}: expected integers")
    y = y.long()
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}), got [{y.min().item()}, {y.max().item()}]")
    return y


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix averaging the input pixels each output pixel covers (box filter).

    Output pixel ``i`` covers input interval ``[i*s, (i+1)*s)`` with ``s = n_in / n_out``; each
    input pixel counts by its overlap. Resizing is ``Wy @ image @ Wx.T``; the web app's
    ``preprocess.js`` computes the same weights, so browser and Python agree to float rounding.
    """
    scale = n_in / n_out
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
            weights[i, j] = (min(hi, j + 1) - max(lo, j)) / scale
    return weights


def frame_ink(image: np.ndarray, size: int = 28, box: int = 20, center: str = "mass") -> np.ndarray:
    """A drawing (H, W) white on black → float32 (size, size) framed like the training data.

    Crop to the ink, scale (area average, aspect kept) so the longer side is ``box`` pixels,
    then place it in a ``size``×``size`` black frame: ``center="mass"`` puts its centre of mass
    at the frame's centre (MNIST's recipe: 20 px box in 28 px), ``"box"`` centres its bounding
    box. A blank drawing gives a blank frame. Mirrors ``frameInk`` in the web app's preprocess.js.
    """
    x = np.asarray(image)
    if x.ndim != 2:
        raise DataError(f"drawing of shape {x.shape}: expected one grayscale image (H, W)")
    if not 0 < box <= size:
        raise DataError(f"box {box} must lie in (0, size={size}]")
    x = x.astype(np.float64) / 255 if x.dtype == np.uint8 else x.astype(np.float64)
    out = np.zeros((size, size), dtype=np.float32)
    rows, cols = np.flatnonzero(x.max(axis=1) > 0), np.flatnonzero(x.max(axis=0) > 0)
    if not len(rows):
        return out
    crop = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    nh, nw = max(1, int(np.floor(h * scale + 0.5))), max(1, int(np.floor(w * scale + 0.5)))
    small = np.clip(area_weights(h, nh) @ crop @ area_weights(w, nw).T, 0, 1)
    if center == "mass":
        total = small.sum()
        cy = (small.sum(axis=1) * (np.arange(nh) + 0.5)).sum() / total
        cx = (small.sum(axis=0) * (np.arange(nw) + 0.5)).sum() / total
        top, left = int(np.floor(size / 2 - cy + 0.5)), int(np.floor(size / 2 - cx + 0.5))
    elif center == "box":
        top, left = (size - nh) // 2, (size - nw) // 2
    else:
        raise DataError(f"center={center!r}: expected 'mass' or 'box'")
    top, left = min(max(top, 0), size - nh), min(max(left, 0), size - nw)
    out[top : top + nh, left : left + nw] = small
    return out


def read_image(path: Path, config: Any) -> np.ndarray:
    """An image file or a .npy array, for ``predict``.

    An image of exactly the model's input size is taken as prepared like the training data; any
    other (a photo, a scan, a screenshot of the pad) is one character to frame as the page frames a
    drawing (``mnist.photo.frame_photo`` with ``config.drawing``). Decoding, budgets and one-line
    refusals are ``mlpipes.images``': pixel counts checked before decoding, transparency and 16-bit
    scans read as they look, ``.npy`` never unpickled.
    """
    from mlpipes.images import read_array_file, read_image_file

    if Path(path).suffix.lower() == ".npy":
        return read_array_file(path)
    gray = read_image_file(path)
    if gray.shape == (config.image_size, config.image_size):
        return gray
    from mnist.photo import frame_photo

    return frame_photo(gray, **config.drawing)
