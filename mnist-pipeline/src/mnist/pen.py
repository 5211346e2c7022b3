"""Pen strokes as the web page's pad draws them, and the small geometry a hand's variation needs.

The page's pad is 280 px with a 20 px round pen; people's characters span about 200 px of it.
:func:`pad_image` draws strokes exactly so (the letter generator draws with it, and the
real-handwriting benchmark replays people's strokes through it), and ``preprocess.frame_ink``
then frames the drawing like the training data. The rest reads a table of hand-written forms
(control points → smooth Catmull-Rom strokes) and varies a form as one writer's hand differs from
another's (:func:`hand`), so any pipeline can generate pen-drawn characters: the digits mixed into
MNIST's training split, and the letters of the letter pipeline.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mlpipes.errors import DataError
from mnist.preprocess import frame_ink

PAD_SIZE = 280  # the web page's pad, pixels
PEN_PX = 20  # its pen diameter
CHAR_PX = 200  # the longer side of a character drawn on it, as the real-handwriting set scales them
HAND_SIDES = (130.0, 215.0)  # a generated character's longer side on the pad, pixels (uniform)
HAND_PENS = (16.0, 24.0)  # its pen diameter, pixels (uniform)
FONT_SHARE = 0.3  # of generated characters drawn from a handwriting font, when a config names some
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts")


def pad_image(strokes, size: int = PAD_SIZE, pen: float = PEN_PX, supersample: int = 4) -> np.ndarray:
    """Strokes (lists of ``(x, y)`` pad pixels, y down) drawn like the web pad: uint8 ``(size, size)``.

    White on black, a round pen of diameter ``pen`` (round caps and joins: a disc at every point,
    which also covers what PIL's ``joint="curve"`` would add, at a fraction of its cost), antialiased
    by drawing ``supersample`` times larger and box-averaging down. The real-handwriting benchmark
    replays its samples through this same function, so what the generator imitates is exactly
    what is measured.
    """
    big = Image.new("L", (size * supersample, size * supersample), 0)
    draw, width = ImageDraw.Draw(big), max(1, round(pen * supersample))
    r = pen * supersample / 2
    for stroke in strokes:
        p = [(float(x) * supersample, float(y) * supersample) for x, y in stroke]
        if len(p) > 1:
            draw.line(p, fill=255, width=width)
        for x, y in p:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(big.resize((size, size), Image.BOX))


def parse_stroke(spec: str, samples: int = 8) -> np.ndarray:
    """One stroke string of the form table → an ``(N, 2)`` polyline through its points."""
    points, corners = [], []
    for token in spec.split():
        corners.append(token.endswith("*"))
        points.append([float(v) for v in token.rstrip("*").split(",")])
    if len(points) == 1:
        return np.array(points)
    pieces, start = [], 0
    for i in range(1, len(points)):
        if corners[i] or i == len(points) - 1:
            pieces.append(catmull_rom(np.array(points[start : i + 1]), samples))
            start = i
    return np.concatenate([pieces[0]] + [p[1:] for p in pieces[1:]])


def catmull_rom(p: np.ndarray, samples: int) -> np.ndarray:
    """A smooth curve through the points ``p`` (a straight line for two), ``samples`` per segment."""
    if len(p) == 2:
        return p
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.concatenate([*out, p[-1:]])


def resample(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along the polyline (ends kept), so bending bends straight lines too."""
    if len(stroke) < 2:
        return stroke
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    arc = np.concatenate([[0], np.cumsum(seg)])
    if arc[-1] == 0:
        return stroke[:1]
    n = max(2, math.ceil(arc[-1] / step) + 1)
    at = np.linspace(0, arc[-1], n)
    return np.stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])], axis=1)


def smooth_field(rng: np.random.Generator, amplitude: float, waves: int = 3):
    """A random smooth displacement field over the unit square: a sum of a few plane waves."""
    k = rng.normal(0, 1.0, (waves, 2, 2)) * 2 * math.pi * 0.6  # about half to one cycle across a glyph
    phase = rng.uniform(0, 2 * math.pi, (waves, 2))
    amp = rng.normal(0, amplitude / math.sqrt(waves), (waves, 2))

    def displace(p: np.ndarray) -> np.ndarray:
        out = np.zeros_like(p)
        for w in range(waves):
            for axis in range(2):
                out[:, axis] += amp[w, axis] * np.sin(p @ k[w, axis] + phase[w, axis])
        return out

    return displace


