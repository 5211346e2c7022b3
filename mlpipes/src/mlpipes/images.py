"""Decode untrusted image files into grayscale uint8 arrays, with budgets checked before decoding.

A 1 KB PNG can declare 8000×8000 pixels, so the pixel count is read from the header (Pillow's
``Image.open`` is lazy) and refused over budget before a single row is decoded. Whatever the
file's mode, the result is what a person sees: transparency is composited over a background
that keeps the ink visible, 16-bit and float images are scaled to 0–255 (not clipped to white),
CMYK and palettes go through RGB. Every failure is one :class:`DataError` line naming the file.

Budgets (raise them through the environment): ``MLPIPES_MAX_IMAGE_PIXELS`` (default 4096×4096),
``MLPIPES_MAX_IMAGE_BYTES`` (default 64 MiB) and, for ``.npy`` arrays, ``MLPIPES_MAX_ARRAY_BYTES`` (1 GiB).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlpipes.budgets import budget, over_budget, shown
from mlpipes.errors import DataError

PIXELS_ENV = "MLPIPES_MAX_IMAGE_PIXELS"
BYTES_ENV = "MLPIPES_MAX_IMAGE_BYTES"
DEFAULT_PIXELS = 4096 * 4096
DEFAULT_BYTES = 64 << 20
ARRAY_BYTES_ENV = "MLPIPES_MAX_ARRAY_BYTES"
DEFAULT_ARRAY_BYTES = 1 << 30  # .npy data is not compressed: the budget only bounds memory
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")


def max_pixels() -> int:
    return budget(PIXELS_ENV, DEFAULT_PIXELS)


def max_bytes() -> int:
    return budget(BYTES_ENV, DEFAULT_BYTES)


def decode_image(data: bytes, name: str, *, max_pixels: int | None = None, max_bytes: int | None = None) -> np.ndarray:
    """Image file bytes → grayscale uint8 ``(H, W)``; ``name`` is what errors call the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    pixel_limit = max_pixels or budget(PIXELS_ENV, DEFAULT_PIXELS)
    byte_limit = max_bytes or budget(BYTES_ENV, DEFAULT_BYTES)
    name = shown(name, 400)
    if len(data) > byte_limit:
        raise over_budget(name, "file size in bytes", len(data), byte_limit, BYTES_ENV)
    if not data:
        raise DataError(f"{name}: empty file (0 bytes), not an image")
    if Image.MAX_IMAGE_PIXELS is not None and pixel_limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = pixel_limit  # Pillow's own bomb check must not undercut a budget the user raised
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > pixel_limit:
                    raise over_budget(
                        name, f"image of {width}×{height} pixels:", width * height, pixel_limit, PIXELS_ENV
                    )
                if not width or not height:
                    raise DataError(f"{name}: empty image ({width}×{height} pixels)")
                image.load()
                image = ImageOps.exif_transpose(image)  # photos: the orientation the camera recorded
                return to_gray(image, name)
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise DataError(f"{name}: over Pillow's pixel limit; raise ${PIXELS_ENV} if this is intended") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (expected one of {', '.join(FORMATS)})") from None
    except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, EOFError... on hostile bytes
        raise DataError(f"{name}: not a readable image ({type(e).__name__}: {shown(e, 120)})") from None


def to_gray(image: Any, name: str) -> np.ndarray:
    """A loaded Pillow image → uint8 ``(H, W)`` as it looks, whatever its mode."""
    mode = image.mode
    if mode.startswith("I;16"):
        return _scaled(np.asarray(image).astype(np.float32) / 257)
    if mode == "I":
        values = np.asarray(image)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > 65535:
            raise DataError(f"{name}: 32-bit integer image with values in [{low}, {high}]; expected 16-bit 0-65535")
        return _scaled(values.astype(np.float32) / 257)
    if mode == "F":
        values = np.asarray(image, np.float32)
        if not np.isfinite(values).all():
            raise DataError(f"{name}: float image contains NaN or infinity")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 255:
            raise DataError(f"{name}: float image with values in [{low:.3g}, {high:.3g}]; expected 0-1 or 0-255")
        return _scaled(values * 255 if high <= 1 else values)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return _composite(np.asarray(rgba.convert("L"), np.float32), np.asarray(rgba.getchannel("A"), np.float32))
    if mode in ("L", "1", "RGB", "P", "CMYK", "YCbCr", "HSV"):
        return np.asarray(image.convert("L") if mode in ("L", "1", "RGB", "P") else image.convert("RGB").convert("L"))
    raise DataError(f"{name}: image mode {mode} is not supported; save it as 8-bit grayscale or RGB PNG")


