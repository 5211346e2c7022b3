import json

import numpy as np
import pytest

from mlpipes.errors import DataError
from mlpipes.records import Records, write_records


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    splits = {
        "train": {"image": rng.integers(0, 256, (1003, 28, 28), dtype=np.uint8), "label": rng.integers(0, 10, 1003)},
        "test": {"image": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), "label": rng.integers(0, 10, 50)},
    }
    index = write_records(tmp_path / "ds", splits, name="demo", provenance={"source": "random"}, rows_per_shard=300)
    return tmp_path / "ds", splits, index


def test_round_trip_is_exact_and_images_stay_uint8(dataset):
    folder, splits, _ = dataset
    records = Records.open(folder)
    for split, columns in splits.items():
        loaded = records.load(split)
        assert loaded["image"].dtype == np.uint8 and loaded["image"].shape == columns["image"].shape
        np.testing.assert_array_equal(loaded["image"], columns["image"])
        np.testing.assert_array_equal(loaded["label"], columns["label"])


def test_index_records_rows_schema_shard_hashes_and_provenance(dataset):
    folder, _, index = dataset
    on_disk = json.loads((folder / "index.json").read_text())
    assert on_disk == index
    assert on_disk["splits"]["train"]["rows"] == 1003
    assert [s["rows"] for s in on_disk["splits"]["train"]["shards"]] == [300, 300, 300, 103]
    assert all(len(s["sha256"]) == 64 for s in on_disk["splits"]["train"]["shards"])
    assert on_disk["schema"]["image"] == {"dtype": "|u1", "shape": [28, 28]}
    assert on_disk["provenance"] == {"source": "random"}
    assert len(on_disk["sha256"]) == 64


def test_same_content_gives_the_same_dataset_hash(dataset, tmp_path):
    _, splits, index = dataset
    again = write_records(tmp_path / "again", splits, name="demo", provenance={"source": "random"}, rows_per_shard=300)
    assert again["sha256"] == index["sha256"]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_stream_gives_each_rank_an_equal_disjoint_share(dataset, world_size):
    folder, splits, _ = dataset
    records = Records.open(folder)
    shares = []
    for rank in range(world_size):
        labels = np.concatenate([batch["label"] for batch in records.stream("train", rank, world_size)])
        images = np.concatenate([batch["image"] for batch in records.stream("train", rank, world_size)])
        shares.append((labels, images))
    sizes = {len(labels) for labels, _ in shares}
    assert sizes == {1003 // world_size}
    stacked = np.concatenate([images for _, images in shares])
    np.testing.assert_array_equal(stacked, splits["train"]["image"][: len(stacked)])  # disjoint, in order


def test_corrupted_shard_fails_naming_the_shard(dataset):
    folder, _, index = dataset
    shard = folder / index["splits"]["train"]["shards"][2]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train-00002-of-00004\.parquet: sha256 .* does not match"):
        Records.open(folder).load("train")
    assert len(Records.open(folder).load("test")["label"]) == 50  # other splits still load


def test_truncated_shard_fails_naming_the_shard(dataset):
    folder, _, index = dataset
    shard = folder / index["splits"]["test"]["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataError, match=r"test-00000-of-00001\.parquet.*truncated \(100 of"):
        Records.open(folder).load("test")


def test_missing_index_or_split_is_a_clear_error(dataset, tmp_path):
    folder, _, _ = dataset
    with pytest.raises(DataError, match="no index.json here"):
        Records.open(tmp_path / "empty")
    with pytest.raises(DataError, match="no split 'validation' \\(has: train, test\\)"):
        Records.open(folder).load("validation")