def vary_ends(stroke: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Over- or undershoot a stroke's ends a little, as a quick hand does."""
    if len(stroke) < 3:
        return stroke
    for end in (0, -1):
        if rng.random() < 0.35:
            amount = rng.uniform(-0.5, 1.0) * scale
            inner = stroke[1] if end == 0 else stroke[-2]
            direction = stroke[end] - inner
            norm = np.linalg.norm(direction)
            if amount > 0 and norm > 0:
                stroke = stroke.copy()
                stroke[end] = stroke[end] + direction / norm * amount
            elif amount < 0 and len(stroke) > 4:
                cut = min(len(stroke) // 4, max(1, int(-amount / max(norm, 1e-6))))
                stroke = stroke[cut:] if end == 0 else stroke[:-cut]
    return stroke


def merge_touching(strokes: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Join strokes that start where the previous one ended (Hershey splits a pen path at corners)."""
    merged: list[np.ndarray] = []
    for s in strokes:
        if merged and np.allclose(merged[-1][-1], s[0]):
            merged[-1] = np.concatenate([merged[-1], s[1:]])
        else:
            merged.append(s)
    return tuple(merged)


def read_forms(path: Path) -> dict[str, list[tuple[np.ndarray, ...]]]:
    """A form table (one form per line, ``<char> <stroke> | <stroke> ...``; its header says how) as polylines."""
    table: dict[str, list[tuple[np.ndarray, ...]]] = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            char, strokes = line.split(" ", 1)
            table.setdefault(char, []).append(tuple(parse_stroke(s.strip()) for s in strokes.split("|")))
    return table


def hand(strokes: list[np.ndarray], rng: np.random.Generator, exit_tail: bool = False) -> list[np.ndarray]:
    """One writer's rendition of a form: slanted, bent and wobbled, placed on the pad (pad pixels, y down).

    What varies: aspect (narrow to wide hands), slant, rotation, a smooth bend of the whole form,
    stroke wobble, over- or undershot stroke ends, an optional exit flick (a joined-up hand's end
    of a letter), size and position on the pad, and, for a quarter, a coarse tablet's polygonal curves.
    """
    low, high = np.min([s.min(0) for s in strokes], 0), np.max([s.max(0) for s in strokes], 0)
    unit = max(high - low)
    strokes = [(s - (low + high) / 2) / unit for s in strokes]  # centred, longer side 1
    if exit_tail:
        last = strokes[-1]
        tail = last[-1] + np.array([rng.uniform(0.08, 0.2), -rng.uniform(0.0, 0.12)])
        strokes[-1] = np.concatenate([last, [last[-1] + np.array([0.03, 0.03]), tail]])
    strokes = [vary_ends(resample(s, 0.02), rng, 0.05) for s in strokes]

    aspect = math.exp(rng.normal(0, 0.25))
    slant = float(np.clip(rng.normal(0.12, 0.18), -0.35, 0.6))  # x shifts right going up: italic hands
    angle = math.radians(rng.normal(0, 5))
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.array([[aspect, -slant], [0, 1]])
    bend = smooth_field(rng, rng.uniform(0, 0.06))
    wobble_amp, wobble_freq = rng.uniform(0, 0.012), rng.uniform(8, 20)
    out = []
    for stroke in strokes:
        p = stroke @ linear.T + bend(stroke)
        if len(p) > 1:
            arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
            p = p + wobble_amp * np.sin(wobble_freq * arc[:, None] + rng.uniform(0, 2 * math.pi, 2))
        out.append(p)
    low, high = np.min([p.min(0) for p in out], 0), np.max([p.max(0) for p in out], 0)
    side = rng.uniform(*HAND_SIDES)
    scale = side / max(max(high - low), 1e-6)
    centre = np.array([PAD_SIZE / 2, PAD_SIZE / 2]) + rng.uniform(-15, 15, 2)
    out = [(p - (low + high) / 2) * scale + centre for p in out]
    if rng.random() < 0.25:  # a coarse 1990s tablet: polygonal curves
        step = rng.uniform(8, 22)
        out = [resample(p, step) for p in out]
    return out


def draw_framed(strokes: list[np.ndarray], rng: np.random.Generator, drawing: dict) -> np.ndarray:
    """Pad strokes drawn with a ``HAND_PENS`` pen, framed by ``frame_ink(**drawing)``: uint8, white on black.

    Drawn at half the pad's resolution (140 px pad, half the pen): ``frame_ink`` shrinks the ink to
    ~20 px anyway, and a quarter of the pixels makes a character about a millisecond.
    """
    pen = rng.uniform(*HAND_PENS)
    pad = pad_image([p / 2 for p in strokes], size=PAD_SIZE // 2, pen=pen / 2, supersample=2)
    return (frame_ink(pad, **drawing) * 255).round().astype(np.uint8)


def centre_lines(mask: np.ndarray) -> list[np.ndarray]:
    """The centre lines of a filled shape (a bool mask, e.g. a rendered font glyph) as ``(x, y)`` polylines.

    Thinned to one pixel (Zhang-Suen), then walked from end points into 8-connected paths, so a
    handwriting font's filled glyph becomes strokes the page's pen can draw again.
    """
    skeleton = mask.astype(np.uint8)
    changed = True
    while changed:
        changed = False
        for first in (True, False):
            p = np.pad(skeleton, 1)
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            filled = sum(x.astype(int) for x in n)
            crossings = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(int) for i in range(8))
            up, right, down, left = n[0], n[2], n[4], n[6]
            if first:
                corner = (up * right * down == 0) & (right * down * left == 0)
            else:
                corner = (up * right * left == 0) & (up * down * left == 0)
            remove = (skeleton == 1) & (filled >= 2) & (filled <= 6) & (crossings == 1) & corner
            if remove.any():
                skeleton[remove] = 0
                changed = True
    ys, xs = np.nonzero(skeleton)
    todo = set(zip(xs.tolist(), ys.tolist()))

    def neighbours(x: int, y: int) -> list[tuple[int, int]]:
        near = [(x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
        return sorted((q for q in near if q in todo), key=lambda q: abs(q[0] - x) + abs(q[1] - y))

    lines = []
    while todo:
        ends = [q for q in todo if len(neighbours(*q)) <= 1]
        point = min(ends or todo)
        path = [point]
        todo.discard(point)
        while nearest := neighbours(*point):
            point = nearest[0]
            path.append(point)
            todo.discard(point)
        lines.append(np.array(path, dtype=float))
    return lines


def find_font(name: str) -> Path:
    """A font file by path, or by file name under the system's font folders (where Debian's font packages go)."""
    if Path(name).expanduser().is_file():
        return Path(name).expanduser()
    for folder in FONT_DIRS:
        found = sorted(folder.rglob(name)) if folder.is_dir() else []
        if found:
            return found[0]
    raise DataError(
        f"handwriting font {name!r} not found in {', '.join(map(str, FONT_DIRS))}: apt-get install its package "
        "(mnist-pipeline/handwriting-fonts.txt lists them) or leave it out of handwriting_fonts"
    )


@functools.cache
def font_glyph(path: Path, char: str) -> tuple[np.ndarray, ...]:
    """A handwriting font's ``char`` as pen strokes: the centre lines of its filled glyph (empty if it has none)."""
    from PIL import ImageFont

    canvas = Image.new("L", (240, 240), 0)
    ImageDraw.Draw(canvas).text((120, 120), char, fill=255, font=ImageFont.truetype(str(path), 120), anchor="mm")
    return tuple(line for line in centre_lines(np.asarray(canvas) > 127) if len(line) > 2)


def font_characters(
    fonts: tuple[Path, ...], labels: tuple[str, ...], per_label: int, drawing: dict, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``per_label`` of each label (and as many of its capital, for a letter) from ``fonts``, each by its own
    varied hand and framed like the pad: uint8 ``(N, size, size)`` white on black, and label indices ``(N,)``."""
    rng = np.random.default_rng([seed, 0xCA1])
    images, targets = [], []
    for index, label in enumerate(labels):
        for char in dict.fromkeys((label, label.upper())):  # "a" and "A"; a digit once
            drawable = [font for font in fonts if font_glyph(font, char)]
            if not drawable:
                raise DataError(f"none of the fonts {', '.join(f.name for f in fonts)} draws {char!r}")
            for _ in range(per_label):
                strokes = font_glyph(drawable[rng.integers(len(drawable))], char)
                images.append(draw_framed(hand(list(strokes), rng), rng, drawing))
                targets.append(index)
    return np.stack(images), np.array(targets, dtype=np.int64)


@functools.cache
def find_fonts(names: tuple[str, ...]) -> tuple[Path, ...]:
    """Every font of a config's ``handwriting_fonts``, found (a missing one fails here, before any drawing)."""
    return tuple(find_font(name) for name in names)
