"""Safe image decoding: budgets from the header, every mode as it looks, one-line refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mlpipes.errors import ConfigError, DataError
from mlpipes.images import decode_image, read_array_file, read_image_file

INK = np.zeros((32, 32), np.uint8)
INK[8:24, 14:18] = 255  # a white bar on black: the ink


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def rgba(ink_rgb: int) -> Image.Image:
    """The bar drawn in ``ink_rgb`` on a fully transparent canvas (whose hidden colour is the opposite)."""
    pixels = np.zeros((32, 32, 4), np.uint8)
    pixels[..., :3] = 255 - ink_rgb
    pixels[..., 3] = INK
    pixels[INK > 0, :3] = ink_rgb
    return Image.fromarray(pixels, "RGBA")


def test_grayscale_png_round_trips():
    assert np.array_equal(decode_image(encode(Image.fromarray(INK)), "a.png"), INK)


@pytest.mark.parametrize("ink", [0, 255], ids=["black-ink", "white-ink"])
def test_ink_on_a_transparent_canvas_stays_visible(ink):
    gray = decode_image(encode(rgba(ink)), "drawing.png")
    inside, outside = gray[INK > 0], gray[INK == 0]
    assert abs(int(inside.mean()) - int(outside.mean())) > 200  # full contrast between ink and background
    assert inside.mean() == ink  # the ink keeps its colour; the background is the opposite one


def test_semi_transparent_ink_blends_and_fully_transparent_is_blank():
    image = rgba(0)
    pixels = np.asarray(image).copy()
    pixels[..., 3] //= 2
    gray = decode_image(encode(Image.fromarray(pixels, "RGBA")), "half.png")
    assert 120 < gray[INK > 0].mean() < 135 and gray[INK == 0].min() == 255
    pixels[..., 3] = 0
    assert decode_image(encode(Image.fromarray(pixels, "RGBA")), "empty.png").max() == 0


def test_palette_with_a_transparent_index_and_la():
    palette = Image.fromarray(INK // 255, "L").convert("P")
    palette.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)  # index 0 and 1 both black...
    gray = decode_image(encode(palette, transparency=0), "p.png")  # ...index 0 transparent: black ink remains
    assert gray[INK > 0].max() == 0 and gray[INK == 0].min() == 255
    la = Image.merge("LA", [Image.new("L", (32, 32), 0), Image.fromarray(INK)])
    assert np.array_equal(decode_image(encode(la), "la.png"), 255 - INK)


def test_sixteen_bit_and_float_images_are_scaled_not_clipped():
    wide = INK.astype(np.uint16) * 257  # 0..65535
    gray = decode_image(encode(Image.fromarray(wide)), "scan16.png")
    assert np.array_equal(gray, INK)
    dim = (INK.astype(np.uint16) * 100).astype(np.uint16)  # a dark 16-bit scan: 25500/65535 of full white
    assert decode_image(encode(Image.fromarray(dim)), "dim16.png").max() == round(25500 / 257)
    unit = Image.fromarray(INK.astype(np.float32) / 255, "F")
    assert np.array_equal(decode_image(encode(unit, "TIFF"), "unit.tif"), INK)
    with pytest.raises(DataError, match=r"nan\.tif: float image contains NaN"):
        decode_image(encode(Image.fromarray(np.full((4, 4), np.nan, np.float32), "F"), "TIFF"), "nan.tif")


def test_cmyk_is_read_through_rgb():
    cmyk = Image.merge("CMYK", [Image.new("L", (32, 32), 0)] * 3 + [Image.fromarray(255 - INK)])  # K channel ink
    assert np.array_equal(decode_image(encode(cmyk, "TIFF"), "cmyk.tif"), INK)


def test_pixels_are_checked_from_the_header_before_decoding(monkeypatch):
    bomb = encode(Image.new("1", (8000, 8000)))  # ~8 KB of PNG, 64 M pixels decoded
    assert len(bomb) < 20_000
    with pytest.raises(DataError, match=r"bomb\.png: image of 8000×8000 pixels: 64,000,000 .*MLPIPES_MAX_IMAGE_PIXELS"):
        decode_image(bomb, "bomb.png")
    small = encode(Image.fromarray(INK))
    monkeypatch.setenv("MLPIPES_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DataError, match="1,024 is over the limit of 1,000"):
        decode_image(small, "small.png")
    monkeypatch.setenv("MLPIPES_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigError, match=r"\$MLPIPES_MAX_IMAGE_PIXELS='?lots'?: expected a positive integer"):
        decode_image(small, "small.png")


def test_pillows_own_bomb_limit_is_reported_as_ours():
    huge = encode(Image.new("1", (20000, 20000)))  # over Pillow's 2× limit: it refuses inside open()
    with pytest.raises(DataError, match=r"huge\.png: .*MLPIPES_MAX_IMAGE_PIXELS"):
        decode_image(huge, "huge.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"hello, not an image", "not a readable image"),
        (encode(Image.fromarray(INK))[:60], "not a readable image"),  # truncated inside the pixel data
        (encode(Image.fromarray(INK), "JPEG")[:200], "not a readable image"),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg"],
)
def test_unreadable_files_are_one_line_naming_the_file(data, message):
    with pytest.raises(DataError, match=message) as caught:
        decode_image(data, "in\nput.png")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("in\\nput.png: ")


def test_files_over_the_byte_budget_are_not_read(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(encode(Image.fromarray(INK)))
    assert np.array_equal(read_image_file(path), INK)
    monkeypatch.setenv("MLPIPES_MAX_IMAGE_BYTES", "10")
    with pytest.raises(DataError, match=r"big\.png: file size in bytes .*\$MLPIPES_MAX_IMAGE_BYTES"):
        read_image_file(path)
    with pytest.raises(DataError, match=r"missing\.png: no such file"):
        read_image_file(tmp_path / "missing.png")
    with pytest.raises(DataError, match="is a folder"):
        read_image_file(tmp_path)


def test_npy_files_are_read_without_pickle_and_their_header_checked(tmp_path):
    good = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(good))
    assert np.array_equal(read_array_file(tmp_path / "good.npy"), good)
    assert np.array_equal(read_array_file(tmp_path / "fortran.npy"), good)
    np.save(tmp_path / "pickle.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"pickle\.npy: holds Python objects"):
        read_array_file(tmp_path / "pickle.npy")
    (tmp_path / "short.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:-10])
    with pytest.raises(DataError, match=r"short\.npy: its header promises 1,568 bytes"):
        read_array_file(tmp_path / "short.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(DataError, match=r"text\.npy: not a readable \.npy"):
        read_array_file(tmp_path / "text.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.float32))
    assert read_array_file(tmp_path / "empty.npy").shape == (0, 28, 28)


def test_npy_files_have_their_own_budget(tmp_path, monkeypatch):
    np.save(tmp_path / "batch.npy", np.zeros((3, 28, 28), np.float32))
    monkeypatch.setenv("MLPIPES_MAX_IMAGE_BYTES", "100")  # the image budget does not apply to arrays
    assert read_array_file(tmp_path / "batch.npy").shape == (3, 28, 28)
    monkeypatch.setenv("MLPIPES_MAX_ARRAY_BYTES", "1000")
    with pytest.raises(DataError, match=r"batch\.npy: file size in bytes 9,536 .*\$MLPIPES_MAX_ARRAY_BYTES"):
        read_array_file(tmp_path / "batch.npy")
    with pytest.raises(DataError, match=r"gone\.npy: no such file"):
        read_array_file(tmp_path / "gone.npy")
