"""Run the benchmark suite: ``python -m benchmarks [ROW ...] [--quick] [--profile] [--list]``.

Prints the results table and writes JSON with the machine description. The full suite writes
``benchmarks/results/latest.json`` (committed); a quick run, a subset or a profiled run writes
``benchmarks/results/partial.json`` instead, so it never replaces the full results.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before anything imports tqdm: progress bars would bury the table

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import rows as _rows  # noqa: F401  (registers the rows)
from benchmarks.bench import Bench
from benchmarks.machine import describe_machine
from benchmarks.registry import ERROR, MISSED, ROWS, Row, RowResult, run_row
from benchmarks.report import markdown_table, summary, summary_line, text_table
from mlpipes.artifacts import write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", metavar="ROW", help="rows to run, by name (default: all; see --list)")
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    parser.add_argument("--quick", action="store_true", default=quick, help="fewer repeats (or $BENCH_QUICK=1)")
    parser.add_argument("--list", action="store_true", help="list the rows and their targets, then exit")
    parser.add_argument("--output", type=Path, help="where to write the JSON results (default: see above)")
    parser.add_argument(
        "--profile", action="store_true", help="run the rows under torch.profiler; tables go to results/profile-ROW.txt"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("BENCH_THREADS") or 0),
        help="torch threads in this process and its commands (default: torch's, all cores; or $BENCH_THREADS). "
        "On a machine shared with other work, 1 thread gives steadier, pessimistic numbers",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, not only on errors")
    parser.add_argument("--markdown", type=Path, metavar="JSON", help="print a results file as a Markdown table")
    return parser.parse_args(argv)


def select(names: list[str]) -> list[Row]:
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown benchmark row(s): {', '.join(unknown)}; rows: {', '.join(ROWS)}")
    return [ROWS[n] for n in names] if names else list(ROWS.values())


def run_profiled(row: Row, bench: Bench) -> RowResult:
    """Run a row under torch.profiler and write where its CPU time goes (subprocesses are not seen)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = run_row(row, bench)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
    path = RESULTS / f"profile-{row.name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# torch.profiler, row {row.name}, sorted by self CPU time\n{table}\n")
    print(f"profile written to {path}")
    return result


def run_suite(rows: list[Row], quick: bool, profile: bool, output: Path) -> dict[str, Any]:
    """Run ``rows`` in order; the JSON at ``output`` is rewritten after each, so a cut-short run leaves results."""
    started = time.perf_counter()
    report: dict[str, Any] = {
        "suite": "mlpipes benchmarks",
        "mode": "quick" if quick else "full",
        "profiled": profile,
        "complete": False,  # true once every selected row has run
        "rows_selected": [r.name for r in rows],
        "seconds": 0.0,
        "machine": describe_machine(REPO),
        "summary": {},
        "rows": [],
    }
    report["machine"]["load_average_end"] = report["machine"]["load_average_start"]
    workdir = Path(tempfile.mkdtemp(prefix="mlpipes-bench-"))
    home = os.environ.get("MLPIPES_HOME")
    os.environ["MLPIPES_HOME"] = str(workdir / "home")  # nothing a row forgets to redirect lands in ~/.mlpipes
    try:
        bench = Bench(workdir, quick=quick, profiling=profile)
        for row in rows:
            print(f"== {row.name}: {row.title} (target: {row.target})", flush=True)
            result = run_profiled(row, bench) if profile else run_row(row, bench)
            note = f" ({result.reason})" if result.reason else ""
            print(f"   {result.status}{note} in {result.seconds:.1f}s", flush=True)
            report["rows"].append(result.to_json())
            report["summary"] = summary(report["rows"])
            report["seconds"] = round(time.perf_counter() - started, 1)
            report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            report["complete"] = len(report["rows"]) == len(rows)
            write_json(output, report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if home is None:
            os.environ.pop("MLPIPES_HOME", None)
        else:
            os.environ["MLPIPES_HOME"] = home
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown:
        import json

        print(markdown_table(json.loads(args.markdown.read_text())["rows"]))
        return 0
    if args.list:
        for row in ROWS.values():
            print(f"{row.name:<22} {row.title}  [target: {row.target}]")
        return 0
    rows = select(args.rows)
    if args.threads:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the CLI runs' torch picks this up
        torch.set_num_threads(args.threads)
    complete = len(rows) == len(ROWS) and not args.quick and not args.profile
    output = args.output or RESULTS / ("latest.json" if complete else "partial.json")
    report = run_suite(rows, args.quick, args.profile, output)
    m = report["machine"]
    print(
        f"\n{m['cpu_model']}, {m['cpu_cores_usable']} cores, torch {m['versions']['torch']}, "
        f"load average {m['load_average_start'][0]} -> {m['load_average_end'][0]}, {report['mode']} run, "
        f"{report['seconds']:.0f}s"
    )
    print(text_table(report["rows"]))
    print(f"\n{summary_line(report['summary'])}; results in {output}")
    failed = report["summary"][ERROR] or (args.strict and report["summary"][MISSED])
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a killed run still removes its scratch folder
    sys.exit(main())
