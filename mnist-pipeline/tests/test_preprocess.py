import numpy as np
import pytest
import torch

from mlpipes.errors import DataError
from mnist import preprocess_images, preprocess_labels
from mnist.preprocess import preprocess_array

rng = np.random.default_rng(0)
digits = np.zeros((3, 28, 28), dtype=np.uint8)
digits[:, 8:20, 12:16] = 255  # white strokes on black, like MNIST


@pytest.mark.parametrize(
    "images",
    [
        digits,
        digits[..., None],
        digits[:, None],
        torch.from_numpy(digits),
        digits / 255.0,
        (digits / 255).astype(np.float32)[..., None],
        torch.from_numpy(digits).float().div(255)[:, None],
    ],
    ids=["NHW-uint8", "NHWC-keras", "NCHW", "torch-uint8", "float64", "NHWC-float32", "torch-NCHW-float"],
)
def test_every_supported_layout_gives_the_same_tensor(images):
    x = preprocess_images(images)
    assert x.dtype == torch.float32 and x.shape == (3, 1, 28, 28)
    torch.testing.assert_close(x, torch.from_numpy(digits).float().div(255)[:, None])
    array = preprocess_array(images)  # what ONNX Runtime is given, with no torch round trip
    assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.flags.c_contiguous


def test_uint8_becomes_float32_value_by_value_exactly_as_dividing_by_255():
    every_value = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)  # the models were trained on these bits
    expected = every_value.astype(np.float32)[None, None] / np.float32(255)
    np.testing.assert_array_equal(preprocess_array(every_value, invert=False), expected)


def test_single_image_gets_a_batch_dimension():
    assert preprocess_images(digits[0]).shape == (1, 1, 28, 28)


def test_dark_on_white_input_is_inverted_automatically_or_on_request():
    inverted = 255 - digits
    torch.testing.assert_close(preprocess_images(inverted), preprocess_images(digits))
    torch.testing.assert_close(preprocess_images(digits, invert=True), 1 - preprocess_images(digits))
    torch.testing.assert_close(
        preprocess_images(inverted, invert=False), torch.from_numpy(inverted).float().div(255)[:, None]
    )


def test_larger_images_pass_smaller_are_refused():
    assert preprocess_images(np.zeros((2, 64, 64), np.uint8)).shape == (2, 1, 64, 64)
    with pytest.raises(DataError, match=r"shape \(2, 20, 20\).*at least 28"):
        preprocess_images(np.zeros((2, 20, 20), np.uint8))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 3, 28, 28), np.uint8), r"shape \(2, 3, 28, 28\)"),
        (np.zeros((28,), np.uint8), r"shape \(28,\)"),
        (np.full((28, 28), np.nan, np.float32), "NaN"),
        (np.full((28, 28), 255.0), r"\[0, 1\].*divide"),
        (np.full((28, 28), -0.5), r"\[0, 1\]"),
        (np.full((28, 28), 300, np.int64), r"dtype int64: values in \[300, 300\], expected 0-255"),
        (np.full((28, 28), -1, np.int32), r"values in \[-1, -1\]"),
        (np.zeros((28, 28), bool), r"shape \(28, 28\), dtype bool: expected uint8"),
        (np.zeros((28, 28), np.complex64), "dtype complex64"),
        (np.zeros((28, 28), object), "dtype object"),
        (np.full((28, 28), np.inf, np.float32), "NaN or infinity"),
        ([[0.0] * 28] * 27 + [[0.0] * 27], "not one rectangular array"),
    ],
)
def test_bad_images_are_refused_with_a_clear_message(images, message):
    with pytest.raises(DataError, match=message):
        preprocess_images(images)


def test_integer_images_within_0_255_read_as_uint8():
    torch.testing.assert_close(preprocess_images(digits.astype(np.int64)), preprocess_images(digits))


def test_an_empty_batch_gives_an_empty_tensor():
    for empty, shape in [
        (np.zeros((0, 28, 28), np.uint8), (0, 1, 28, 28)),
        (np.zeros((0, 28, 28, 1), np.float32), (0, 1, 28, 28)),
        (torch.zeros(0, 1, 32, 32), (0, 1, 32, 32)),
    ]:
        x = preprocess_images(empty)
        assert x.dtype == torch.float32 and tuple(x.shape) == shape


def test_bfloat16_tensors_are_accepted():
    x = torch.from_numpy(digits).to(torch.bfloat16) / 255
    torch.testing.assert_close(preprocess_images(x), preprocess_images(digits))


def test_labels():
    assert preprocess_labels([1, 2, 9], 10).dtype == torch.int64
    torch.testing.assert_close(preprocess_labels(np.array([3], np.uint8), 10), torch.tensor([3]))
    with pytest.raises(DataError, match=r"\[0, 10\), got \[0, 10\]"):
        preprocess_labels([0, 10], 10)
    with pytest.raises(DataError, match="integers"):
        preprocess_labels([0.5], 10)
    with pytest.raises(DataError, match="one dimension"):
        preprocess_labels([[1]], 10)