def _scaled(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _composite(luma: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten transparency over the background that contrasts with the ink.

    Drawings are often ink on a transparent canvas: black ink over black would vanish, white
    ink over white too. The ink is what is opaque, so its mean brightness (weighted by alpha)
    picks the background: white behind dark ink, black behind light ink. The pipeline's
    preprocessing then turns dark-on-white into MNIST's white-on-black as it does for scans.
    """
    alpha = alpha / 255
    weight = float(alpha.sum())
    if weight == 0:
        return np.zeros(alpha.shape, np.uint8)  # fully transparent: nothing drawn
    background = 255.0 if float((luma * alpha).sum()) / weight < 128 else 0.0
    return _scaled(luma * alpha + background * (1 - alpha))


def read_image_file(
    path: str | os.PathLike, *, max_pixels: int | None = None, max_bytes: int | None = None
) -> np.ndarray:
    """An image file → grayscale uint8 ``(H, W)``; the size is checked before the file is read."""
    path = Path(path)
    byte_limit = max_bytes or budget(BYTES_ENV, DEFAULT_BYTES)
    data = _read_bounded(path, byte_limit)
    return decode_image(data, str(path), max_pixels=max_pixels, max_bytes=byte_limit)


def read_array_file(path: str | os.PathLike, *, max_bytes: int | None = None) -> np.ndarray:
    """A ``.npy`` file → its array: never unpickled; its header (dtype × shape) must match the file's
    size before anything is allocated. Budget: ``MLPIPES_MAX_ARRAY_BYTES`` (default 1 GiB)."""
    path = Path(path)
    name = shown(path)
    byte_limit = max_bytes or budget(ARRAY_BYTES_ENV, DEFAULT_ARRAY_BYTES)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > byte_limit:
                raise over_budget(name, "file size in bytes", size, byte_limit, ARRAY_BYTES_ENV)
            try:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in read_header:
                    raise ValueError(f"format version {version}")
                shape, fortran, dtype = read_header[version](f)
            except Exception as e:
                raise DataError(f"{name}: not a readable .npy array ({type(e).__name__}: {shown(e, 120)})") from None
            if dtype.hasobject:
                raise DataError(f"{name}: holds Python objects (pickle), which are never loaded; save a numeric array")
            count = math.prod(shape)
            expected, held = count * dtype.itemsize, size - f.tell()
            if expected != held:
                raise DataError(
                    f"{name}: its header promises {expected:,} bytes ({dtype} {shape}), the file holds {held:,}"
                )
            array = np.fromfile(f, dtype, count) if count else np.empty(0, dtype)
    except IsADirectoryError:
        raise DataError(f"{name}: is a folder, not a file") from None
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot be read ({e.strerror or type(e).__name__})") from None
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_bounded(path: Path, limit: int) -> bytes:
    name = shown(path)
    try:
        if path.is_dir():
            raise DataError(f"{name}: is a folder, not a file")
        size = path.stat().st_size
        if size > limit:
            raise over_budget(name, "file size in bytes", size, limit, BYTES_ENV)
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot be read ({e.strerror or type(e).__name__})") from None
    if len(data) > limit:  # grew while we read it, or a device that reports size 0
        raise over_budget(name, "file size in bytes", len(data), limit, BYTES_ENV)
    return data
