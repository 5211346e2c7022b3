"""Timing helpers: medians of repeats, so one noisy neighbour does not decide a row."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call takes, and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def time_repeats(fn: Callable[[], Any], repeats: int, warmup: int = 0) -> list[float]:
    """Seconds per call, for ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    return [time_once(fn)[0] for _ in range(repeats)]


def time_per_call(fn: Callable[[], Any], calls: int, blocks: int, warmup: int = 20) -> list[float]:
    """Seconds per call for very short calls: each sample is one block of ``calls`` calls, divided.

    Timing a block instead of each call keeps the clock's own cost out of microsecond numbers.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return samples
