"""The registry of benchmark rows, and how a row's measurement is judged against its target.

A row is a small function ``def row(bench: Bench) -> list[Metric]`` registered with ``@row``.
It measures, and returns one or more metrics, each with an optional target. A row whose
dependency is missing raises :class:`NotAvailable`; it is reported as "not available (reason)",
never as met. Any other exception is reported as an error, so one broken row does not hide the rest.
"""

from __future__ import annotations

import math
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MET, MISSED, REPORT, NOT_AVAILABLE, ERROR = "met", "missed", "report", "not available", "error"


class NotAvailable(Exception):
    """Raised by a row whose dependency (a module, a branch, a browser) is not here; the message says which."""


@dataclass(frozen=True)
class Target:
    """``value <op> bound``, e.g. ``Target("<=", 30)`` for "at most 30 s"."""

    op: Literal["<=", ">="]
    bound: float

    def met(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass
class Metric:
    """One measured number; ``samples`` are the repeats whose median is ``value``."""

    name: str
    value: float
    unit: str
    target: Target | None = None
    samples: list[float] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.target is None:
            return REPORT
        return MET if self.target.met(self.value) else MISSED

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = str(self.target) if self.target else None
        out["value"] = self.value if math.isfinite(self.value) else None  # JSON has no inf/nan
        out["status"] = self.status
        return out


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    target: str  # the target in words, as the issue states it
    fn: Callable[..., list[Metric]]


@dataclass
class RowResult:
    row: Row
    status: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.row.name,
            "title": self.row.title,
            "target": self.row.target,
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 2),
            # CPU time of this process and its children over wall time: about the cores the row got.
            # Near 2 for multi-threaded work on a quiet 2-core machine; far less when others compete.
            "cpu_seconds": round(self.cpu_seconds, 2),
            "cores_used": round(self.cpu_seconds / self.seconds, 2) if self.seconds else None,
            "metrics": [m.to_json() for m in self.metrics],
            "details": self.details,
        }


ROWS: dict[str, Row] = {}


def row(name: str, title: str, target: str) -> Callable[[Callable[..., list[Metric]]], Callable[..., list[Metric]]]:
    """Register a benchmark row under ``name`` (the name ``--only`` selects)."""

    def register(fn: Callable[..., list[Metric]]) -> Callable[..., list[Metric]]:
        if name in ROWS:
            raise ValueError(f"benchmark row '{name}' registered twice ({ROWS[name].fn.__module__}, {fn.__module__})")
        ROWS[name] = Row(name, title, target, fn)
        return fn

    return register


def row_status(metrics: list[Metric]) -> str:
    """A row meets its target only when every targeted metric does; untargeted rows just report."""
    statuses = {m.status for m in metrics}
    if MISSED in statuses:
        return MISSED
    if MET in statuses:
        return MET
    return REPORT


def cpu_seconds() -> float:
    """User plus system CPU time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_row(row: Row, bench: Any) -> RowResult:
    """Run one row, turning NotAvailable and errors into results instead of exceptions."""
    bench.details = {}
    start, cpu_start = time.perf_counter(), cpu_seconds()
    try:
        metrics = row.fn(bench)
        status, reason = (row_status(metrics), "") if metrics else (ERROR, "row measured nothing")
    except NotAvailable as e:
        metrics, status, reason = [], NOT_AVAILABLE, str(e)
    except Exception as e:  # a broken row must not stop the suite; the traceback goes into the results
        metrics, status, reason = [], ERROR, f"{type(e).__name__}: {e}"
        bench.details = {"traceback": traceback.format_exc(limit=6)}
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    return RowResult(row, status, metrics, dict(bench.details), reason, seconds, cpu)
