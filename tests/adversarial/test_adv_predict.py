"""Hostile and odd inputs to ``mnist predict``: images in every mode, bombs, broken files, arrays.

Odd but valid images (black ink on a transparent canvas, 16-bit scans, CMYK) must be read as a
person sees them, so a real MNIST digit saved that way is still classified as itself. Broken or
hostile files are refused in one line naming the file.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from adversarial_helpers import assert_refused, mnist_digit, png_bytes, snapshot
from PIL import Image


@pytest.fixture
def digit():
    pixels, label = mnist_digit(0)
    return pixels, str(label)


@pytest.fixture
def predict(cli, home):
    (home / "mnist").mkdir()
    (home / "mnist" / "keep.txt").write_text("an artifact that must survive")

    def run(*files, extra=()):
        before = snapshot(home)
        result = cli("mnist", "predict", *files, "--weights", "pretrained", "--json", *extra)
        return result, before

    return run


def labels_of(result) -> list[str]:
    assert result.code == 0, result.err
    return [entry["label"] for entry in json.loads(result.out)]


def black_on_transparent(pixels: np.ndarray) -> Image.Image:
    rgba = np.zeros((*pixels.shape, 4), np.uint8)  # ink black, canvas transparent black: naive L gives all black
    rgba[..., 3] = pixels
    return Image.fromarray(rgba, "RGBA")


def white_on_transparent(pixels: np.ndarray) -> Image.Image:
    rgba = np.full((*pixels.shape, 4), 255, np.uint8)  # canvas transparent white: naive compositing on white loses it
    rgba[..., 3] = pixels
    return Image.fromarray(rgba, "RGBA")


def dark_scan_16bit(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray((255 - pixels).astype(np.uint16) * 257)  # dark ink on white paper, 16 bits


def cmyk(pixels: np.ndarray) -> Image.Image:
    return Image.merge("CMYK", [Image.new("L", (28, 28), 0)] * 3 + [Image.fromarray(pixels)])  # ink in K


def test_a_plain_digit_is_classified(predict, digit, tmp_path):
    path = tmp_path / "digit.png"
    path.write_bytes(png_bytes(Image.fromarray(digit[0])))
    assert labels_of(predict(path)[0]) == [digit[1]]


@pytest.mark.parametrize(
    ("make", "suffix", "format"),
    [
        (black_on_transparent, ".png", "PNG"),
        (white_on_transparent, ".png", "PNG"),
        (dark_scan_16bit, ".png", "PNG"),
        (cmyk, ".tif", "TIFF"),
    ],
    ids=["rgba-black-on-transparent", "rgba-white-on-transparent", "16-bit-scan", "cmyk"],
)
def test_odd_modes_are_read_as_they_look(predict, digit, tmp_path, make, suffix, format):
    path = tmp_path / f"odd{suffix}"
    path.write_bytes(png_bytes(make(digit[0]), format))
    assert labels_of(predict(path)[0]) == [digit[1]]


@pytest.mark.parametrize("make", [black_on_transparent, white_on_transparent, dark_scan_16bit, cmyk])
def test_the_safe_reader_gives_the_model_what_a_person_sees(digit, tmp_path, make):
    """The input half on its own: mlpipes.images + the pipeline's preprocessing + the bundled model."""
    from mlpipes.images import read_image_file
    from mnist import mnist_classifier

    path = tmp_path / "odd.tif"
    path.write_bytes(png_bytes(make(digit[0]), "TIFF"))
    probabilities = mnist_classifier(pretrained=True).predict(read_image_file(path))
    assert str(int(probabilities.argmax())) == digit[1]


def test_an_empty_batch_predicts_nothing(predict, tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 28, 28), np.uint8))
    assert labels_of(predict(path)[0]) == []


BROKEN = {
    # id: (file name, bytes or array, culprits)
    "zero-bytes": ("zero.png", b"", [r"zero\.png"]),
    "zero-by-zero-png": ("empty.png", "0x0", [r"empty\.png"]),
    "truncated-png": ("cut.png", "truncated", [r"cut\.png"]),
    "text-as-png": ("text.png", b"hello, I am not an image", [r"text\.png"]),
    "pixel-bomb": ("bomb.png", "bomb", [r"bomb\.png", "MLPIPES_MAX_IMAGE_PIXELS"]),
    "pickled-npy": ("pickle.npy", "pickle", [r"pickle\.npy"]),
    "npy-header-lies": ("short.npy", "short", [r"short\.npy"]),
    "npy-nan": ("nan.npy", np.full((1, 28, 28), np.nan, np.float32), [r"nan\.npy", "NaN"]),
    "npy-wrong-shape": ("shape.npy", np.zeros((2, 3, 28, 28), np.uint8), [r"shape\.npy", r"\(2, 3, 28, 28\)"]),
    "npy-out-of-range": ("range.npy", np.full((1, 28, 28), 300, np.int64), [r"range\.npy", "0-255"]),
    "npy-complex": ("complex.npy", np.zeros((1, 28, 28), np.complex64), [r"complex\.npy", "complex64"]),
}


def broken_file(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif content == "truncated":
        path.write_bytes(png_bytes(Image.fromarray(np.arange(784, dtype=np.uint8).reshape(28, 28)))[:-40])
    elif content == "0x0":

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0))
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    elif content == "bomb":
        path.write_bytes(png_bytes(Image.new("1", (8000, 8000))))
    elif content == "pickle":
        np.save(path, np.array([{"payload": 1}], dtype=object), allow_pickle=True)
    elif content == "short":
        np.save(path, np.zeros((100, 28, 28), np.uint8))
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_among_good_ones_is_named(predict, digit, tmp_path, case):
    name, content, culprits = BROKEN[case]
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(Image.fromarray(digit[0])))
    bad = broken_file(tmp_path, name, content)
    result, before = predict(good, bad, good)
    assert_refused(result, *culprits, before=before, home=tmp_path / "home")
    assert "good.png" not in result.error_lines()[0]


def test_missing_files_and_folders_are_named(predict, tmp_path):
    result, before = predict(tmp_path / "nowhere.png")
    assert_refused(result, r"nowhere\.png", before=before, home=tmp_path / "home")
    result, before = predict(tmp_path)
    assert_refused(result, str(tmp_path.name), before=before, home=tmp_path / "home")


def test_a_bad_option_value_is_one_line(predict, digit, tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(Image.fromarray(digit[0])))
    result, before = predict(good, extra=("--backend", "tensorflow"))
    assert_refused(result, "tensorflow", before=before, home=tmp_path / "home")


def test_the_letter_pipeline_reads_predict_files_the_same_safe_way(cli, home, tmp_path):
    bomb = broken_file(tmp_path, "bomb.png", "bomb")
    before = snapshot(home)
    result = cli("ascii-letter", "predict", bomb, "--weights", "pretrained")
    assert_refused(result, r"bomb\.png", "MLPIPES_MAX_IMAGE_PIXELS", before=before, home=home)
