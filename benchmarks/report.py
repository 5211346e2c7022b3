"""The results table (terminal and Markdown) and the JSON file a suite run leaves behind."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.registry import ERROR, MET, MISSED, NOT_AVAILABLE, REPORT

STATUSES = (MET, MISSED, REPORT, NOT_AVAILABLE, ERROR)


def format_value(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "never" if unit == "s" else "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}"


def table_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """(row, metric, value, target, status) lines from the JSON rows; a row without metrics is one line."""
    lines = []
    for r in rows:
        if not r["metrics"]:
            lines.append((r["name"], r["title"], "", r["target"], f"{r['status']} ({r['reason']})"))
            continue
        for i, m in enumerate(r["metrics"]):
            value = format_value(m["value"], m["unit"])
            lines.append((r["name"] if i == 0 else "", m["name"], value, m["target"] or "", m["status"]))
    return lines


def text_table(rows: list[dict[str, Any]]) -> str:
    header = ("row", "metric", "value", "target", "status")
    lines = [header, *table_rows(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1]), line[2].rjust(widths[2]), line[3].ljust(widths[3])]
        out.append("  ".join([*cells, line[4]]).rstrip())
    return "\n".join(out)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    out = ["| row | metric | value | target | status |", "| --- | --- | ---: | --- | --- |"]
    for line in table_rows(rows):
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |")
    return "\n".join(out)


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(r["status"] == status for r in rows) for status in STATUSES}


def summary_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)
