"""Dataset records: exact round trips, self-describing shards, and every tampering refused."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlpipes.errors import DataError
from mlpipes.records import INDEX, Records, RecordsWriter, ShardCache, index_sha256, write_records


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    splits = {
        "train": {"image": rng.integers(0, 256, (1003, 28, 28), dtype=np.uint8), "label": rng.integers(0, 10, 1003)},
        "test": {"image": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), "label": rng.integers(0, 10, 50)},
    }
    index = write_records(tmp_path / "ds", splits, name="demo", provenance={"source": "random"}, rows_per_shard=300)
    return tmp_path / "ds", splits, index


def edit_index(folder: Path, edit, rehash: bool = True) -> None:
    """Change index.json as an attacker or a careless hand would; ``rehash`` also fixes its own sha256."""
    index = json.loads((folder / INDEX).read_text())
    edit(index)
    if rehash:
        index["sha256"] = index_sha256(index)
    (folder / INDEX).write_text(json.dumps(index))


def test_round_trip_is_exact_and_images_stay_uint8(dataset):
    folder, splits, _ = dataset
    records = Records.open(folder)
    for split, columns in splits.items():
        loaded = records.load(split)
        assert loaded["image"].dtype == np.uint8 and loaded["image"].shape == columns["image"].shape
        np.testing.assert_array_equal(loaded["image"], columns["image"])
        np.testing.assert_array_equal(loaded["label"], columns["label"])
        assert loaded["image"].flags.writeable and loaded["label"].flags.writeable  # torch.from_numpy needs it
    records.verify()


def test_load_a_few_columns_and_the_first_rows(dataset):
    folder, splits, _ = dataset
    records = Records.open(folder)
    first = records.load("train", columns=["label"], limit=450)
    assert list(first) == ["label"]
    np.testing.assert_array_equal(first["label"], splits["train"]["label"][:450])
    with pytest.raises(DataError, match=r"no column \['pixels'\] \(has: image, label\)"):
        records.load("train", columns=["pixels"])


def test_index_records_rows_schema_shard_hashes_and_provenance(dataset):
    folder, _, index = dataset
    on_disk = json.loads((folder / INDEX).read_text())
    assert on_disk == index
    assert on_disk["format"] == "mlpipes.records/2"
    assert on_disk["splits"]["train"]["rows"] == 1003
    assert [s["rows"] for s in on_disk["splits"]["train"]["shards"]] == [300, 300, 300, 103]
    assert all(len(s["sha256"]) == 64 for s in on_disk["splits"]["train"]["shards"])
    assert on_disk["schema"]["image"] == {"dtype": "|u1", "shape": [28, 28]}
    assert on_disk["provenance"] == {"source": "random"}
    assert on_disk["sha256"] == index_sha256(on_disk)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [INDEX] + [s["file"] for v in index["splits"].values() for s in v["shards"]]
    )


def test_same_content_gives_the_same_dataset_hash(dataset, tmp_path):
    _, splits, index = dataset
    again = write_records(tmp_path / "again", splits, name="demo", provenance={"source": "random"}, rows_per_shard=300)
    assert again["sha256"] == index["sha256"]


def test_tabular_shards_are_named_columns_any_parquet_reader_understands(tmp_path):
    rng = np.random.default_rng(1)
    features = {f"feature_{i}": rng.random(40, dtype=np.float32) for i in range(30)}
    write_records(tmp_path / "tab", {"train": {**features, "label": np.arange(40) % 2}}, name="tab", provenance={})
    shard = next((tmp_path / "tab").glob("train-*.parquet"))
    table = pq.read_table(shard)  # no index.json, no mlpipes type needed for these columns
    assert table.column_names == [*features, "label"]
    assert str(table.schema.field("feature_3").type) == "float" and str(table.schema.field("label").type) == "int64"
    np.testing.assert_array_equal(table.column("feature_3").to_numpy(), features["feature_3"])
    pandas = pytest.importorskip("pandas")  # optional here; the Arrow table above is what pandas converts
    frame = table.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == [*features, "label"]


def test_array_columns_carry_their_dtype_and_shape_in_the_shard(dataset):
    folder, _, index = dataset
    schema = pq.read_schema(folder / index["splits"]["test"]["shards"][0]["file"])
    field = schema.field("image")
    assert field.type.extension_name == "mlpipes.tensor"
    assert json.loads(field.type.__arrow_ext_serialize__()) == {"dtype": "|u1", "shape": [28, 28]}


def test_float_arrays_of_any_rank_round_trip(tmp_path):
    data = {"x": np.linspace(0, 1, 5 * 3 * 4 * 2, dtype=np.float32).reshape(5, 3, 4, 2), "w": np.ones(5, np.float64)}
    write_records(tmp_path / "f", {"all": data}, name="f", provenance={}, rows_per_shard=2)
    loaded = Records.open(tmp_path / "f").load("all")
    np.testing.assert_array_equal(loaded["x"], data["x"])
    assert loaded["x"].dtype == np.float32 and loaded["w"].dtype == np.float64


def test_an_empty_split_is_written_and_loads_empty(tmp_path):
    write_records(tmp_path / "e", {"none": {"x": np.zeros((0, 2, 2), np.uint8)}}, name="e", provenance={})
    assert Records.open(tmp_path / "e").load("none")["x"].shape == (0, 2, 2)


# ---- tampering ---------------------------------------------------------------------------------


def test_an_edited_index_is_refused(dataset):
    folder, _, _ = dataset
    edit_index(folder, lambda ix: ix["provenance"].update(source="else"), rehash=False)
    with pytest.raises(DataError, match=r"index.json: content does not match its sha256.*save-datasets --force"):
        Records.open(folder)


def test_an_edited_shard_hash_is_refused(dataset):
    folder, _, _ = dataset
    edit_index(folder, lambda ix: ix["splits"]["train"]["shards"][0].update(sha256="0" * 64), rehash=False)
    with pytest.raises(DataError, match="does not match its sha256"):
        Records.open(folder)


def test_a_tampered_shape_is_refused_not_reinterpreted(dataset):
    """Even with the index's own hash recomputed, the shard's schema contradicts it."""
    folder, _, _ = dataset
    edit_index(folder, lambda ix: ix["schema"]["image"].update(shape=[14, 56]))
    records = Records.open(folder)
    with pytest.raises(
        DataError, match=r"train-00000-\w+\.parquet: column 'image' is .*'shape': \[28, 28\].*\[14, 56\]"
    ):
        records.load("train")
    with pytest.raises(DataError, match="column 'image'"):
        records.verify()


def test_a_tampered_dtype_or_column_name_is_refused(dataset):
    folder, _, _ = dataset
    edit_index(folder, lambda ix: ix["schema"]["label"].update(dtype="<f8"))
    with pytest.raises(DataError, match="column 'label' is int64"):
        Records.open(folder).load("test")
    edit_index(folder, lambda ix: ix["schema"].update(target=ix["schema"].pop("label")))
    with pytest.raises(DataError, match=r"columns \['image', 'label'\], the index says \['image', 'target'\]"):
        Records.open(folder).load("test")


@pytest.mark.parametrize("name", ["../x.parquet", "/etc/passwd", "sub/x.parquet", "..parquet", "x.json", "index.json"])
def test_shard_names_must_be_plain_file_names(dataset, name):
    folder, _, _ = dataset
    edit_index(folder, lambda ix: ix["splits"]["test"]["shards"][0].update(file=name))
    with pytest.raises(DataError, match="is not a plain '<name>.parquet'"):
        Records.open(folder)


def test_row_counts_must_add_up_and_match_the_shard(dataset):
    folder, _, _ = dataset
    edit_index(folder, lambda ix: ix["splits"]["test"].update(rows=51))
    with pytest.raises(DataError, match="shard rows add up to 50, not 51"):
        Records.open(folder)
    edit_index(
        folder, lambda ix: (ix["splits"]["test"].update(rows=49), ix["splits"]["test"]["shards"][0].update(rows=49))
    )
    with pytest.raises(DataError, match="50 rows, the index says 49"):
        Records.open(folder).load("test")


@pytest.mark.parametrize(
    "content",
    [b"{", b"[]", b'{"format": "mlpipes.records/1"}', b"\xff\xfe", b'{"format": "mlpipes.records/2", "name": 3}'],
)
def test_malformed_or_old_indexes_are_one_line_refusals(dataset, content):
    folder, _, _ = dataset
    (folder / INDEX).write_bytes(content)
    with pytest.raises(DataError, match=r"index.json: .*run save-datasets --force") as refused:
        Records.open(folder)
    assert "\n" not in str(refused.value)


def test_corrupted_shard_fails_naming_the_shard(dataset):
    folder, _, index = dataset
    shard = folder / index["splits"]["train"]["shards"][2]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{shard.name}: sha256 .* does not match"):
        Records.open(folder).load("train")
    assert len(Records.open(folder).load("test")["label"]) == 50  # other splits still load
    with pytest.raises(DataError, match=shard.name):
        Records.open(folder).verify()


def test_truncated_or_missing_shard_fails_naming_the_shard(dataset):
    folder, _, index = dataset
    shard = folder / index["splits"]["test"]["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"{shard.name}.*truncated \(100 of"):
        Records.open(folder).load("test")
    shard.unlink()
    with pytest.raises(DataError, match=rf"{shard.name}: shard missing; run save-datasets --force"):
        Records.open(folder).verify()


def test_missing_index_or_split_is_a_clear_error(dataset, tmp_path):
    folder, _, _ = dataset
    with pytest.raises(DataError, match="no index.json here"):
        Records.open(tmp_path / "empty")
    with pytest.raises(DataError, match="no split 'validation' \\(has: train, test\\)"):
        Records.open(folder).load("validation")


def test_bad_input_to_the_writer_is_refused(tmp_path):
    with pytest.raises(DataError, match="split name '../up'"):
        write_records(tmp_path / "w", {"../up": {"x": np.zeros(3)}}, name="w", provenance={})
    with pytest.raises(DataError, match="columns differ in length"):
        write_records(tmp_path / "w", {"a": {"x": np.zeros(3), "y": np.zeros(4)}}, name="w", provenance={})
    with pytest.raises(DataError, match="is not rows of numbers"):
        write_records(tmp_path / "w", {"a": {"x": np.array(["a", "b"])}}, name="w", provenance={})
    with pytest.raises(DataError, match=r"column 'x': \{'dtype': '<f4'.*differs from \{'dtype': '<f8'"):
        write_records(
            tmp_path / "w", {"a": {"x": np.zeros(3)}, "b": {"x": np.zeros(3, np.float32)}}, name="w", provenance={}
        )
    assert not (tmp_path / "w" / INDEX).exists()


# ---- writing larger than memory ----------------------------------------------------------------


def test_the_writer_holds_at_most_one_shard_and_keeps_no_caller_chunk(tmp_path):
    folder = tmp_path / "big"
    chunks_alive = []
    with RecordsWriter(folder, name="big", provenance={}, rows_per_shard=100) as writer:
        for i in range(20):  # 20 chunks of 37 rows, produced one at a time
            chunk = {"x": np.full((37, 4), i, np.uint8), "i": np.arange(i * 37, (i + 1) * 37)}
            writer.write("train", chunk)
            chunks_alive.append(weakref.ref(chunk["x"]))
            del chunk
            assert writer.buffered_rows < 100
            assert len(list(folder.glob("train-*.parquet"))) == (i + 1) * 37 // 100  # full shards flushed at once
            alive = sum(ref() is not None for ref in chunks_alive)
            assert alive <= 100 // 37 + 1  # chunks of flushed rows are released: only a shard's worth stays
            assert not (folder / INDEX).exists()
    assert [s["rows"] for s in writer.index["splits"]["train"]["shards"]] == [100] * 7 + [40]
    np.testing.assert_array_equal(Records.open(folder).load("train")["i"], np.arange(740))


def test_a_writer_stopped_by_an_error_leaves_no_dataset(tmp_path):
    with pytest.raises(RuntimeError), RecordsWriter(tmp_path / "k", name="k", provenance={}, rows_per_shard=2) as w:
        w.write("train", {"x": np.zeros(5)})
        raise RuntimeError("killed")
    with pytest.raises(DataError, match="no index.json here"):
        Records.open(tmp_path / "k")


def test_a_rewrite_keeps_the_old_dataset_whole_until_the_new_index_lands(tmp_path, monkeypatch):
    folder = tmp_path / "ds"
    old = write_records(folder, {"train": {"x": np.zeros(10)}}, name="d", provenance={"v": 1}, rows_per_shard=4)
    writer = RecordsWriter(folder, name="d", provenance={"v": 2}, rows_per_shard=4)
    writer.write("train", {"x": np.ones(10)})  # a kill here: new shards beside the old, old index intact
    np.testing.assert_array_equal(Records.open(folder).load("train")["x"], np.zeros(10))
    Records.open(folder).verify()
    new = writer.close()
    assert Records.open(folder).sha256 == new["sha256"] != old["sha256"]
    np.testing.assert_array_equal(Records.open(folder).load("train")["x"], np.ones(10))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [INDEX] + [s["file"] for s in new["splits"]["train"]["shards"]]
    )


# ---- the shard cache ---------------------------------------------------------------------------


def test_the_shard_cache_evicts_the_least_recently_used(tmp_path):
    cache = ShardCache(tmp_path / "cache", max_bytes=250)
    blobs = {name: name.encode() * 100 for name in ("a", "b", "c")}  # 100 bytes each
    shas = {name: __import__("hashlib").sha256(data).hexdigest() for name, data in blobs.items()}
    cache.put(shas["a"], blobs["a"])
    cache.put(shas["b"], blobs["b"])
    assert cache.get(shas["a"]) == blobs["a"]  # a is now the most recently used
    cache.put(shas["c"], blobs["c"])
    assert cache.get(shas["b"]) is None and cache.get(shas["a"]) == blobs["a"] and cache.get(shas["c"]) == blobs["c"]
    cache.path(shas["c"]).write_bytes(b"damaged")
    assert cache.get(shas["c"]) is None and not cache.path(shas["c"]).exists()  # a bad copy is dropped
