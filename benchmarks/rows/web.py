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


@row("browser", "browser: ORT-web wasm in headless chromium", "per image <= 0.3 ms; model load <= 0.5 s")
def browser(bench: Bench) -> list[Metric]:
    try:
        from mlpipes.browser import chromium_path, page_benchmark
        from mlpipes.commands import export_onnx
    except ImportError as e:
        raise NotAvailable(f"web app driver not importable ({e}); it comes with issue 5 (branch web)") from None
    if not (WEB / "index.html").exists():
        raise NotAvailable("no web app in web/: it comes with issue 5 (branch web)")
    if not any((WEB / "vendor").glob("ort*.mjs")):
        raise NotAvailable("ONNX Runtime Web is not vendored into web/vendor: run `make web`")
    if chromium_path() is None:
        raise NotAvailable("no Chromium: apt-get install -y chromium (or set $MLPIPES_CHROMIUM)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise NotAvailable("the playwright package is not installed (requirements-dev.txt)") from None

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
