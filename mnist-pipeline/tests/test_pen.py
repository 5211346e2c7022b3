"""The page's pen, the form table, one writer's hand, and the pen-drawn digits MNIST's training split can take."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlpipes.errors import DataError
from mlpipes.records import Records
from mnist import MnistConfig, dataset
from mnist.dataset import DIGIT_FORMS, pen_digits, save_datasets
from mnist.pen import centre_lines, find_font, font_glyph, hand, pad_image, parse_stroke, read_forms
from mnist.preprocess import frame_ink

DRAWING = MnistConfig().drawing


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
    """The generators draw at half the pad's resolution for speed; framed, that changes nothing visible."""
    full = frame_ink(pad_image(SYNTHETIC), **DRAWING)
    half = frame_ink(pad_image([[(x / 2, y / 2) for x, y in s] for s in SYNTHETIC], 140, 10, 2), **DRAWING)
    assert np.abs(full - half).mean() < 0.01


def test_form_strings_parse_to_smooth_curves_with_corners():
    line = parse_stroke("0,0 10,0")
    assert line.tolist() == [[0, 0], [10, 0]]
    curve = parse_stroke("0,0 10,10 20,0")
    assert len(curve) > 3 and curve[0].tolist() == [0, 0] and curve[-1].tolist() == [20, 0]
    corner = parse_stroke("0,0 10,10* 20,0")
    assert [10, 10] in corner.tolist() and len(corner) == 3  # two straight pieces meeting at the corner


def test_form_table_reads_every_form_and_skips_comments(tmp_path):
    table = tmp_path / "forms.txt"
    table.write_text("# a header\n\n1 50,0 50,100   # plain\n1 30,20 50,0* 50,100 | 30,100 70,100\n")
    forms = read_forms(table)
    assert list(forms) == ["1"] and [len(form) for form in forms["1"]] == [1, 2]
    assert forms["1"][1][1].tolist() == [[30, 100], [70, 100]]


def test_every_digit_has_several_forms_including_those_mnist_rarely_shows():
    forms = read_forms(DIGIT_FORMS)
    assert sorted(forms) == [str(d) for d in range(10)]
    assert all(len(forms[d]) >= 3 for d in forms)
    assert any(len(form) == 2 for form in forms["0"])  # a slashed zero
    assert any(len(form) == 2 for form in forms["7"])  # a crossed seven


def test_a_hand_varies_slant_and_size_and_stays_on_the_pad():
    form = [parse_stroke("50,0 50,100")]
    widths, heights = [], []
    for i in range(40):
        points = np.concatenate(hand(form, np.random.default_rng(i)))
        assert points.min() >= 0 and points.max() <= 280
        widths.append(np.ptp(points[:, 0]))
        heights.append(np.ptp(points[:, 1]))
    ratio = np.array(widths) / np.array(heights)
    assert ratio.min() < 0.1 < 0.3 < ratio.max()  # upright strokes and leaning ones
    assert max(heights) - min(heights) > 40  # people draw at many sizes


def test_pen_digits_are_framed_like_the_page_and_deterministic():
    config = MnistConfig(pen_digits=3)
    images, labels = pen_digits(config)
    assert images.shape == (30, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [d for d in range(10) for _ in range(3)]
    for image in images:
        rows, cols = np.flatnonzero(image.max(1) > 0), np.flatnonzero(image.max(0) > 0)
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == DRAWING["box"]  # frame_ink's 20 px box
    again, _ = pen_digits(config)
    other, _ = pen_digits(config.replace(seed=1))
    assert np.array_equal(images, again) and not np.array_equal(images, other)


def test_pen_digits_join_the_training_split_only(tmp_path, mnist_mirror):
    plain = MnistConfig(artifact_dir=str(tmp_path / "plain"), mirrors=(mnist_mirror,))
    mixed = plain.replace(artifact_dir=str(tmp_path / "mixed"), pen_digits=2)
    sizes = {}
    for config in (plain, mixed):
        records = save_datasets(config)
        sizes[config.pen_digits] = {split: len(records.load(split)["label"]) for split in ("train", "test")}
    assert sizes[2]["train"] == sizes[0]["train"] + 20 and sizes[2]["test"] == sizes[0]["test"]
    tail = Records.open(mixed.records_url).load("train")
    assert np.array_equal(tail["image"][-20:], pen_digits(mixed)[0])
    assert Records.open(mixed.records_url).index["provenance"]["pen_digits"]["per_class"] == 2


def test_centre_lines_of_a_thick_bar_and_a_ring():
    bar = np.zeros((40, 120), bool)
    bar[15:26, 10:110] = True
    (line,) = centre_lines(bar)
    assert abs(line[:, 1].mean() - 20) <= 1 and np.ptp(line[:, 0]) > 80  # one horizontal line through the middle
    yy, xx = np.mgrid[:100, :100]
    ring = (np.hypot(xx - 50, yy - 50) < 40) & (np.hypot(xx - 50, yy - 50) > 30)
    lines = centre_lines(ring)
    points = np.concatenate(lines)
    assert sum(len(line) for line in lines) > 150  # the whole circle, walked as connected paths
    assert np.all(np.abs(np.hypot(points[:, 0] - 50, points[:, 1] - 50) - 35) < 3)
    steps = np.abs(np.diff(lines[0], axis=0)).max()
    assert steps <= 1  # each path moves one pixel at a time (8-connected)


def test_pen_digits_can_start_from_handwriting_fonts(monkeypatch):
    names = tuple(Path(__file__).parents[1].joinpath("handwriting-fonts.txt").read_text().split())
    assert names and all(name.startswith("fonts-") for name in names)  # Debian packages, which .ci/run installs
    try:
        font = find_font("Breip.ttf")
    except DataError as e:
        pytest.skip(f"handwriting fonts not installed: {e}")
    assert all(font_glyph(font, str(d)) for d in range(10))
    drawn = []

    def counted(path, char):
        drawn.append((path.name, char))
        return font_glyph(path, char)

    monkeypatch.setattr(dataset, "font_glyph", counted)
    images, _ = pen_digits(MnistConfig(pen_digits=30, handwriting_fonts=("Breip.ttf",)))
    assert 0.15 < len(drawn) / 300 < 0.45  # about FONT_SHARE of the digits start from the font
    assert {char for _, char in drawn} == {str(d) for d in range(10)} and {name for name, _ in drawn} == {"Breip.ttf"}
    assert images.shape == (300, 28, 28) and images.max() > 200


def test_a_missing_font_fails_before_any_digit_is_drawn(tmp_path):
    with pytest.raises(DataError, match=r"handwriting font 'NoSuchHand.ttf' not found .*apt-get install"):
        pen_digits(MnistConfig(pen_digits=1, handwriting_fonts=("NoSuchHand.ttf",)))


def test_calibration_digits_come_from_the_calibration_fonts_alone():
    try:
        find_font("Breip.ttf")
    except DataError as e:
        pytest.skip(f"handwriting fonts not installed: {e}")
    source = dataset.font_calibration(MnistConfig(calibration_fonts=("Breip.ttf",)))
    (batch,) = list(source.batches(0))
    assert batch["image"].shape == (200, 28, 28) and batch["label"].bincount().tolist() == [20] * 10
    with pytest.raises(DataError, match=r"handwriting font 'NoSuchHand.ttf' not found"):
        dataset.font_calibration(MnistConfig(calibration_fonts=("NoSuchHand.ttf",)))
