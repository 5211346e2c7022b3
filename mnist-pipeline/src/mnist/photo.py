"""A photo or scan of one handwritten character → the drawing the page's pad would have made of it.

The models learned characters drawn with the pad's round pen (``mnist.pen``), so a photographed
pencil letter is read best once it looks like one: paper and uneven light removed, the ink found
and cropped, its centre lines traced (``mnist.pen.centre_lines``) and drawn again with the pad's
pen at the pad's scale, then framed by ``frame_ink`` like every drawing the page sends.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mlpipes.errors import DataError

WORK_SIDE = 1024  # the photo's longer side while finding the ink (larger photos are shrunk first)
TRACE_SIDE = 128  # the ink's longer side while tracing its centre lines
LABEL_SIDE = 256  # the ink's pieces are told apart on a grid at most this many cells across
MAX_FAINT = 0.1  # a faint mask over more of the photo than this is texture, not strokes
BLOCKS = 24  # the paper's brightness is estimated on a grid this many blocks across


def frame_photo(image: np.ndarray, size: int = 28, box: int = 20, center: str = "mass") -> np.ndarray:
    """A grayscale photo ``(H, W)`` of one character (either polarity) → float32 ``(size, size)`` white on black.

    ``size``, ``box`` and ``center`` are ``frame_ink``'s (a model config's ``drawing``). A photo
    without ink gives a blank frame, as a blank drawing does.
    """
    from mnist.pen import CHAR_PX, PAD_SIZE, centre_lines, pad_image
    from mnist.preprocess import frame_ink

    ink = ink_strength(image)
    mask = keep_character(strokes_mask(ink))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return np.zeros((size, size), np.float32)
    crop = np.pad(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], 2).astype(np.float32)
    scale = TRACE_SIDE / max(crop.shape)
    shape = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    traced = np.asarray(Image.fromarray(crop).resize(shape, Image.Resampling.BOX)) > 0.2
    lines = centre_lines(traced)
    if not lines:
        return np.zeros((size, size), np.float32)
    points = np.concatenate(lines)
    low, high = points.min(0), points.max(0)
    to_pad = CHAR_PX / max(float((high - low).max()), 1.0)
    strokes = [(line - (low + high) / 2) * to_pad + PAD_SIZE / 2 for line in lines]
    return frame_ink(pad_image(strokes), size=size, box=box, center=center)


def ink_strength(image: np.ndarray) -> np.ndarray:
    """How much darker than the paper around it each pixel is, in [0, 1], smoothed.

    Which side the ink lies on is read after light and shadow are taken out (``local_level``): a dim
    photo of pencil and a screenshot of the pad's white-on-black both come out dark ink on paper.
    """
    x = np.asarray(image)
    if x.ndim != 2:
        raise DataError(f"photo of shape {x.shape}: expected one grayscale image (H, W)")
    if min(x.shape) < 8:
        raise DataError(f"photo of shape {x.shape}: at least 8×8 pixels needed to find the ink")
    x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    if max(x.shape) > WORK_SIDE:
        scale = WORK_SIDE / max(x.shape)
        size = (max(8, round(x.shape[1] * scale)), max(8, round(x.shape[0] * scale)))
        x = np.asarray(Image.fromarray(x).resize(size, Image.Resampling.BOX))
    residual = x - local_level(x, 50)  # light and shadow gone: ink is what stands out, on one side
    far = 0.5 * float(np.abs(np.percentile(residual, [0.1, 99.9])).max())
    if (residual > far).sum() > (residual < -far).sum():
        x = 1 - x
    ink = np.clip(local_level(x, 90) - x, 0, 1)
    return smooth(ink)


def local_level(x: np.ndarray, percentile: float) -> np.ndarray:
    """The image's level around each pixel: a percentile per block of a coarse grid, then the median of
    each block's 5×5 neighbourhood (a stroke wider than a block does not count, a slope is not biased),
    spread back over the pixels."""
    block = max(2, int(np.ceil(max(x.shape) / BLOCKS)))
    h, w = -(-x.shape[0] // block), -(-x.shape[1] // block)
    padded = np.pad(x, ((0, h * block - x.shape[0]), (0, w * block - x.shape[1])), mode="edge")
    grid = np.percentile(padded.reshape(h, block, w, block), percentile, axis=(1, 3))
    around = np.pad(grid, 2, mode="edge")
    grid = np.median([around[i : i + h, j : j + w] for i in range(5) for j in range(5)], axis=0).astype(np.float32)
    level = np.asarray(Image.fromarray(grid).resize((w * block, h * block), Image.Resampling.BILINEAR))
    return level[: x.shape[0], : x.shape[1]]


def smooth(x: np.ndarray) -> np.ndarray:
    """A 5-tap binomial blur (σ = 1 pixel) in each direction: pixel noise falls ~3×, a pen stroke stays."""
    taps = np.array([1, 4, 6, 4, 1], np.float32) / 16
    for axis in (0, 1):
        padded = np.pad(x, [(2, 2) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        n = x.shape[axis]
        x = sum(t * np.take(padded, range(k, k + n), axis=axis) for k, t in enumerate(taps))
    return x


def strokes_mask(ink: np.ndarray) -> np.ndarray:
    """The ink, by hysteresis: pixels clearly above the paper's noise (median + 6 robust σ, and a third
    of the darkest ink), grown along everything connected to them that is faintly above it (3 σ, a
    sixth), so a pencil line that fades keeps its faint stretches and grain alone stays paper.
    """
    middle = float(np.median(ink))
    sigma = 1.4826 * float(np.median(np.abs(ink - middle)))
    darkest = float(np.percentile(ink, 99.9))
    strong = drop_specks(ink > max(middle + 6 * sigma, darkest / 3, 0.04))
    faint = drop_specks(ink > max(middle + 3 * sigma, darkest / 6, 0.02)) | strong
    if faint.sum() > MAX_FAINT * faint.size:
        return strong
    keep = np.zeros_like(faint)
    for piece in connected_pieces(faint):
        if strong[piece[:, 0], piece[:, 1]].any():
            keep[piece[:, 0], piece[:, 1]] = True
    return keep


def drop_specks(mask: np.ndarray, window: int = 5, least: int = 5) -> np.ndarray:
    """Ink pixels with at least ``least`` ink pixels in their ``window``×``window`` neighbourhood.

    A pen stroke or an i's dot passes; grain and JPEG noise that cleared the threshold alone does not,
    so it cannot stretch the crop.
    """
    counts = np.pad(mask.astype(np.int32), window // 2).cumsum(0).cumsum(1)
    counts = np.pad(counts, ((1, 0), (1, 0)))
    near = counts[window:, window:] - counts[:-window, window:] - counts[window:, :-window] + counts[:-window, :-window]
    return mask & (near >= least)


def keep_character(mask: np.ndarray) -> np.ndarray:
    """The pieces of ink that make the character: the big ones and what lies near them (an i's dot).

    Pieces touching the photo's edge (a paper edge, the table, a neighbouring letter) are left out,
    unless nothing big is left without them: then the character itself runs off the photo.
    """
    cell = max(1, int(np.ceil(max(mask.shape) / LABEL_SIDE)))
    h, w = -(-mask.shape[0] // cell), -(-mask.shape[1] // cell)
    grid = np.pad(mask, ((0, h * cell - mask.shape[0]), (0, w * cell - mask.shape[1])))
    grid = grid.reshape(h, cell, w, cell).any(axis=(1, 3))
    pieces = connected_pieces(grid)
    if not pieces:
        return mask
    total = sum(len(p) for p in pieces)
    inner = [p for p in pieces if p.min() > 0 and p[:, 0].max() < h - 1 and p[:, 1].max() < w - 1]
    if any(len(p) >= 0.1 * total for p in inner):
        pieces, total = inner, sum(len(p) for p in inner)
    big = [p for p in pieces if len(p) >= 0.1 * total]
    low, high = np.min([p.min(0) for p in big], 0), np.max([p.max(0) for p in big], 0)
    reach = 0.6 * float((high - low).max() + 1)
    keep = np.zeros((h, w), bool)
    for p in pieces:
        if (p.min(0) >= low - reach).all() and (p.max(0) <= high + reach).all():
            keep[p[:, 0], p[:, 1]] = True
    keep = keep.repeat(cell, axis=0).repeat(cell, axis=1)[: mask.shape[0], : mask.shape[1]]
    return mask & keep


def connected_pieces(grid: np.ndarray) -> list[np.ndarray]:
    """The 8-connected pieces of a bool grid, each as an ``(n, 2)`` array of (row, column)."""
    todo = set(zip(*np.nonzero(grid)))
    pieces = []
    while todo:
        stack = [todo.pop()]
        piece = []
        while stack:
            r, c = stack.pop()
            piece.append((r, c))
            for q in ((r + i, c + j) for i in (-1, 0, 1) for j in (-1, 0, 1)):
                if q in todo:
                    todo.remove(q)
                    stack.append(q)
        pieces.append(np.array(piece))
    return pieces
