"""Handwriting-like letters: pen strokes, varied per writer, drawn like the web page's pad.

People draw letters in the page with a round pen; fonts teach a model serifs and fills no pen
makes. So each image here is a *trajectory*: a letterform (one of several per letter, from the
hand-written table ``letterforms.txt``, printed and cursive, or a single-stroke Hershey font),
distorted the way one writer's hand differs from another's by ``mnist.pen.hand`` (slant, aspect,
size, rotation, smooth elastic bending, wobble, over- or undershot stroke ends, exit flicks,
coarse tablet sampling), then drawn by ``mnist.pen.pad_image`` (the pad's pen: 280 px pad, 20 px
round pen, antialiased) and framed by ``mnist.preprocess.frame_ink``, the recipe the page and
the real-handwriting benchmark use. Strokes are cheap to bend (a few
hundred points), so a letter costs about 3 ms of CPU (2,600 in ~8 s), not an image warp.

Hershey fonts: the ``hershey-fonts`` package (MIT); the glyph data are Dr A. V. Hershey's
public-domain fonts (U.S. National Bureau of Standards).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from mnist.pen import (
    FONT_SHARE,
    draw_framed,
    find_fonts,
    font_glyph,
    hand,
    merge_touching,
    pad_image,  # noqa: F401 (re-exported: the benchmark checks the generator draws with the pad's pen)
    read_forms,
)

FORMS_FILE = Path(__file__).with_name("letterforms.txt")  # the form table: its header says the format
# Hershey families whose strokes are pen-like: single-stroke sans and roman, two scripts, and the
# complex italic/roman (double lines that the pen merges into one thick stroke). Gothic is left out.
HERSHEY_FAMILIES = ("futural", "rowmans", "scripts", "cursive", "timesi", "scriptc", "futuram")
HERSHEY_CAPITALS = ("futural", "rowmans", "timesi", "futuram")  # script capitals are calligraphy, not handwriting
EXIT_TAIL_SHARE = 0.15  # of lower-case letters that end in an exit flick
HERSHEY_SHARE = 0.35  # of letters drawn from a Hershey font; the rest from the form table


@functools.cache
def forms() -> dict[str, list[tuple[np.ndarray, ...]]]:
    """The hand-written form table: for each character (capitals and lower case apart), its forms as polylines."""
    return read_forms(FORMS_FILE)


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


def choose_form(
    char: str, rng: np.random.Generator, fonts: tuple[Path, ...] = (), hershey_share: float = HERSHEY_SHARE
) -> tuple[str, list]:
    """A letterform of ``char`` and its name: ``"font/<file>"`` (one of ``fonts``, handwriting TTF/OTF files),
    ``"hershey/<family>"`` or ``"table/<i>"`` (the form table)."""
    if fonts and rng.random() < FONT_SHARE:
        font = fonts[rng.integers(len(fonts))]
        if strokes := font_glyph(font, char):
            return f"font/{font.name}", list(strokes)
    if rng.random() < hershey_share:
        families = HERSHEY_FAMILIES if char.islower() else HERSHEY_CAPITALS
        family = families[rng.integers(len(families))]
        return f"hershey/{family}", list(hershey_font(family)[char])
    table = forms()[char]
    i = int(rng.integers(len(table)))
    return f"table/{i}", list(table[i])


def letter_strokes(char: str, rng: np.random.Generator, fonts: tuple[Path, ...] = ()) -> list[np.ndarray]:
    """One writer's ``char``: a letterform, bent and slanted, as polylines in pad pixels (280 px pad)."""
    strokes = choose_form(char, rng, fonts)[1]
    return hand(strokes, rng, exit_tail=char.islower() and rng.random() < EXIT_TAIL_SHARE)


def render_stroke_letter(
    char: str, rng: np.random.Generator, drawing: dict, fonts: tuple[Path, ...] = ()
) -> np.ndarray:
    """One handwriting-like ``char``: uint8 ``(size, size)`` white on black, framed by ``frame_ink(**drawing)``."""
    return draw_framed(letter_strokes(char, rng, fonts), rng, drawing)


def montage(config, rows: int = 8) -> np.ndarray:
    """A grid of generated letters for the docs: 26 columns a-z, rows alternating capitals and lower case.

    Row ``r`` column ``c`` is the image ``make_raw_data`` renders as example ``r`` of letter ``c``
    for an ``AsciiLetterConfig`` with ``generator="strokes"``: uint8 ``(32 * rows, 32 * 26)``.
    """
    fonts = find_fonts(config.handwriting_fonts)
    grid = [
        [
            render_stroke_letter(
                c.upper() if r % 2 == 0 else c, np.random.default_rng([config.seed, i, r]), config.drawing, fonts
            )
            for i, c in enumerate(config.labels)
        ]
        for r in range(rows)
    ]
    return np.block(grid)
