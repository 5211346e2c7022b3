"""The artifact directory: atomic writes and run records.

Every file is written to a temporary name beside its destination and renamed into place, so a
crash (even ``kill -9``) never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlpipes.errors import UserError
from mlpipes.safety import redact_text, safe_name


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


def fsync_dir(path: str | os.PathLike) -> None:
    """Make renames inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


_HELD: dict[str, list[int]] = {}  # lock file -> [fd, holders] of the runs this process has locked


class RunBusyError(UserError):
    """Another live process holds the run's lock."""


class RunRecord:
    """One training run's folder: resolved config, per-epoch history, metrics, plots, checkpoints.

    ``runs/<name>/`` with ``config.yaml``, ``history.json``, ``metrics.json``, ``checkpoint.pt``
    and any PNGs; a ``latest`` file in ``runs/`` names the most recent run so ``--resume``
    can find it. Concurrent runs in one folder never share a run: :meth:`create` claims a new
    folder with an exclusive ``mkdir``, and a run being trained holds an ``flock`` on its
    ``lock`` file (released when the process exits, even by ``kill -9``), so a second process
    cannot resume it meanwhile.
    """

    LOCK = "lock"

    def __init__(self, root: str | os.PathLike, name: str | None = None):
        self.root = Path(root)
        self.name = safe_name(name or time.strftime("%Y%m%d-%H%M%S"), "run name")
        self.dir = self.root / self.name
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, root: str | os.PathLike, config_yaml: str) -> RunRecord:
        """A new run folder with a unique name, locked by this process; ``latest`` points to it.

        URLs in ``config_yaml`` lose their credentials before it is written.
        """
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in range(1, 10_000):
            run = cls(root, stamp if suffix == 1 else f"{stamp}-{suffix}")
            try:
                run.dir.mkdir()  # exclusive: of two processes, exactly one creates a given folder
            except FileExistsError:
                continue
            break
        else:
            raise UserError(f"{root}: could not create a new run folder (10000 runs named {stamp}-*)")
        run.acquire()
        atomic_write(run.dir / "config.yaml", redact_text(config_yaml))
        atomic_write(run.root / "latest", run.name + "\n")
        return run

    @classmethod
    def latest(cls, root: str | os.PathLike) -> RunRecord | None:
        marker = Path(root) / "latest"
        try:
            name = marker.read_text().strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        try:
            run = cls(root, name)
        except UserError:
            return None
        return run if run.dir.is_dir() else None

    @classmethod
    def resume(cls, root: str | os.PathLike) -> RunRecord | None:
        """The latest run, locked for this process (:meth:`acquire`); None if there is none."""
        run = cls.latest(root)
        return run.acquire() if run is not None else None

    def acquire(self) -> RunRecord:
        """Lock this run for this process, or raise :class:`RunBusyError` naming the process holding it.

        Re-entrant within one process (a resume after an in-process failure must not lock itself
        out); the flock is released when the last holder releases it or the process exits.
        """
        if self._lock_fd is not None:
            return self
        path = self.dir / self.LOCK
        key = str(path.absolute())
        if key in _HELD:
            _HELD[key][1] += 1
            self._lock_fd = _HELD[key][0]
            return self
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunBusyError(
                f"run {self.name} ({self.dir}) is being trained by process {holder}; wait or start a new run"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = [fd, 1]
        self._lock_fd = fd
        return self

    def release(self) -> None:
        if self._lock_fd is None:
            return
        key = str((self.dir / self.LOCK).absolute())
        self._lock_fd = None
        held = _HELD.get(key)
        if held is not None:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                os.close(held[0])  # closing releases the flock

    def __enter__(self) -> RunRecord:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

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
