"""The streaming batch source: equal disjoint shares, exact resume, bounded reads, verified remote shards."""

from __future__ import annotations

import threading
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpipes.errors import ConfigError, DataError
from mlpipes.records import Records, write_records
from mlpipes.streaming import StreamingSource

_DATASETS: dict[tuple[int, int], str] = {}


@pytest.fixture(scope="module")
def make_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A dataset of ``count`` rows whose column ``id`` is the global row index (built once per shape)."""

    def make(count: int, rows_per_shard: int) -> str:
        key = (count, rows_per_shard)
        if key not in _DATASETS:
            folder = tmp_path_factory.mktemp("stream")
            ids = np.arange(count)
            image = (ids[:, None, None] % 251).astype(np.uint8) * np.ones((1, 2, 3), np.uint8)
            write_records(
                folder, {"train": {"image": image, "id": ids}}, name="t", provenance={}, rows_per_shard=rows_per_shard
            )
            _DATASETS[key] = str(folder)
        return _DATASETS[key]

    return make


def epoch_ids(source: StreamingSource, epoch: int, start_step: int = 0) -> list[np.ndarray]:
    return [batch["id"].numpy() for batch in source.batches(epoch, start_step)]


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(1, 1), (17, 5), (100, 7), (257, 32), (400, 400)]),
    world=st.integers(1, 4),
    batch=st.integers(1, 9),
    workers=st.integers(0, 2),
    buffer=st.sampled_from([1, 20, 10_000]),
    epoch=st.integers(0, 3),
)
def test_training_shares_are_equal_disjoint_full_batches(make_dataset, shape, world, batch, workers, buffer, epoch):
    count = shape[0]
    url = make_dataset(*shape)
    if count // world < batch:
        with pytest.raises(ConfigError, match="no full batch"):
            StreamingSource(url, "train", batch_size=batch, rank=0, world=world)
        return
    shares = []
    for rank in range(world):
        source = StreamingSource(
            url, "train", batch_size=batch, rank=rank, world=world, workers=workers, shuffle_buffer=buffer, seed=3
        )
        batches = epoch_ids(source, epoch)
        assert len(batches) == len(source) == (count // world) // batch  # same step count on every rank
        assert all(len(b) == batch for b in batches)
        shares.append(np.concatenate(batches))
        alone = StreamingSource(
            url, "train", batch_size=batch, rank=rank, world=world, prefetch=0, shuffle_buffer=buffer, seed=3
        )
        np.testing.assert_array_equal(np.concatenate(epoch_ids(alone, epoch)), shares[-1])  # timing-independent
    taken = np.concatenate(shares)
    assert len(np.unique(taken)) == len(taken) and taken.min() >= 0 and taken.max() < count
    assert count - len(taken) == count % world + world * ((count // world) % batch)  # only remainders dropped


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(1, 1), (17, 5), (100, 7), (257, 32)]),
    world=st.integers(1, 5),
    batch=st.integers(1, 9),
    limit=st.integers(0, 300),
    holdout=st.sets(st.integers(0, 299), max_size=40),
    mode=st.sampled_from(["exclude", "include", "none"]),
)
def test_evaluation_covers_every_selected_row_exactly_once(make_dataset, shape, world, batch, limit, holdout, mode):
    count = shape[0]
    url = make_dataset(*shape)
    holdout = sorted(i for i in holdout if i < count)
    selection = {mode: holdout} if mode != "none" else {}
    expected = set(range(min(limit, count) if limit else count))
    if mode == "include":
        expected &= set(holdout)
    elif mode == "exclude":
        expected -= set(holdout)
    seen, lengths = [], []
    for rank in range(world):
        source = StreamingSource(
            url,
            "train",
            batch_size=batch,
            rank=rank,
            world=world,
            shuffle=False,
            drop_last=False,
            limit=limit,
            **selection,
        )
        batches = epoch_ids(source, 0)
        assert len(batches) == len(source)
        assert all(len(b) == batch for b in batches[:-1]) and all(0 < len(b) <= batch for b in batches)
        seen.extend(i for b in batches for i in b.tolist())
        lengths.append(sum(map(len, batches)))
    assert sorted(seen) == sorted(expected)  # no row twice, none missing
    assert max(lengths) - min(lengths) <= 1


@settings(max_examples=15, deadline=None)
@given(
    shape=st.sampled_from([(100, 7), (257, 32), (400, 400)]),
    world=st.integers(1, 3),
    batch=st.integers(1, 16),
    buffer=st.sampled_from([1, 50, 10_000]),
    shuffle=st.booleans(),
)
def test_resuming_at_any_step_gives_exactly_the_remaining_batches(make_dataset, shape, world, batch, buffer, shuffle):
    url = make_dataset(*shape)
    for rank in range(world):
        source = StreamingSource(
            url,
            "train",
            batch_size=batch,
            rank=rank,
            world=world,
            shuffle_buffer=buffer,
            shuffle=shuffle,
            drop_last=shuffle,
        )
        whole = epoch_ids(source, 1)
        steps = range(len(source) + 1)
        for step in steps if len(steps) <= 30 else [*steps[:10], *steps[-10:], *steps[10:-10:7]]:
            resumed = epoch_ids(source, 1, start_step=step)
            assert len(resumed) == len(whole) - step
            for a, b in zip(resumed, whole[step:]):
                np.testing.assert_array_equal(a, b)


def test_epochs_reshuffle_by_seed_and_repeat_exactly(make_dataset):
    url = make_dataset(257, 32)
    source = StreamingSource(url, "train", batch_size=8, shuffle_buffer=64, seed=5)
    first = np.concatenate(epoch_ids(source, 0))
    np.testing.assert_array_equal(first, np.concatenate(epoch_ids(source, 0)))
    assert not np.array_equal(first, np.concatenate(epoch_ids(source, 1)))
    other_seed = StreamingSource(url, "train", batch_size=8, shuffle_buffer=64, seed=6)
    assert not np.array_equal(first, np.concatenate(epoch_ids(other_seed, 0)))
    assert not np.array_equal(np.sort(first[:64]), np.arange(64))  # rows really are mixed


def test_batches_are_cpu_tensors_named_like_the_columns_with_their_dtypes(make_dataset):
    source = StreamingSource(make_dataset(100, 7), "train", batch_size=10, columns=["image", "id"])
    batch = next(iter(source.batches(0)))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (10, 2, 3)
    assert batch["id"].dtype == torch.int64 and batch["image"].device.type == "cpu"
    torch.testing.assert_close(batch["image"], (batch["id"] % 251).to(torch.uint8)[:, None, None].expand(10, 2, 3))
    only = StreamingSource(make_dataset(100, 7), "train", batch_size=10, columns=["id"])
    assert list(next(iter(only.batches(0)))) == ["id"]


def test_a_rank_reads_only_its_shards_and_a_resume_skips_reading(make_dataset, monkeypatch):
    url = make_dataset(400, 10)  # 40 shards
    reads: list[str] = []
    original = Records.read_shard

    def counting(self, shard, columns=None):
        reads.append(shard["file"])
        return original(self, shard, columns)

    monkeypatch.setattr(Records, "read_shard", counting)
    source = StreamingSource(url, "train", batch_size=10, rank=1, world=4, shuffle_buffer=1)
    steps = len(source)
    list(source.batches(0))
    assert len(reads) == 10  # a quarter of the shards
    reads.clear()
    list(source.batches(0, start_step=steps - 2))
    assert len(reads) == 2  # only the shards of the last two batches


def test_stats_count_samples_and_waiting(make_dataset):
    source = StreamingSource(make_dataset(257, 32), "train", batch_size=16)
    total = sum(len(b["id"]) for b in source.batches(0))
    assert source.stats.samples == total == 16 * len(source) and source.stats.batches == len(source)
    assert 0 <= source.stats.wait_seconds <= source.stats.seconds and source.stats.samples_per_second > 0


def test_stopping_early_stops_the_loader_thread(make_dataset):
    before = threading.active_count()
    source = StreamingSource(make_dataset(400, 10), "train", batch_size=4, shuffle_buffer=1, workers=2, prefetch=1)
    batches = source.batches(0)
    next(batches)
    batches.close()
    assert threading.active_count() == before


def test_a_corrupted_shard_surfaces_as_a_data_error(tmp_path):
    write_records(tmp_path / "ds", {"train": {"x": np.arange(100)}}, name="d", provenance={}, rows_per_shard=10)
    shard = sorted((tmp_path / "ds").glob("train-00007-*.parquet"))[0]
    shard.write_bytes(b"garbage")
    source = StreamingSource(tmp_path / "ds", "train", batch_size=5, shuffle=False, workers=2)
    with pytest.raises(DataError, match=rf"{shard.name}: sha256 .* does not match"):
        list(source.batches(0))


def test_bad_settings_are_refused(make_dataset):
    url = make_dataset(100, 7)
    with pytest.raises(ConfigError, match="100 selected rows give no full batch of 60 on each of 2"):
        StreamingSource(url, "train", batch_size=60, rank=0, world=2)
    with pytest.raises(ConfigError, match="rank 2 outside a world of 2"):
        StreamingSource(url, "train", batch_size=1, rank=2, world=2)
    with pytest.raises(ConfigError, match=r"exclude indices must lie in \[0, 100\)"):
        StreamingSource(url, "train", batch_size=1, exclude=[100])
    with pytest.raises(DataError, match="no column"):
        StreamingSource(url, "train", batch_size=1, columns=["label"])
    with pytest.raises(DataError, match="no split 'test'"):
        StreamingSource(url, "test", batch_size=1)
    with pytest.raises(ConfigError, match="start_step 99 outside"):
        next(StreamingSource(url, "train", batch_size=10).batches(0, start_step=99))


# ---- remote shards -----------------------------------------------------------------------------


def test_remote_shards_stream_verified_and_cached_within_the_size_limit(s3_bucket: str, tmp_path: Path):
    url = f"s3://{s3_bucket}/datasets/ids"
    ids = np.arange(600)
    index = write_records(url, {"train": {"id": ids}}, name="ids", provenance={}, rows_per_shard=100)
    shard_bytes = max(s["bytes"] for s in index["splits"]["train"]["shards"])
    cache = tmp_path / "cache"
    source = StreamingSource(
        url, "train", batch_size=50, cache_dir=cache, cache_bytes=2 * shard_bytes, shuffle_buffer=1
    )
    taken = np.concatenate(epoch_ids(source, 0))
    assert sorted(taken.tolist()) == ids.tolist()
    cached = list(cache.glob("*.parquet"))
    assert len(cached) == 2 and sum(p.stat().st_size for p in cached) <= 2 * shard_bytes  # least recently used evicted
    known = {s["sha256"] for s in index["splits"]["train"]["shards"]}
    assert {p.stem for p in cached} <= known


def test_a_corrupted_remote_shard_is_refused_and_not_cached(s3_bucket: str, tmp_path: Path):
    url = f"s3://{s3_bucket}/datasets/bad"
    index = write_records(url, {"train": {"id": np.arange(40)}}, name="bad", provenance={}, rows_per_shard=10)
    victim = index["splits"]["train"]["shards"][2]
    fs, _ = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{url}/{victim['file']}", b"not the shard")
    source = StreamingSource(url, "train", batch_size=5, shuffle=False, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=rf"{victim['file']}: sha256 .* does not match the index"):
        list(source.batches(0))
    assert victim["sha256"] not in {p.stem for p in (tmp_path / "cache").glob("*.parquet")}
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary file left either


def test_the_cache_size_comes_from_the_environment(s3_bucket: str, tmp_path: Path, monkeypatch):
    url = f"s3://{s3_bucket}/datasets/env"
    write_records(url, {"train": {"id": np.arange(20)}}, name="env", provenance={}, rows_per_shard=10)
    monkeypatch.setenv("MLPIPES_CACHE_BYTES", "12345")
    assert StreamingSource(url, "train", batch_size=5, cache_dir=tmp_path).records.cache.max_bytes == 12345
    monkeypatch.setenv("MLPIPES_CACHE_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"\$MLPIPES_CACHE_BYTES=lots: expected a positive integer"):
        StreamingSource(url, "train", batch_size=5, cache_dir=tmp_path)
