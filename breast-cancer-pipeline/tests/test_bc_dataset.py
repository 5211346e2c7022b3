"""save-datasets: scikit-learn's table as named Parquet columns, split stratified and seeded, written once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import sklearn
import torch
from sklearn.datasets import load_breast_cancer

from breast_cancer import FEATURES, BreastCancerConfig
from breast_cancer.dataset import batch_inputs, save_datasets
from mlpipes.records import Records


def test_feature_identifiers_are_scikit_learns_names():
    assert [name.replace(" ", "_") for name in load_breast_cancer().feature_names] == list(FEATURES)


def test_records_are_named_columns_that_pandas_reads_without_mlpipes(bc_config):
    folder = Path(bc_config.records_url)
    frames = {split: pq.read_table(next(folder.glob(f"{split}-*.parquet"))).to_pandas() for split in ("train", "test")}
    for frame in frames.values():
        assert list(frame.columns) == ["label", *FEATURES] and frame.index.name is None
        assert frame.index.equals(frame.reset_index(drop=True).index)  # a plain 0..N-1 index, nothing stored
        assert all(frame[name].dtype == np.float32 for name in FEATURES) and frame["label"].dtype == np.int64
    assert (len(frames["train"]), len(frames["test"])) == (455, 114)
    assert frames["test"]["label"].value_counts().to_dict() == {0: 57, 1: 57}  # stratified: 57 of each class

    table = load_breast_cancer()  # every case lands in exactly one split, values unchanged
    stored = np.concatenate([frames[s][list(FEATURES)].to_numpy() for s in ("train", "test")])
    expected = table.data.astype(np.float32)
    assert np.array_equal(stored[np.lexsort(stored.T)], expected[np.lexsort(expected.T)])


def test_provenance_names_the_table_and_the_split(bc_config):
    index = Records.open(bc_config.records_url).index
    table = load_breast_cancer()
    sha = hashlib.sha256(table.data.tobytes() + table.target.tobytes()).hexdigest()
    assert index["provenance"] == {"sklearn": sklearn.__version__, "sha256": sha, "test_per_class": 57, "seed": 0}
    assert index["name"] == "breast_cancer"


def test_up_to_date_records_are_kept_and_other_inputs_rewrite_them(tmp_path):
    config = BreastCancerConfig(artifact_dir=str(tmp_path))
    first = save_datasets(config)
    index = Path(config.records_url) / "index.json"
    stamp = index.stat().st_mtime_ns
    assert save_datasets(config).sha256 == first.sha256 and index.stat().st_mtime_ns == stamp  # a no-op
    assert save_datasets(config, force=True).sha256 == first.sha256  # same inputs, same bytes
    assert index.stat().st_mtime_ns != stamp

    reseeded = save_datasets(BreastCancerConfig(artifact_dir=str(tmp_path), seed=1))
    assert reseeded.sha256 != first.sha256 and reseeded.index["provenance"]["seed"] == 1


def test_batch_inputs_stack_the_features_in_order(bc_config):
    columns = Records.open(bc_config.records_url).load("test", limit=5)
    inputs = batch_inputs({name: torch.from_numpy(values) for name, values in columns.items()})
    assert inputs.shape == (5, 30) and inputs.dtype == torch.float32
    assert np.array_equal(inputs[:, 3].numpy(), columns["mean_area"])


def test_a_test_split_larger_than_a_class_is_refused(tmp_path, bc_cli, capsys):
    assert bc_cli("save-datasets", "--artifact-dir", tmp_path, "--test-per-class", 300) == 1
    assert "need more than 300" in capsys.readouterr().err
    assert not (tmp_path / "datasets" / "breast_cancer" / "index.json").exists()
