"""Handwriting-like letters: pen strokes, varied per writer, drawn like the web page's pad.

People draw letters in the page with a round pen; fonts teach a model serifs and fills no pen
makes. So each image here is a *trajectory*: a letterform (one of several per letter, from a
hand-written table below or a single-stroke Hershey font), distorted the way one writer's hand
differs from another's (slant, aspect, size, rotation, smooth elastic bending, wobble, over- or
undershot stroke ends, exit flicks, coarse tablet sampling), then drawn by :func:`pad_image` (the pad's pen:
280 px pad, 20 px round pen, antialiased) and framed by ``mnist.preprocess.frame_ink``, the
recipe the page and the real-handwriting benchmark use. Strokes are cheap to bend (a few
hundred points), so a letter costs about 3 ms of CPU (2,600 in ~8 s), not an image warp.

Hershey fonts: the ``hershey-fonts`` package (MIT); the glyph data are Dr A. V. Hershey's
public-domain fonts (U.S. National Bureau of Standards).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from mnist.pen import (  # noqa: F401 (pad_image: the benchmark and tests draw through this module too)
    CHAR_PX,
    PAD_SIZE,
    PEN_PX,
    merge_touching,
    pad_image,
    parse_stroke,
    resample,
    smooth_field,
    vary_ends,
)
from mnist.preprocess import frame_ink

# ---- letterforms ------------------------------------------------------------------------------
FORMS_FILE = Path(__file__).with_name("letterforms.txt")  # the form table: its header says the format


@functools.cache
def forms() -> dict[str, list[list[str]]]:
    """The form table: for each character, its forms, each a list of stroke strings (see the file)."""
    table: dict[str, list[list[str]]] = {}
    for line in FORMS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            char, strokes = line.split(" ", 1)
            table.setdefault(char, []).append([s.strip() for s in strokes.split("|")])
    return table


# Hershey families whose strokes are pen-like: single-stroke sans and roman, two scripts, and the
# complex italic/roman (double lines that the pen merges into one thick stroke). Gothic is left out.
HERSHEY_FAMILIES = ("futural", "rowmans", "scripts", "cursive", "timesi", "scriptc", "futuram")
HERSHEY_CAPITALS = ("futural", "rowmans", "timesi", "futuram")  # script capitals are calligraphy, not handwriting
EXIT_TAIL_SHARE = 0.15  # of lower-case letters that end in an exit flick
HERSHEY_SHARE = 0.35  # of letters drawn from a Hershey font; the rest from the form table


@functools.cache
def table_forms(char: str) -> tuple[tuple[np.ndarray, ...], ...]:
    """The hand-written table's forms of ``char`` (capitals and lower case apart), as polylines."""
    return tuple(tuple(parse_stroke(s) for s in form) for form in forms()[char])


