"""Row about the browser: ONNX Runtime Web (wasm) in headless chromium, via the web app's in-page benchmark."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, row

REPO = Path(__file__).resolve().parents[2]


@row("browser", "browser: ORT-web wasm in headless chromium", "per image <= 0.3 ms; model load <= 0.5 s")
def browser(bench: Bench) -> list[Metric]:
    if not (REPO / "web" / "index.html").exists():
        raise NotAvailable("no web app in web/: it comes with issue 5 (branch web)")
    raise NotAvailable("the web app has no in-page benchmark yet (issue 5)")
