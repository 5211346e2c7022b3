import gzip

import numpy as np
import pytest

from mlpipes.errors import ConfigError, DataError
from mnist import MnistConfig
from mnist.dataset import RAW_FILES, load_split, read_idx, save_datasets


def test_records_hold_real_mnist(mnist_config):
    images, labels = load_split(mnist_config, "train")
    assert images.shape == (60_000, 1, 28, 28) and str(images.dtype) == "torch.uint8"
    assert labels[0].item() == 5  # MNIST's first training image is a 5
    test_images, _ = load_split(mnist_config, "test", limit=100)
    assert test_images.shape == (100, 1, 28, 28)


def test_raw_files_are_cached_and_verified(mnist_config):
    for name in RAW_FILES:
        assert (mnist_config.raw_dir / name).exists()


def test_same_inputs_again_is_a_no_op_unless_forced(mnist_config):
    index = mnist_config.artifacts / "datasets" / "mnist" / "index.json"
    before = index.stat().st_mtime_ns
    save_datasets(mnist_config)
    assert index.stat().st_mtime_ns == before
    save_datasets(mnist_config, force=True)
    assert index.stat().st_mtime_ns != before


def test_another_image_size_is_refused_before_anything_is_fetched(tmp_path):
    config = MnistConfig(artifact_dir=str(tmp_path), image_size=32)
    with pytest.raises(ConfigError, match=r"key 'image_size': MNIST's records keep its 28x28 digits, got 32"):
        save_datasets(config)
    assert not any(tmp_path.iterdir())  # nothing downloaded, nothing written


def test_no_usable_mirror_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_MIRROR", raising=False)
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not mnist"))
    config = MnistConfig(artifact_dir=str(tmp_path / "a"), mirrors=(str(tmp_path / "empty"), str(bad)))
    with pytest.raises(DataError) as error:
        save_datasets(config)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and "empty" in message and "bad-mirror" in message
    assert "sha256" in message and "MNIST_MIRROR" in message


def test_environment_mirror_is_tried_first(tmp_path, monkeypatch, mnist_mirror):
    monkeypatch.setenv("MNIST_MIRROR", mnist_mirror)
    config = MnistConfig(artifact_dir=str(tmp_path / "a"), mirrors=("/nonexistent/mirror",))
    records = save_datasets(config)
    assert records.rows("test") == 10_000


def test_read_idx_rejects_malformed_files(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + bytes(range(5)))
    np.testing.assert_array_equal(read_idx(path), np.arange(5, dtype=np.uint8))
    path.write_bytes(b"\x00\x00\x08\x01" + (9).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DataError, match="header promises shape"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        read_idx(path)
