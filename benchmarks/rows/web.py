"""Row about the browser: ONNX Runtime Web (wasm) in headless Chromium, via the web app's in-page benchmark.

The page times single-image ``predict()`` calls itself (``performance.now()``, cross-origin
isolated so the timer is fine-grained) and reports its model load time (fetch to session
ready); this row only serves the page with the bundled MNIST weights exported to ONNX.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, Target, row
from benchmarks.timing import median

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"


def browser_missing() -> str | None:
    """Why the web app cannot be benchmarked here, or None when everything it needs is installed."""
    try:
        from mlpipes.browser import chromium_path
    except ImportError as e:
        return f"web app driver not importable ({e}); it comes with issue 5 (branch web)"
    if not (WEB / "index.html").exists():
        return "no web app in web/: it comes with issue 5 (branch web)"
    if not any((WEB / "vendor").glob("ort*.mjs")):
        return "ONNX Runtime Web is not vendored into web/vendor: run `make web`"
    if chromium_path() is None:
        return "no Chromium: apt-get install -y chromium (or set $MLPIPES_CHROMIUM)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (requirements-dev.txt)"
    return None


@row("browser", "browser: ORT-web wasm in headless chromium", "per image <= 0.3 ms; model load <= 0.5 s")
def browser(bench: Bench) -> list[Metric]:
    missing = browser_missing()
    if missing:
        raise NotAvailable(missing)
    from mlpipes.browser import page_benchmark
    from mlpipes.commands import export_onnx

    config = bench.config("browser")
    export_onnx(config, weights="pretrained")
    runs = bench.repeats(full=1000, quick=300)
    pages = [
        next(r for r in page_benchmark(WEB, [config.weights_dir], runs=runs) if r["pipeline"] == config.pipeline)
        for _ in range(bench.repeats(full=3, quick=1))  # each a fresh browser: a cold model load every time
    ]
    latency = [p["median_ms"] for p in pages]
    load = [p["load_ms"] / 1000 for p in pages]
    bench.details["pages"] = pages
    return [
        Metric(f"per-image latency (median of {runs})", median(latency), "ms", Target("<=", 0.3), latency),
        Metric("model load (fetch to session ready)", median(load), "s", Target("<=", 0.5), load),
    ]
