"""Photos and scans of one character are framed as the page frames a drawing of it."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlpipes.errors import DataError
from mnist import MnistConfig, mnist_classifier
from mnist.dataset import DIGIT_FORMS
from mnist.pen import hand, pad_image, read_forms
from mnist.photo import frame_photo
from mnist.preprocess import frame_ink

DRAWING = MnistConfig().drawing
FORMS = read_forms(DIGIT_FORMS)


def pen_digit(digit: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, digit])
    return hand(list(FORMS[str(digit)][0]), rng)


def pencil_photo(strokes: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """A 600×450 grey photo: a thin dark stroke off-centre on unevenly lit, noisy paper, a dark table
    showing along the left edge, saved and read back as JPEG."""
    rng = np.random.default_rng(seed)
    height, width, scale = 450, 600, 1.2
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for stroke in strokes:
        points = [(x * scale + 250, y * scale + 60) for x, y in stroke]
        draw.line(points, fill=255, width=4, joint="curve")
    ink = np.asarray(mask, np.float32) / 255
    paper = 215 - 50 * np.linspace(0, 1, width)[None, :] + rng.normal(0, 4, (height, width))
    paper[:, :30] = 40  # the table beside the sheet
    photo = Image.fromarray(np.clip(paper * (1 - ink) + 90 * ink, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=70)
    return np.asarray(Image.open(buffer))


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two framed drawings' ink."""
    return float(np.minimum(a, b).sum() / np.maximum(a, b).sum())


def test_a_pad_drawing_is_framed_as_the_page_frames_it():
    strokes = pen_digit(5)
    pad = pad_image(strokes)
    framed, page = frame_photo(pad, **DRAWING), frame_ink(pad, **DRAWING)
    assert framed.shape == page.shape == (28, 28) and framed.dtype == np.float32
    assert overlap(framed, page) > 0.75
    dark_on_white = frame_photo(255 - pad, **DRAWING)  # the other polarity, as a scan gives it
    assert overlap(dark_on_white, framed) > 0.95


def test_pencil_photos_of_every_digit_are_read():
    model = mnist_classifier(pretrained=True)
    photos = [pencil_photo(pen_digit(d), seed=d) for d in range(10)]
    framed = np.stack([frame_photo(p, **DRAWING) for p in photos])
    pads = np.stack([frame_ink(pad_image(pen_digit(d)), **DRAWING) for d in range(10)])
    assert min(overlap(f, p) for f, p in zip(framed, pads)) > 0.5  # the table and the light are gone
    assert model.predict(framed).argmax(1).tolist() == list(range(10))
    resized = np.stack([np.asarray(Image.fromarray(p).resize((28, 28), Image.Resampling.LANCZOS)) for p in photos])
    assert (model.predict(resized).argmax(1) == np.arange(10)).sum() <= 3  # what predict did before framing


def test_blank_paper_gives_a_blank_frame():
    paper = np.clip(np.random.default_rng(0).normal(200, 5, (300, 400)), 0, 255).astype(np.uint8)
    assert not frame_photo(paper, **DRAWING).any()


def test_a_character_running_off_the_photo_is_kept():
    pad = pad_image(pen_digit(1))
    rows = np.flatnonzero(pad.max(axis=1))
    cut = pad[rows[0] + 10 :]  # the top of the 1 runs off the photo's edge
    assert frame_photo(cut, **DRAWING).sum() > 0.5 * frame_ink(pad, **DRAWING).sum()


@pytest.mark.parametrize(
    "image, message",
    [(np.zeros((40, 40, 3), np.uint8), r"shape \(40, 40, 3\): expected one grayscale image"),
     (np.zeros((5, 300), np.uint8), r"shape \(5, 300\): at least 8×8 pixels")],
)  # fmt: skip
def test_what_is_not_one_photo_is_refused_in_one_line(image, message):
    with pytest.raises(DataError, match=message):
        frame_photo(image)


def test_cli_predict_frames_a_photo_file(tmp_path):
    path = tmp_path / "seven.jpg"
    Image.fromarray(pencil_photo(pen_digit(7), seed=3)).save(path)
    out = subprocess.run(
        [sys.executable, "-m", "mnist", "predict", str(path), "--json", "--weights", "pretrained"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(out)[0]["label"] == "7"
