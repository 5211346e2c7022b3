"""Dataset records on object storage: written through fsspec, read back verified and cached by sha256."""

from __future__ import annotations

import threading
from pathlib import Path

import fsspec
import numpy as np
import pytest

from mlpipes.errors import DataError
from mlpipes.records import Records, write_records
from mlpipes.testing import S3Server


def small_splits(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "train": {"image": rng.integers(0, 256, (250, 1, 8, 8), dtype=np.uint8), "label": np.arange(250) % 10},
        "test": {"image": rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8), "label": np.arange(40) % 10},
    }


def test_records_written_to_s3_read_back_and_cached_by_sha256(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))
    url = f"s3://{s3_env.create_bucket()}/datasets/tiny"
    splits = small_splits()
    index = write_records(url, splits, name="tiny", provenance={"test": True}, rows_per_shard=100)

    records = Records.open(url)  # endpoint and keys come from AWS_ENDPOINT_URL etc. alone
    assert records.sha256 == index["sha256"]
    loaded = records.load("train")
    np.testing.assert_array_equal(loaded["image"], splits["train"]["image"])
    np.testing.assert_array_equal(loaded["label"], splits["train"]["label"])
    cached = {p.stem for p in (tmp_path / "cache" / "shards").glob("*.parquet")}
    assert cached == {s["sha256"] for s in index["splits"]["train"]["shards"]}  # the test split is not read yet

    fs, _ = fsspec.core.url_to_fs(url)
    assert sorted(Path(p).name for p in fs.ls(url)) == sorted(
        ["index.json"] + [s["file"] for v in index["splits"].values() for s in v["shards"]]
    )
    assert [s["file"][:11] for s in index["splits"]["train"]["shards"]] == ["train-00000", "train-00001", "train-00002"]
    records.verify()


def test_a_corrupted_remote_shard_is_refused_not_cached(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))
    url = f"s3://{s3_env.create_bucket()}/datasets/tiny"
    fs, _ = fsspec.core.url_to_fs(url)
    index = write_records(url, small_splits(), name="tiny", provenance={})
    victim = index["splits"]["test"]["shards"][0]["file"]
    fs.pipe_file(f"{url}/{victim}", b"not the shard")
    with pytest.raises(DataError, match=rf"{victim}: sha256 .* does not match the index"):
        Records.open(url).load("test")
    assert not list((tmp_path / "cache").rglob("*.parquet"))


def test_ranks_filling_the_shard_cache_at_once_all_get_whole_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight readers race to cache the same remote shards: each reads intact data, no temp file is left."""
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))
    url = f"memory://race-{tmp_path.name}/tiny"
    splits = small_splits(1)
    write_records(url, splits, name="tiny", provenance={}, rows_per_shard=25)
    results, errors = [], []

    def read() -> None:
        try:
            results.append(Records.open(url).load("train")["image"])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for images in results:
        np.testing.assert_array_equal(images, splits["train"]["image"])
    files = sorted(p.name for p in (tmp_path / "cache" / "shards").iterdir())
    assert len(files) == 10 and all(f.endswith(".parquet") and not f.startswith(".") for f in files)
