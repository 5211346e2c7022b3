"""scikit-learn's breast-cancer table to dataset records, and record batches to model input.

The table comes from inside the scikit-learn wheel (no download). It is split once, stratified
and seeded, and written as one float32 column per feature (``FEATURES``: scikit-learn's names as
identifiers) plus ``label``, so pandas, DuckDB or Spark read the Parquet shards as they are.
"""

import hashlib

import numpy as np
import torch

from breast_cancer.config import FEATURES, BreastCancerConfig
from mlpipes.commands import existing_records
from mlpipes.records import Records, write_records
from mlpipes.splits import stratified_split


def save_datasets(config: BreastCancerConfig, force: bool = False) -> Records:
    """The bundled table → train/test records at ``config.records_url``; a no-op when they are up to date."""
    import sklearn.datasets

    table = sklearn.datasets.load_breast_cancer()
    sha = hashlib.sha256(table.data.tobytes() + table.target.tobytes()).hexdigest()  # the table as loaded
    provenance = dict(sklearn=sklearn.__version__, sha256=sha, test_per_class=config.test_per_class, seed=config.seed)
    if not force and (found := existing_records(config.records_url, provenance)):
        return found
    columns = {"label": table.target.astype(np.int64), **dict(zip(FEATURES, table.data.T.astype(np.float32)))}
    halves = zip(("train", "test"), stratified_split(columns["label"], config.test_per_class, config.seed))
    splits = {split: {name: values[rows] for name, values in columns.items()} for split, rows in halves}
    write_records(config.records_url, splits, name=config.pipeline, provenance=provenance)
    return Records.open(config.records_url)


def batch_inputs(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Record columns → the model's float32 input (N, 30), features in ``FEATURES`` order."""
    return torch.stack([batch[name] for name in FEATURES], dim=1).float()
