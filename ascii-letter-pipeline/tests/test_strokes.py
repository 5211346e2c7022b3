"""The handwriting-like letter generator: every letter framed, determinism, letterforms, variety.

The pad's pen, the form-table format and a writer's hand are ``mnist.pen``'s, tested in mnist-pipeline.
"""

import string
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ascii_letter import AsciiLetterConfig
from ascii_letter.dataset import make_raw_data
from ascii_letter.strokes import (
    HERSHEY_FAMILIES,
    choose_form,
    forms,
    hershey_font,
    letter_strokes,
    render_stroke_letter,
)
from mlpipes.errors import DataError
from mnist.pen import find_font, font_characters, font_glyph

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


PRETRAINED = AsciiLetterConfig.from_yaml(Path(__file__).parents[1] / "src/ascii_letter/configs/pretrained.yml")


def installed_fonts() -> tuple[Path, ...]:
    """The bundled recipe's handwriting fonts (Debian packages that .ci/run installs); skipped, saying so, if absent."""
    try:
        return tuple(find_font(name) for name in PRETRAINED.handwriting_fonts)
    except DataError as e:
        pytest.skip(f"handwriting fonts not installed: {e}")


def test_handwriting_fonts_become_pen_strokes_for_every_letter():
    fonts = installed_fonts()
    assert len(fonts) >= 10
    for font in fonts:
        drawn = [c for c in LETTERS if font_glyph(font, c)]
        assert len(drawn) == len(LETTERS), (font.name, sorted(set(LETTERS) - set(drawn)))
    chosen = Counter(choose_form("g", np.random.default_rng([0, 6, i]), fonts)[0].split("/")[0] for i in range(300))
    assert 0.2 < chosen["font"] / 300 < 0.4 and chosen["table"] and chosen["hershey"]
    image = render_stroke_letter("g", np.random.default_rng(0), DRAWING, fonts)
    assert image.shape == (32, 32) and image.max() > 200


def test_the_calibration_fonts_draw_every_letter_and_are_never_trained_on():
    try:
        fonts = tuple(find_font(name) for name in PRETRAINED.calibration_fonts)
    except DataError as e:
        pytest.skip(f"calibration fonts not installed: {e}")
    assert len(fonts) >= 10 and not set(PRETRAINED.calibration_fonts) & set(PRETRAINED.handwriting_fonts)
    images, labels = font_characters(fonts, PRETRAINED.labels, 2, DRAWING, seed=0)
    assert images.shape == (26 * 2 * 2, 32, 32) and np.bincount(labels).tolist() == [4] * 26  # a, a, A, A, b, ...
    assert (images.reshape(len(images), -1).max(1) > 200).all()
    np.testing.assert_array_equal(font_characters(fonts, PRETRAINED.labels, 2, DRAWING, seed=0)[0], images)


def test_a_missing_handwriting_font_is_one_line_naming_it(tmp_path):
    config = AsciiLetterConfig(artifact_dir=str(tmp_path), handwriting_fonts=("NoSuchHand.ttf",))
    with pytest.raises(DataError, match=r"handwriting font 'NoSuchHand.ttf' not found .*apt-get install"):
        make_raw_data(config)
    assert not config.tarball_path.exists()