@functools.cache
def hershey_font(family: str) -> dict[str, tuple[np.ndarray, ...]]:
    """A Hershey family's glyphs of a-z and A-Z as polylines (y down), loaded once per process."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    font.load_default_font(family)
    glyphs = {}
    for char in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        glyph = next(iter(font.glyphs_for_text(char)))
        strokes = tuple(np.array(s, dtype=float) for s in glyph.strokes if len(s))
        glyphs[char] = merge_touching(strokes)
    return glyphs


# ---- one writer's hand ------------------------------------------------------------------------


def choose_form(char: str, rng: np.random.Generator, hershey_share: float = HERSHEY_SHARE) -> tuple[str, list]:
    """A letterform of ``char`` and its name: ``"table/<i>"`` (the form table) or ``"hershey/<family>"``."""
    if rng.random() < hershey_share:
        families = HERSHEY_FAMILIES if char.islower() else HERSHEY_CAPITALS
        family = families[rng.integers(len(families))]
        return f"hershey/{family}", list(hershey_font(family)[char])
    forms = table_forms(char)
    i = int(rng.integers(len(forms)))
    return f"table/{i}", list(forms[i])


def letter_strokes(char: str, rng: np.random.Generator) -> list[np.ndarray]:
    """One writer's ``char``: a letterform, bent and slanted, as polylines in pad pixels (280 px pad)."""
    strokes = choose_form(char, rng)[1]
    low, high = np.min([s.min(0) for s in strokes], 0), np.max([s.max(0) for s in strokes], 0)
    unit = max(high - low)
    strokes = [(s - (low + high) / 2) / unit for s in strokes]  # centred, longer side 1
    if char.islower() and rng.random() < EXIT_TAIL_SHARE:  # the flick a joined-up hand ends a letter with
        last = strokes[-1]
        tail = last[-1] + np.array([rng.uniform(0.08, 0.2), -rng.uniform(0.0, 0.12)])
        strokes[-1] = np.concatenate([last, [last[-1] + np.array([0.03, 0.03]), tail]])
    strokes = [resample(s, 0.02) for s in strokes]
    strokes = [vary_ends(s, rng, 0.05) for s in strokes]

    aspect = math.exp(rng.normal(0, 0.25))  # narrow to wide hands
    slant = float(np.clip(rng.normal(0.12, 0.18), -0.35, 0.6))  # x shifts right going up: italic hands
    angle = math.radians(rng.normal(0, 5))
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.array([[aspect, -slant], [0, 1]])
    bend = smooth_field(rng, rng.uniform(0, 0.06))
    wobble_amp, wobble_freq = rng.uniform(0, 0.012), rng.uniform(8, 20)
    out = []
    for stroke in strokes:
        p = stroke @ linear.T
        p = p + bend(stroke)
        if len(p) > 1:
            arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
            phase = rng.uniform(0, 2 * math.pi, 2)
            p = p + wobble_amp * np.sin(wobble_freq * arc[:, None] + phase)
        out.append(p)
    low, high = np.min([p.min(0) for p in out], 0), np.max([p.max(0) for p in out], 0)
    side = rng.uniform(130, 215)  # pad pixels: people draw at many sizes; filling the 280 px pad is ~200
    scale = side / max(max(high - low), 1e-6)
    centre = np.array([PAD_SIZE / 2, PAD_SIZE / 2]) + rng.uniform(-15, 15, 2)
    out = [(p - (low + high) / 2) * scale + centre for p in out]
    if rng.random() < 0.25:  # a coarse 1990s tablet: polygonal curves
        step = rng.uniform(8, 22)
        out = [resample(p, step) for p in out]
    return out


def render_stroke_letter(char: str, rng: np.random.Generator, drawing: dict) -> np.ndarray:
    """One handwriting-like ``char``: uint8 ``(size, size)`` white on black, framed by ``frame_ink(**drawing)``.

    Drawn at half the pad's resolution (140 px pad, half the pen): ``frame_ink`` shrinks the ink to
    ~23 px anyway, and a quarter of the pixels makes a letter about a millisecond.
    """
    strokes = letter_strokes(char, rng)
    pen = rng.uniform(16, 24)
    half = [p / 2 for p in strokes]
    pad = pad_image(half, size=PAD_SIZE // 2, pen=pen / 2, supersample=2)
    return (frame_ink(pad, **drawing) * 255).round().astype(np.uint8)


def montage(rows: int = 8, seed: int = 0, drawing: dict | None = None) -> np.ndarray:
    """A grid of generated letters for the docs: 26 columns a-z, rows alternating capitals and lower case.

    Row ``r`` column ``c`` is the image ``make_raw_data`` renders as example ``r`` of letter ``c``
    for ``seed`` with ``generator="strokes"``: uint8 ``(32 * rows, 32 * 26)``.
    """
    import string

    from ascii_letter.config import AsciiLetterConfig

    drawing = drawing or AsciiLetterConfig().drawing
    grid = [
        [
            render_stroke_letter(c.upper() if r % 2 == 0 else c, np.random.default_rng([seed, i, r]), drawing)
            for i, c in enumerate(string.ascii_lowercase)
        ]
        for r in range(rows)
    ]
    return np.block(grid)
