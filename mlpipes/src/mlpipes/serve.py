"""A local static server for the web app and the exported models.

Serves a folder (the repository's ``web/``) at ``/`` and the ``.onnx`` files of one or more model
folders at ``/models/<file>``, with ``/models/index.json`` listing them and their preprocessing
contract, read from each file's ONNX metadata. Every response carries the COOP/COEP headers
that make the page cross-origin isolated (multi-threaded wasm, fine-grained timers), and the
MIME types browsers insist on (``application/wasm`` for streaming compilation, JavaScript for
modules). Binds to 127.0.0.1 only: this is a development server, not a public one.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mlpipes.errors import UserError

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}
HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.onnx$")


def model_index(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """Every ``.onnx`` file in ``folders`` with its metadata, by pipeline then version (newest last).

    A file name found in several folders is listed once, from the first folder.
    """
    seen: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.onnx")):
            if path.name in seen or not MODEL_NAME.match(path.name):
                continue
            stat = path.stat()
            seen[path.name] = {
                "file": path.name,
                "url": f"models/{path.name}",
                "bytes": stat.st_size,
                **_cached_metadata(str(path), stat.st_mtime_ns, stat.st_size),
            }
    return sorted(seen.values(), key=lambda m: (str(m.get("pipeline")), _version_key(m.get("model_version"))))


@functools.lru_cache(maxsize=256)
def _cached_metadata(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    from mlpipes.onnx import read_metadata

    return read_metadata(path)


def _version_key(version: Any) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", str(version or "")))


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from ``directory``; ``/models/...`` from the model folders."""

    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def __init__(self, *args: Any, models: Sequence[Path] = (), **kwargs: Any):
        self.models = list(models)
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self) -> None:
        route = self.path.split("?", 1)[0].split("#", 1)[0]
        if route == "/models/index.json":
            return self._send_json({"models": model_index(self.models)})
        if route.startswith("/models/") and route.endswith(".onnx"):
            name = route.removeprefix("/models/")
            for folder in self.models:
                if MODEL_NAME.match(name) and (folder / name).is_file():
                    return self._send_file(folder / name)
            return self.send_error(404, f"no model {name} in {', '.join(map(str, self.models))}")
        return super().do_GET()

    def _send_json(self, obj: Any) -> None:
        body = json.dumps(obj, indent=1).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_file(self, path: Path) -> None:
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", MIME_TYPES[".onnx"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("MLPIPES_SERVE_LOG"):
            super().log_message(format, *args)


def make_server(
    root: str | os.PathLike, models: Sequence[str | os.PathLike] = (), port: int = 8000, host: str = "127.0.0.1"
) -> http.server.ThreadingHTTPServer:
    """A server for ``root`` and the ``.onnx`` files in ``models`` (default: ``<root>/models``)."""
    root = Path(root)
    if not (root / "index.html").is_file():
        raise UserError(f"{root}: no index.html here; pass the web app's folder (the repository's web/)")
    folders = [Path(m).expanduser() for m in models] or [root / "models"]
    for folder in folders:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such models folder; run export-onnx, or pass --models DIR")
    handler = functools.partial(Handler, directory=str(root), models=folders)
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(server: http.server.ThreadingHTTPServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, notebooks); stop it with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
