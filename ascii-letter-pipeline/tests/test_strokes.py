"""The handwriting-like generator: the pad's pen, framing, every letter, determinism, variety."""

import string
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ascii_letter import AsciiLetterConfig
from ascii_letter.strokes import (
    HERSHEY_FAMILIES,
    choose_form,
    forms,
    hershey_font,
    letter_strokes,
    pad_image,
    parse_stroke,
    render_stroke_letter,
)
from mnist.preprocess import frame_ink

DRAWING = AsciiLetterConfig().drawing
LETTERS = string.ascii_lowercase + string.ascii_uppercase


def readme_pad_image(strokes, size=280, pen=20, ss=4):
    """The real-handwriting README's recipe, verbatim in behaviour (PIL's curve joints included)."""
    big = Image.new("L", (size * ss, size * ss), 0)
    draw, r = ImageDraw.Draw(big), pen * ss / 2
    for stroke in strokes:
        p = [(x * ss, y * ss) for x, y in stroke]
        if len(p) > 1:
            draw.line(p, fill=255, width=pen * ss, joint="curve")
        for x, y in p:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(big.resize((size, size), Image.BOX))


SYNTHETIC = [
    [(60.0, 220.0), (100.3, 60.2), (140.0, 40.0), (180.5, 70.0), (150.0, 140.0), (210.0, 230.0)],  # sharp turns
    [(70.0, 150.0), (200.0, 150.0)],
    [(140.0, 20.0)],  # a dot: one point
]


def test_pad_draws_like_the_readme_recipe():
    ours, theirs = pad_image(SYNTHETIC), readme_pad_image(SYNTHETIC)
    assert ours.shape == (280, 280) and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.mean() < 0.05 and diff.max() <= 64  # discs at the points cover the curve joints
    framed = [frame_ink(x, **DRAWING) for x in (ours, theirs)]
    assert np.abs(framed[0] - framed[1]).max() < 0.02  # what a model sees: the same


def test_pad_pen_is_round_and_twenty_pixels_wide():
    dot = pad_image([[(140.0, 140.0)]])
    rows = np.flatnonzero(dot.max(axis=1) > 127)
    assert 19 <= len(rows) <= 21 and dot[140, 140] == 255 and dot[0, 0] == 0


def test_half_resolution_drawing_frames_like_the_full_pad():
    """The generator draws at half the pad's resolution for speed; framed, that changes nothing visible."""
    full = frame_ink(pad_image(SYNTHETIC), **DRAWING)
    half = frame_ink(pad_image([[(x / 2, y / 2) for x, y in s] for s in SYNTHETIC], 140, 10, 2), **DRAWING)
    assert np.abs(full - half).mean() < 0.01


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


def test_form_strings_parse_to_smooth_curves_with_corners():
    line = parse_stroke("0,0 10,0")
    assert line.tolist() == [[0, 0], [10, 0]]
    curve = parse_stroke("0,0 10,10 20,0")
    assert len(curve) > 3 and curve[0].tolist() == [0, 0] and curve[-1].tolist() == [20, 0]
    corner = parse_stroke("0,0 10,10* 20,0")
    assert [10, 10] in corner.tolist() and len(corner) == 3  # two straight pieces meeting at the corner
