"""A local static server for the web app and the exported models.

Serves a folder (the repository's ``web/``) at ``/`` and the ``.onnx`` files of one or more model
folders at ``/models/<file>``, with ``/models/index.json`` listing them and their preprocessing
contract, read from each file's ONNX metadata. Every response carries the COOP/COEP headers
that make the page cross-origin isolated (multi-threaded wasm, fine-grained timers), and the
MIME types browsers insist on (``application/wasm`` for streaming compilation, JavaScript for
modules). Binds to 127.0.0.1 only: this is a development server, not a public one; still, no
client can hold it (timeouts, a connection cap), list a folder, or read outside the folders.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
import time
import urllib.parse
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
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.onnx$")


log = logging.getLogger(__name__)
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def model_index(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """Every ``.onnx`` file in ``folders`` with its metadata, by pipeline then version (newest last).

    A file name found in several folders is listed once, from the first folder. A file that is not
    a readable model is listed with an ``error`` (and logged) instead of taking the index down.
    """
    seen: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.onnx")):
            if path.name in seen or not MODEL_NAME.match(path.name):
                continue
            try:
                stat = path.stat()
            except OSError:  # removed since the listing
                continue
            if not stat_is_file(stat):
                continue
            metadata = _cached_metadata(str(path), stat.st_mtime_ns, stat.st_size)
            seen[path.name] = {**metadata, "file": path.name, "url": f"models/{path.name}", "bytes": stat.st_size}
    return sorted(seen.values(), key=lambda m: (str(m.get("pipeline")), _version_key(m.get("model_version"))))


def stat_is_file(stat: os.stat_result) -> bool:
    import stat as stat_module

    return stat_module.S_ISREG(stat.st_mode)


@functools.lru_cache(maxsize=256)
def _cached_metadata(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The file's metadata, or ``{"error": why}``: cached per file version, so a bad file is read once."""
    from mlpipes.onnx import read_metadata

    try:
        metadata = read_metadata(path)
    except Exception as e:  # one unreadable file must not fail the whole index
        message = str(e) if isinstance(e, UserError) else f"{path}: {type(e).__name__}: {str(e)[:200]}"
        log.warning("mlpipes serve: skipping a model: %s", message)
        return {"error": message}
    return metadata if isinstance(metadata, dict) else {}


def _version_key(version: Any) -> tuple:
    parts = re.split(r"[.+-]", str(version or ""))[:16]
    return tuple(int(p) if p.isascii() and p.isdigit() and len(p) < 19 else 0 for p in parts)


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from ``directory``; ``/models/...`` from the model folders. GET and HEAD only;
    no directory listings; nothing outside the folders (``..``, symlinks out) is served."""

    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    timeout = 10  # seconds a connection may stay silent; StreamRequestHandler sets it on the socket
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles between requests

    def __init__(self, *args: Any, models: Sequence[Path] = (), **kwargs: Any):
        self.models = list(models)
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def _not_allowed(self) -> None:
        body = b"only GET and HEAD are served\n"
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _route(self, head: bool) -> None:
        route = urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0], errors="replace")
        if not route.startswith("/") or "\x00" in route:
            return self.send_error(400, "Bad path")
        if route == "/models/index.json":
            return self._send_bytes(json.dumps({"models": model_index(self.models)}, indent=1).encode(), head)
        if route.startswith("/models/") and route.endswith(".onnx"):
            name = route.removeprefix("/models/")
            for folder in self.models:
                if MODEL_NAME.match(name) and (folder / name).is_file():
                    return self._send_file(folder / name, head)
            return self.send_error(404, "No such model")
        if not self._inside_root():
            return self.send_error(404, "File not found")
        return super().do_HEAD() if head else super().do_GET()

    def _inside_root(self) -> bool:
        """True when the file the path names lies inside the served folder after resolving symlinks."""
        root = os.path.realpath(self.directory)
        target = os.path.realpath(self.translate_path(self.path))
        return target == root or target.startswith(root + os.sep)

    def list_directory(self, path: str | os.PathLike) -> None:
        """Folders without an index.html are not listed: 404, as for a missing file."""
        self.send_error(404, "File not found")
        return None

    def _send_bytes(self, body: bytes, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_file(self, path: Path, head: bool) -> None:
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return self.send_error(404, "No such model")
        with file:
            self.send_response(200)
            self.send_header("Content-Type", MIME_TYPES[".onnx"])
            self.send_header("Content-Length", str(os.fstat(file.fileno()).st_size))
            self.end_headers()
            if not head:
                shutil.copyfileobj(file, self.wfile)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("MLPIPES_SERVE_LOG"):
            super().log_message(format, *args)


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose clients cannot hold it: at most ``max_connections`` at once
    (the next get 503 at once), each silent for at most ``Handler.timeout`` seconds at a time and
    open for at most ``connection_deadline`` seconds in all (a client trickling one byte at a time
    defeats a per-read timeout, not this)."""

    daemon_threads = True
    request_queue_size = 128
    max_connections = 64
    connection_deadline = 60.0

    def __init__(self, *args: Any, max_connections: int | None = None, deadline: float | None = None, **kwargs: Any):
        self.max_connections = max_connections or self.max_connections
        self.connection_deadline = deadline or self.connection_deadline
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._watchdog = threading.Thread(target=self._expire, name="mlpipes-serve-watchdog", daemon=True)
        self._watchdog.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(1)
                request.sendall(BUSY)
            self.shutdown_request(request)
            return
        with self._lock:
            self._deadlines[request] = time.monotonic() + self.connection_deadline
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: Any) -> None:
        with self._lock:
            self._deadlines.pop(request, None)
        self._slots.release()

    def _expire(self) -> None:
        """Cut connections past their deadline: shutting the socket down ends the handler's blocked read."""
        while not self._closing.wait(0.5):
            now = time.monotonic()
            with self._lock:
                late = [sock for sock, deadline in self._deadlines.items() if deadline < now]
            for sock in late:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished or timed out is routine: one log line, no traceback on stderr."""
        error = sys.exc_info()[1]
        log.info("mlpipes serve: %s: %s: %s", client_address[0], type(error).__name__, str(error)[:200])

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


def make_server(
    root: str | os.PathLike,
    models: Sequence[str | os.PathLike] = (),
    port: int = 8000,
    host: str = "127.0.0.1",
    *,
    timeout: float = Handler.timeout,
    max_connections: int = Server.max_connections,
    deadline: float = Server.connection_deadline,
) -> Server:
    """A server for ``root`` and the ``.onnx`` files in ``models`` (default: ``<root>/models``).

    ``timeout``: seconds a client may stay silent; ``deadline``: seconds a connection may last;
    ``max_connections``: connections served at once (more get 503 at once).
    """
    root = Path(root)
    if not (root / "index.html").is_file():
        raise UserError(f"{root}: no index.html here; pass the web app's folder (the repository's web/)")
    folders = [Path(m).expanduser() for m in models] or [root / "models"]
    for folder in folders:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such models folder; run export-onnx, or pass --models DIR")
    handler_class = type("Handler", (Handler,), {"timeout": timeout})
    handler = functools.partial(handler_class, directory=str(root), models=folders)
    return Server((host, port), handler, max_connections=max_connections, deadline=deadline)


def serve_in_thread(server: Server) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, notebooks); stop it with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
