"""The artifact directory: atomic writes and run records.

Every file is written to a temporary name beside its destination and renamed into place, so a
crash (even ``kill -9``) never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the file the mode a plain open() would
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RunRecord:
    """One training run's folder: resolved config, per-epoch history, metrics, plots, checkpoints.

    ``runs/<name>/`` with ``config.yaml``, ``history.json``, ``metrics.json``, ``checkpoint.pt``
    and any PNGs; a ``latest`` file in ``runs/`` names the most recent run so ``--resume``
    can find it.
    """

    def __init__(self, root: str | os.PathLike, name: str | None = None):
        self.root = Path(root)
        self.name = name or time.strftime("%Y%m%d-%H%M%S")
        self.dir = self.root / self.name

    @classmethod
    def create(cls, root: str | os.PathLike, config_yaml: str) -> RunRecord:
        run = cls(root)
        suffix = 1
        while run.dir.exists():
            suffix += 1
            run = cls(root, f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}")
        run.dir.mkdir(parents=True)
        atomic_write(run.dir / "config.yaml", config_yaml)
        atomic_write(run.root / "latest", run.name + "\n")
        return run

    @classmethod
    def latest(cls, root: str | os.PathLike) -> RunRecord | None:
        marker = Path(root) / "latest"
        if not marker.exists():
            return None
        run = cls(root, marker.read_text().strip())
        return run if run.dir.is_dir() else None

    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def history(self) -> list[dict[str, Any]]:
        file = self.path("history.json")
        return read_json(file) if file.exists() else []

    def write_history(self, history: list[dict[str, Any]]) -> None:
        write_json(self.path("history.json"), history)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path("metrics.json"), metrics)
