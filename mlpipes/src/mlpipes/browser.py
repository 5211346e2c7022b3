"""Drive the web app in a real headless Chromium: for its tests and the in-page benchmark.

Uses Python Playwright with the system's Chromium (Debian's ``chromium`` package, never a
browser download), launched with flags that keep it off the network, in a fresh profile.

    from mlpipes.browser import page_benchmark
    page_benchmark("web", ["~/.mlpipes/mnist/weights"], runs=1000)
    # {'median_ms': ..., 'load_ms': ..., 'runs': 1000, ...} per pipeline
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from mlpipes.errors import UserError

CHROMIUM_ENV = "MLPIPES_CHROMIUM"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """``$MLPIPES_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH; None if absent."""
    for candidate in (os.environ.get(CHROMIUM_ENV), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextlib.contextmanager
def chromium(viewport: tuple[int, int] = (960, 720)) -> Iterator[Any]:
    """A Playwright browser context on the system Chromium with a throw-away profile."""
    executable = chromium_path()
    if executable is None:
        raise UserError("no Chromium found: apt-get install -y chromium (or set $MLPIPES_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mlpipes-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]},
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


def open_app(context: Any, url: str, timeout_ms: int = 60_000) -> Any:
    """A page of the web app at ``url``, once its models have loaded (page errors raise)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.app !== undefined", timeout=timeout_ms)
    try:
        page.evaluate("window.app.ready")
    except Exception as e:
        raise UserError(f"{url}: the page failed to start ({e}); page errors: {errors}") from None
    return page


def page_benchmark(
    root: str | os.PathLike, models: Sequence[str | os.PathLike] = (), runs: int = 1000, threads: int = 1
) -> list[dict[str, Any]]:
    """The in-page benchmark for every served model: median single-image latency and load time.

    Serves ``root`` with ``models`` on a free loopback port, opens it in headless Chromium and
    calls ``app.benchmark(pipeline, {runs})`` (``runs`` single-image predictions after warm-up).
    """
    with served_app(root, models, threads) as page:
        pipelines = page.evaluate("Object.keys(window.app.state.models)")
        return [
            page.evaluate("([p, runs]) => window.app.benchmark(p, {runs})", [pipeline, runs]) for pipeline in pipelines
        ]


@contextlib.contextmanager
def served_app(root: str | os.PathLike, models: Sequence[str | os.PathLike] = (), threads: int = 1) -> Iterator[Any]:
    """The web app in ``root`` with ``models``, served on a free loopback port and open in headless Chromium."""
    from mlpipes.serve import make_server, serve_in_thread

    server = make_server(root, models, port=0)
    serve_in_thread(server)  # before the try: shutdown() waits for a serving loop, so it needs one running
    try:
        with chromium() as context:
            yield open_app(context, f"http://127.0.0.1:{server.server_address[1]}/?threads={threads}")
    finally:
        server.shutdown()
        server.server_close()
