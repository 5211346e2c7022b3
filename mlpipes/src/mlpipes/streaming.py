"""Batches streamed from dataset records shard by shard, for datasets larger than memory.

:class:`StreamingSource` is a batch source for :class:`mlpipes.training.Trainer` (``__len__`` and
``batches(epoch, start_step)``), like the in-memory one, but it holds only a few shards at a time.

How an epoch is cut, so that every rank can compute it alone and nothing depends on timing:

1. The split's shards are permuted by ``(seed, epoch)``; the selected rows, read in that shard
   order, form one sequence every rank agrees on.
2. Each rank takes a contiguous span of that sequence (:func:`mlpipes.distributed.share_bounds`):
   equal spans in training, so all ranks take the same number of steps; spans covering every row
   once in evaluation. A rank reads only the shards its span touches.
3. The span is grouped into windows of whole shards holding at least ``shuffle_buffer`` rows; each
   window is permuted by ``(seed, epoch, rank, world, window)``. Batches are cut across the
   windows in order, so a batch may join the tail of one window to the head of the next.

Memory is a few windows (the one being consumed, ``prefetch`` ready ones, those being loaded),
never the split. Because the window sizes are known from the index alone, ``start_step=k`` skips
the first ``k`` batches without reading their shards: a resumed epoch yields exactly the batches
an uninterrupted one would have from step ``k`` on.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mlpipes import distributed
from mlpipes.errors import ConfigError
from mlpipes.records import Records, ShardCache

DEFAULT_SHUFFLE_BUFFER = 16_384  # rows; rounded up to whole shards
DEFAULT_CACHE_BYTES = 16 << 30  # local copies of remote shards, least recently used evicted
CACHE_BYTES_ENV = "MLPIPES_CACHE_BYTES"  # overrides the default, for runs started from the command line

Rows = slice | np.ndarray  # a shard's selected rows: a contiguous range, or explicit local indices


@dataclass
class StreamStats:
    """Throughput of the current ``batches()`` call, for a progress bar."""

    samples: int = 0
    batches: int = 0
    wait_seconds: float = 0.0  # time the caller spent blocked waiting for data
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def wait_fraction(self) -> float:
        """Share of the elapsed time spent waiting for data: near 0 when loading keeps up."""
        return self.wait_seconds / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Window:
    number: int
    pieces: list[tuple[int, Rows]]  # (shard index, its selected rows in this window)
    rows: int


class StreamingSource:
    """A split of dataset records streamed as batches of CPU tensors, one rank's share per epoch.

    ``batch_size`` is the rows per batch of *this* rank. ``limit`` keeps the split's first rows;
    ``include``/``exclude`` keep or drop global row indices (a seeded validation hold-out).
    ``shuffle=True, drop_last=True`` is training (equal shares, full batches);
    ``shuffle=False, drop_last=False`` is evaluation (every selected row exactly once over all ranks).
    ``workers`` threads load shards ahead in parallel (0: one background thread), ``prefetch``
    windows wait ready (0: load in the caller, no thread). Remote shards are cached in
    ``cache_dir`` (default ``$MLPIPES_CACHE/shards``) up to ``cache_bytes`` (default
    ``$MLPIPES_CACHE_BYTES``, else 16 GiB).
    """

    def __init__(
        self,
        url: str | os.PathLike,
        split: str,
        *,
        batch_size: int,
        seed: int = 0,
        rank: int | None = None,
        world: int | None = None,
        columns: Iterable[str] | None = None,
        limit: int = 0,
        exclude: Iterable[int] | np.ndarray | None = None,
        include: Iterable[int] | np.ndarray | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        prefetch: int = 1,
        workers: int = 0,
        cache_dir: str | os.PathLike | None = None,
        cache_bytes: int | None = None,
    ):
        self.rank = distributed.rank() if rank is None else rank
        self.world = distributed.world_size() if world is None else world
        for name, value, least in (
            ("batch_size", batch_size, 1),
            ("world", self.world, 1),
            ("shuffle_buffer", shuffle_buffer, 1),
            ("limit", limit, 0),
            ("prefetch", prefetch, 0),
            ("workers", workers, 0),
        ):
            if not isinstance(value, int) or value < least:
                raise ConfigError(f"streaming {name} {value!r}: must be an integer ≥ {least}")
        if not 0 <= self.rank < self.world:
            raise ConfigError(f"streaming rank {self.rank} outside a world of {self.world}")
        self.records = Records.open(url)
        if self.records.cache is not None:  # remote: cache with the size limit asked for
            limit_bytes = _cache_bytes() if cache_bytes is None else cache_bytes
            self.records.cache = ShardCache(cache_dir, limit_bytes) if cache_dir else ShardCache.default(limit_bytes)
        self.url, self.split = str(url), split
        self.columns = self.records.columns(columns)
        self.batch_size, self.seed, self.shuffle, self.drop_last = batch_size, seed, shuffle, drop_last
        self.shuffle_buffer, self.prefetch, self.workers = shuffle_buffer, prefetch, workers
        self.stats = StreamStats()
        self._shards = self.records.shards(split)
        sizes = np.array([s["rows"] for s in self._shards], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        total = int(self._offsets[-1])
        self._end = min(limit, total) if limit else total
        self._include = self._indices(include, "include", total)
        self._exclude = self._indices(exclude, "exclude", total)
        self._counts = np.array([self._count(i) for i in range(len(self._shards))], dtype=np.int64)
        self.rows = int(self._counts.sum())  # selected rows of the split, over all ranks
        if drop_last and len(self) == 0:
            raise ConfigError(
                f"{self.url} split '{split}': {self.rows} selected rows give no full batch of {batch_size} "
                f"on each of {self.world} process(es); lower batch_size or select more rows"
            )

    @property
    def sha256(self) -> str:
        """The dataset's identity, for the weights manifest."""
        return self.records.sha256

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank in training mode)."""
        start, stop = distributed.share_bounds(self.rows, self.rank, self.world, equal=self.drop_last)
        size = stop - start
        return size // self.batch_size if self.drop_last else -(-size // self.batch_size)

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's batches of ``epoch`` from step ``start_step`` on, as dicts of CPU tensors.

        Resets :attr:`stats`. Deterministic in ``(seed, epoch, rank, world)``, whatever the timing.
        """
        steps = len(self)
        if not 0 <= start_step <= steps:
            raise ConfigError(f"start_step {start_step} outside the epoch's {steps} steps")
        windows = self._plan(epoch)
        span = sum(w.rows for w in windows)
        emit = (steps * self.batch_size if self.drop_last else span) - start_step * self.batch_size
        skip, todo, pos = start_step * self.batch_size, [], 0
        for window in windows:  # skipped windows, and those holding only dropped rows, are never read
            if pos >= skip + emit:
                break
            if pos + window.rows > skip:
                todo.append((window, max(0, skip - pos)))
            pos += window.rows
        self.stats = StreamStats()
        return self._cut(self._loaded(epoch, todo), emit)

    # ---- the epoch plan (index only, no data) ----------------------------------------------------
    def _plan(self, epoch: int) -> list[_Window]:
        order = np.arange(len(self._shards))
        if self.shuffle:
            order = _rng(self.seed, epoch).permutation(order)
        start, stop = distributed.share_bounds(self.rows, self.rank, self.world, equal=self.drop_last)
        windows: list[_Window] = []
        pieces: list[tuple[int, Rows]] = []
        held = pos = 0
        for shard in order.tolist():
            count = int(self._counts[shard])
            lo, hi = max(start, pos), min(stop, pos + count)
            if lo < hi:
                pieces.append((shard, _sub(self._selected(shard), lo - pos, hi - pos)))
                held += hi - lo
                if held >= self.shuffle_buffer:
                    windows.append(_Window(len(windows), pieces, held))
                    pieces, held = [], 0
            pos += count
            if pos >= stop:
                break
        if pieces:
            windows.append(_Window(len(windows), pieces, held))
        return windows

    def _indices(self, values: Any, name: str, total: int) -> np.ndarray | None:
        if values is None:
            return None
        ids = np.unique(np.asarray(values, dtype=np.int64).reshape(-1))
        if len(ids) and (ids[0] < 0 or ids[-1] >= total):
            raise ConfigError(f"{name} indices must lie in [0, {total}) for split '{self.split}' of {self.url}")
        return ids

    def _range(self, shard: int) -> tuple[int, int]:
        """Global rows of ``shard`` below the limit: ``[offset, hi)``."""
        offset = int(self._offsets[shard])
        return offset, max(offset, min(int(self._offsets[shard + 1]), self._end))

    def _count(self, shard: int) -> int:
        lo, hi = self._range(shard)
        if self._include is not None:
            return int(np.searchsorted(self._include, hi) - np.searchsorted(self._include, lo))
        if self._exclude is not None:
            return hi - lo - int(np.searchsorted(self._exclude, hi) - np.searchsorted(self._exclude, lo))
        return hi - lo

    def _selected(self, shard: int) -> Rows:
        """The shard's selected rows, as local indices."""
        lo, hi = self._range(shard)
        if self._include is not None:
            ids = self._include
            return ids[np.searchsorted(ids, lo) : np.searchsorted(ids, hi)] - lo
        if self._exclude is not None:
            dropped = self._exclude[np.searchsorted(self._exclude, lo) : np.searchsorted(self._exclude, hi)] - lo
            if len(dropped):
                keep = np.ones(hi - lo, dtype=bool)
                keep[dropped] = False
                return np.flatnonzero(keep)
        return slice(0, hi - lo)

    # ---- loading (in the background) -------------------------------------------------------------
    def _load_piece(self, piece: tuple[int, Rows]) -> dict[str, np.ndarray]:
        shard, rows = piece
        columns = self.records.read_shard(self._shards[shard], self.columns)
        return {c: a[rows] for c, a in columns.items()}

    def _assemble(self, epoch: int, window: _Window, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The window's rows in their shuffled order, in new (writable) arrays: one copy per row.

        Row ``j`` of the result is row ``perm[j]`` of the pieces laid end to end; each piece is
        scattered straight to its rows' places, so the pieces are never joined first.
        """
        if not self.shuffle:
            return {c: np.concatenate([p[c] for p in parts]) for c in self.columns}
        perm = _rng(self.seed, epoch, self.rank, self.world, window.number).permutation(window.rows)
        place = np.empty_like(perm)
        place[perm] = np.arange(window.rows)
        out, at = {}, 0
        for part in parts:
            n = len(part[self.columns[0]])
            for c, a in part.items():
                if c not in out:
                    out[c] = np.empty((window.rows, *a.shape[1:]), a.dtype)
                out[c][place[at : at + n]] = a
            at += n
        return out

    def _loaded(self, epoch: int, todo: list[tuple[_Window, int]]) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """``(window data, first row to use)`` in order; loaded ahead by a thread unless ``prefetch=0``."""
        if self.prefetch == 0:
            for window, begin in todo:
                yield self._assemble(epoch, window, [self._load_piece(p) for p in window.pieces]), begin
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: Any) -> None:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mlpipes-shards") if self.workers else None
            try:
                pending: deque[tuple[_Window, int, list[Future]]] = deque()
                upcoming = iter(todo)
                while True:  # with a pool, keep `workers` windows' shards loading ahead
                    while pool is not None and len(pending) < self.workers and (nxt := next(upcoming, None)):
                        pending.append((*nxt, [pool.submit(self._load_piece, p) for p in nxt[0].pieces]))
                    if pending:
                        window, begin, futures = pending.popleft()
                        parts = [f.result() for f in futures]
                    elif pool is None and (nxt := next(upcoming, None)):
                        (window, begin), parts = nxt, [self._load_piece(p) for p in nxt[0].pieces]
                    else:
                        break
                    put((self._assemble(epoch, window, parts), begin))
                    if stop.is_set():
                        return
                put(None)
            except BaseException as e:  # handed to the caller, raised there
                put(e)
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)

        thread = threading.Thread(target=produce, name="mlpipes-stream", daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):  # unblock a producer waiting to hand over a window
                while True:
                    ready.get_nowait()
            thread.join()

    # ---- batches ---------------------------------------------------------------------------------
    def _cut(self, loaded: Iterator[tuple[dict[str, np.ndarray], int]], emit: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of ``batch_size`` rows (the last one smaller only in evaluation), ``emit`` rows in all.

        A batch that spans two windows joins the tail of one to the head of the next.
        """
        carry: list[dict[str, np.ndarray]] = []
        held = 0  # rows in carry
        try:
            while emit > 0:
                waited = time.perf_counter()
                item = next(loaded, None)
                self.stats.wait_seconds += time.perf_counter() - waited
                if item is None:
                    return
                data, at = item
                rows = len(data[self.columns[0]])
                while at < rows and emit > 0:
                    target = min(self.batch_size, emit)
                    n = min(target - held, rows - at)
                    part = {c: data[c][at : at + n] for c in self.columns}
                    at += n
                    if held == 0 and n == target:
                        yield self._emit(part)
                        emit -= n
                        continue
                    carry.append(part)
                    held += n
                    if held == target:
                        yield self._emit({c: np.concatenate([p[c] for p in carry]) for c in self.columns})
                        emit, carry, held = emit - target, [], 0
        finally:
            loaded.close()  # type: ignore[attr-defined]

    def _emit(self, columns: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        batch = {c: torch.from_numpy(a) for c, a in columns.items()}
        self.stats.batches += 1
        self.stats.samples += len(next(iter(columns.values())))
        return batch


def _cache_bytes() -> int:
    from mlpipes.budgets import budget

    return budget(CACHE_BYTES_ENV, DEFAULT_CACHE_BYTES)


def _rng(*key: int) -> np.random.Generator:
    """A generator seeded by a tuple of integers (negative seeds folded into 64 bits)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([k % (1 << 64) for k in key])))


def _sub(rows: Rows, lo: int, hi: int) -> Rows:
    if isinstance(rows, slice):
        return slice(rows.start + lo, rows.start + hi)
    return rows[lo:hi]
