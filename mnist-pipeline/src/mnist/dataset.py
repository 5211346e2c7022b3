"""MNIST from its canonical IDX files to dataset records, and records back into memory.

The four files are fetched from the first mirror that has them (a folder or any fsspec URL),
verified by the sha256 of their decompressed bytes, and cached in ``<artifacts>/raw``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import fsspec
import numpy as np
import torch
from tqdm.auto import tqdm

from mlpipes.artifacts import atomic_write, sha256_bytes, sha256_file
from mlpipes.errors import DataError
from mlpipes.records import Records, write_records
from mnist.config import MIRROR_ENV, MnistConfig

RAW_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def mirrors(config: MnistConfig) -> list[str]:
    """The mirrors to try, in order: ``$MNIST_MIRROR`` (if set) first, then the config's."""
    extra = [m for m in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if m]
    return extra + list(config.mirrors)


def fetch_raw(config: MnistConfig) -> dict[str, Path]:
    """Each raw IDX file, from the cache if valid, else from the first mirror that has it."""
    paths = {}
    for name, sha256 in RAW_FILES.items():
        path = config.raw_dir / name
        if not (path.exists() and sha256_file(path) == sha256):
            atomic_write(path, _download(name, sha256, mirrors(config)))
        paths[name] = path
    return paths


def _download(name: str, sha256: str, urls: list[str]) -> bytes:
    tried = []
    for mirror in urls:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        try:
            with fsspec.open(url, "rb") as f:
                data = f.read()
            data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (OSError, EOFError, ValueError, ImportError) as e:
            tried.append(f"{url} ({type(e).__name__}: {str(e)[:80]})")
            continue
        got = sha256_bytes(data)
        if got == sha256:
            return data
        tried.append(f"{url} (sha256 {got[:12]}…, expected {sha256[:12]}…)")
    raise DataError(
        f"could not fetch {name} from any mirror; tried: {'; '.join(tried) or 'no mirrors configured'}. "
        f"Set ${MIRROR_ENV} to a folder or URL holding the MNIST .gz files."
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (the MNIST format: magic, dimensions, then raw uint8 data) as a numpy array."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise DataError(f"{path}: {len(data) - offset} data bytes, header promises shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def save_datasets(config: MnistConfig, force: bool = False) -> Records:
    """Raw IDX files → train/test records; a no-op when the records already hold the same inputs.

    The records go to ``config.records_url``: the artifact directory, or any fsspec URL given as
    ``dataset_url`` (``s3://bucket/datasets/mnist`` uploads them for training elsewhere).
    """
    out = config.records_url
    provenance = {name: {"file": f"{name}.gz", "sha256": sha} for name, sha in RAW_FILES.items()}
    if not force:
        try:
            existing = Records.open(out)
        except DataError:
            existing = None  # missing or unreadable: (re)write below
        if existing is not None and existing.index.get("provenance") == provenance:
            return existing
    raw = fetch_raw(config)
    splits = {}
    for split, (images, labels) in tqdm(SPLIT_FILES.items(), desc="records", unit="split", leave=False):
        splits[split] = {"image": read_idx(raw[images]), "label": read_idx(raw[labels]).astype(np.int64)}
    write_records(out, splits, name=config.pipeline, provenance=provenance)
    return Records.open(out)


def load_split(config: MnistConfig, split: str, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's first ``limit`` examples (0: all) as uint8 images (N,1,H,W) and int64 labels (N,)."""
    columns = Records.open(config.records_url).load(split)
    images, labels = columns["image"], columns["label"]
    if limit:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
