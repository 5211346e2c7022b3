"""The handwriting-like letter generator: every letter framed, determinism, letterforms, variety.

The pad's pen, the form-table format and a writer's hand are ``mnist.pen``'s, tested in mnist-pipeline.
"""

import string
from collections import Counter

import numpy as np
import pytest

from ascii_letter import AsciiLetterConfig
from ascii_letter.strokes import (
    HERSHEY_FAMILIES,
    choose_form,
    forms,
    hershey_font,
    letter_strokes,
    render_stroke_letter,
)

DRAWING = AsciiLetterConfig().drawing
LETTERS = string.ascii_lowercase + string.ascii_uppercase


@pytest.mark.parametrize("char", list(LETTERS))
def test_every_letter_renders_framed_white_on_black(char):
    for seed in range(3):
        image = render_stroke_letter(char, np.random.default_rng([seed, ord(char)]), DRAWING)
        assert image.shape == (32, 32) and image.dtype == np.uint8
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert border.mean() < 40 and image.max() > 200  # white ink on black (a T's bar may touch the top)
        rows, cols = np.flatnonzero(image.max(1) > 0), np.flatnonzero(image.max(0) > 0)
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == DRAWING["box"]  # frame_ink's 23 px box
        mass = image.astype(float) / image.sum()
        cy, cx = (mass.sum(1) * (np.arange(32) + 0.5)).sum(), (mass.sum(0) * (np.arange(32) + 0.5)).sum()
        assert abs(cy - 16) <= 2.5 and abs(cx - 16) <= 2.5  # centred by mass (frame_ink keeps the ink inside)


def test_same_rng_same_image_other_rng_other_image():
    draw = [render_stroke_letter("g", np.random.default_rng([0, 6, i]), DRAWING) for i in (0, 0, 1)]
    assert np.array_equal(draw[0], draw[1]) and not np.array_equal(draw[0], draw[2])


def test_every_letter_has_forms_and_every_hershey_family_has_every_letter():
    assert set(forms()) == set(LETTERS)
    for family in HERSHEY_FAMILIES:
        glyphs = hershey_font(family)
        assert all(glyphs[c] and all(len(s) for s in glyphs[c]) for c in LETTERS), family


@pytest.mark.parametrize(
    ("char", "forms"),
    [("a", {0, 2}), ("g", {0, 3}), ("l", {0, 2}), ("z", {0, 1}), ("f", {0, 1}), ("t", {0, 1}), ("I", {0, 1})],
)
def test_letterforms_vary_across_seeds(char, forms):
    """Single- and double-storey a and g, plain and looped l, plain and crossed z... all get drawn."""
    chosen = Counter(choose_form(char, np.random.default_rng([0, 1, i]))[0] for i in range(200))
    assert {f"table/{i}" for i in forms} <= set(chosen)
    assert any(name.startswith("hershey/") for name in chosen)
    assert max(chosen.values()) < 0.5 * 200  # no one form dominates


def test_writers_vary_slant_and_aspect():
    boxes = []
    for i in range(40):
        strokes = letter_strokes("l", np.random.default_rng([0, 11, i]))
        points = np.concatenate(strokes)
        boxes.append(np.ptp(points[:, 0]) / np.ptp(points[:, 1]))
    assert min(boxes) < 0.2 < 0.5 < max(boxes)  # upright l's and leaning ones
