"""mlpipes serve: MIME types, COOP/COEP headers, the model index, loopback only, no path escape."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import torch
from torch import nn

from mlpipes.errors import UserError
from mlpipes.onnx import export_onnx
from mlpipes.serve import make_server, serve_in_thread

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(images)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.js").write_text("export const x = 1;")
    (root / "vendor").mkdir()
    (root / "vendor" / "ort.wasm.min.mjs").write_text("export {};")
    (root / "vendor" / "ort.wasm").write_bytes(b"\0asm\1\0\0\0")
    models = tmp_path_factory.mktemp("models")
    for version in ("1.10.0", "1.9.0"):
        meta = {"pipeline": "toy", "model_version": version, "labels": ["no", "yes"], "image_size": 4}
        export_onnx(Linear().eval(), models / f"toy-{version}.onnx", example=torch.rand(2, 1, 4, 4), metadata=meta)
    (tmp_path_factory.getbasetemp() / "secret.txt").write_text("not for the web")
    server = make_server(root, [models], port=0)
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/vendor/ort.wasm.min.mjs", "text/javascript"),
        ("/vendor/ort.wasm", "application/wasm"),
        ("/models/toy-1.9.0.onnx", "application/octet-stream"),
        ("/models/index.json", "application/json"),
    ],
)
def test_mime_types_and_isolation_headers(site, path, mime):
    status, headers, _ = get(site[0] + path)
    assert status == 200
    assert headers["content-type"].split(";")[0] == mime
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"


def test_model_index_lists_metadata_newest_last(site):
    _, _, body = get(site[0] + "/models/index.json")
    models = json.loads(body)["models"]
    assert [m["model_version"] for m in models] == ["1.9.0", "1.10.0"]  # numeric, not string, order
    assert models[0]["labels"] == ["no", "yes"] and models[0]["url"] == "models/toy-1.9.0.onnx"
    status, _, data = get(site[0] + "/" + models[1]["url"])
    assert status == 200 and len(data) == models[1]["bytes"]


def test_no_escape_from_the_served_folders(site):
    for path in ("/../secret.txt", "/models/../secret.txt", "/%2e%2e/secret.txt", "/models/missing.onnx"):
        status, _, body = get(site[0] + path)
        assert status == 404, path
        assert b"not for the web" not in body


def test_binds_loopback_only(site):
    assert site[1].server_address[0] == "127.0.0.1"


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(UserError, match=r"no index\.html"):
        make_server(tmp_path, port=0)
    (tmp_path / "index.html").write_text("x")
    with pytest.raises(UserError, match="no such models folder"):
        make_server(tmp_path, [tmp_path / "nope"], port=0)


def test_console_command_serves(tmp_path, site):
    (tmp_path / "index.html").write_text("hello")
    (tmp_path / "models").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpipes", "serve", "--root", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("open "):
                url = line.split()[1]
        assert url is not None, "mlpipes serve printed no URL"
        status, headers, body = get(url)
        assert (status, body) == (200, b"hello")
        assert headers["cross-origin-embedder-policy"] == "require-corp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def raw(url: str, request: bytes) -> bytes:
    """Send ``request`` as is and return the whole response (the server closes after one)."""
    import socket
    import urllib.parse

    port = urllib.parse.urlsplit(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head(site, method):
    response = raw(site[0], f"{method} /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.0 405") and b"Allow: GET, HEAD" in response


def test_head_matches_get_without_a_body(site):
    for path in ("/models/index.json", "/models/toy-1.9.0.onnx", "/app.js"):
        response = raw(site[0], f"HEAD {path} HTTP/1.0\r\n\r\n".encode())
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and body == b"", path
        length = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
        )
        assert length == len(get(site[0] + path)[2]), path


def test_no_directory_listing_no_null_bytes_no_symlinks_out(site, tmp_path):
    for path in ("/vendor/", "/vendor"):
        status, _, body = get(site[0] + path)
        assert status == 404 and b"ort.wasm" not in body, path
    assert raw(site[0], b"GET /index%00.html HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 400")
    assert raw(site[0], b"GET http://evil.example/../../etc/passwd HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 400")


def test_a_symlink_out_of_the_root_is_not_followed(tmp_path):
    root = tmp_path / "web"
    (root / "models").mkdir(parents=True)
    (root / "index.html").write_text("x")
    (tmp_path / "secret.txt").write_text("not for the web")
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    server = make_server(root, port=0)
    serve_in_thread(server)
    try:
        status, _, body = get(f"http://127.0.0.1:{server.server_address[1]}/leak.txt")
        assert status == 404 and b"not for the web" not in body
    finally:
        server.shutdown()
        server.server_close()


def test_a_corrupt_model_is_listed_with_its_error_not_fatal(tmp_path, site):
    root = tmp_path / "web"
    models = tmp_path / "models"
    root.mkdir()
    models.mkdir()
    (root / "index.html").write_text("x")
    import onnx

    proto = onnx.load(site[1].RequestHandlerClass.keywords["models"][0] / "toy-1.9.0.onnx")
    proto.metadata_props.add(key="url", value="https://evil.example/m")  # metadata must not redirect the page
    onnx.save(proto, models / "toy-2.0.0.onnx")
    (models / "broken-1.0.0.onnx").write_bytes(b"\x08\x07garbage, not protobuf")
    server = make_server(root, [models], port=0)
    serve_in_thread(server)
    try:
        status, _, body = get(f"http://127.0.0.1:{server.server_address[1]}/models/index.json")
        listed = {m["file"]: m for m in json.loads(body)["models"]}
        assert status == 200 and set(listed) == {"toy-2.0.0.onnx", "broken-1.0.0.onnx"}
        assert "not a readable ONNX model" in listed["broken-1.0.0.onnx"]["error"]
        assert listed["toy-2.0.0.onnx"]["url"] == "models/toy-2.0.0.onnx"  # metadata cannot redirect the page
    finally:
        server.shutdown()
        server.server_close()


def closed_by_server(sock) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_silent_and_trickling_clients_cannot_hold_the_server(tmp_path):
    import socket

    (tmp_path / "index.html").write_text("hello")
    (tmp_path / "models").mkdir()
    server = make_server(tmp_path, port=0, timeout=0.5, max_connections=2, deadline=2)
    serve_in_thread(server)
    address = ("127.0.0.1", server.server_address[1])
    held = [socket.create_connection(address, timeout=10) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(0.2)
        with socket.create_connection(address, timeout=10) as extra:
            assert extra.recv(100).startswith(b"HTTP/1.0 503")  # over the cap: refused at once, not queued
        for sock in held:  # each silent client is dropped after `timeout`
            sock.settimeout(5)
            assert closed_by_server(sock)
        status, _, body = get(f"http://127.0.0.1:{address[1]}/")
        assert (status, body) == (200, b"hello")
        trickler = socket.create_connection(address, timeout=10)
        start = time.monotonic()
        with trickler:
            trickler.sendall(b"GET / HTTP/1.1\r\n")
            closed = False
            for _ in range(40):  # one header byte every 0.2 s: each read beats the timeout, the deadline cuts it
                try:
                    trickler.sendall(b"X")
                except OSError:
                    closed = True
                    break
                time.sleep(0.2)
            assert closed and time.monotonic() - start < 6
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        server.server_close()
