"""Hostile HTTP requests to the real ``mlpipes serve`` command (default settings, 127.0.0.1 only).

Traversal, symlinks out, directory listings, methods other than GET/HEAD, malformed request
lines, a corrupt model beside a good one, and a crowd of half-sent requests (slowloris): the
server answers each with a 4xx/5xx status, never leaks a file, never prints a traceback, keeps
its thread count bounded and serves normal requests again once the crowd times out.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from adversarial_helpers import tiny_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
SECRET = b"not for the web"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    root, models = base / "web", base / "models"
    (root / "assets").mkdir(parents=True)
    models.mkdir()
    (root / "index.html").write_text("<!doctype html><title>ok</title>")
    (root / "assets" / "listed-if-listing.js").write_text("export {};")
    (base / "secret.txt").write_bytes(SECRET)
    (root / "link.txt").symlink_to(base / "secret.txt")
    tiny_onnx(models / "tiny-1.0.0.onnx", ["a", "b", "c"])
    (models / "corrupt-1.0.0.onnx").write_bytes(b"\x08\x07 this is not protobuf")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpipes", "serve", "--root", str(root), "--models", str(models), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = None
    deadline = time.monotonic() + 60
    while port is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("open "):
            port = int(line.split(":")[2].split("/")[0])
    if port is None:
        proc.kill()
        pytest.fail(f"mlpipes serve printed no URL: {proc.stderr.read()[-2000:]}")
    yield proc, port
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err[-3000:]


def request(port: int, data: bytes, timeout: float = 20) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status(response: bytes) -> int:
    """The status code; an unparsable request line gets an HTTP/0.9-style reply: the error page alone."""
    if response.startswith(b"HTTP/"):
        return int(response.split(b" ", 2)[1])
    match = re.search(rb"Error code: (\d{3})", response)
    assert match, response[:200]
    return int(match.group(1))


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/../../secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/models/..%2fsecret.txt",
        "/models/%2e%2e%2f%2e%2e%2fsecret.onnx",
        "//../secret.txt",
        "/link.txt",
        "/..%5csecret.txt",
    ],
)
def test_nothing_outside_the_served_folders(server, path):
    response = request(server[1], f"GET {path} HTTP/1.0\r\n\r\n".encode())
    assert status(response) in (400, 404) and SECRET not in response


@pytest.mark.parametrize("path", ["/assets/", "/assets", "/models/", "/"])
def test_no_directory_listing(server, path):
    response = request(server[1], f"GET {path} HTTP/1.0\r\n\r\n".encode())
    if path == "/":
        assert status(response) == 200 and b"<title>ok</title>" in response  # index.html, not a listing
    else:
        assert status(response) in (301, 404) and b"listed-if-listing" not in response and b"tiny-1.0.0" not in response


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"])
def test_only_get_and_head(server, method):
    response = request(server[1], f"{method} /index.html HTTP/1.0\r\nContent-Length: 0\r\n\r\n".encode())
    assert status(response) in (405, 501)


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        (b"GET /index%00.html HTTP/1.0\r\n\r\n", (400,)),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n", (414,)),
        (b"GET / HTTP/1.0\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", (431,)),
        (b"GET / HTTP/9.9\r\n\r\n", (400, 505)),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)) + b"\r\n\r\n", (400,)),  # TLS hello
    ],
    ids=["null-byte", "long-url", "many-headers", "bad-version", "tls-hello"],
)
def test_malformed_requests_get_a_status_not_a_crash(server, raw, codes):
    assert status(request(server[1], raw)) in codes
    assert status(request(server[1], b"GET / HTTP/1.0\r\n\r\n")) == 200


def test_a_corrupt_model_does_not_take_the_index_down(server):
    body = request(server[1], b"GET /models/index.json HTTP/1.0\r\n\r\n").split(b"\r\n\r\n", 1)[1]
    models = {m["file"]: m for m in json.loads(body)["models"]}
    assert models["tiny-1.0.0.onnx"]["labels"] == ["a", "b", "c"] and "error" not in models["tiny-1.0.0.onnx"]
    assert "error" in models["corrupt-1.0.0.onnx"]


def threads(pid: int) -> int:
    status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status_lines if line.startswith("Threads:")).split()[1])


def test_a_crowd_of_half_sent_requests_cannot_hold_the_server(server):
    proc, port = server
    crowd = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line that ends it
            crowd.append(sock)
        time.sleep(1)
        assert threads(proc.pid) <= 64 + 8  # one per served connection at most, not one per client
        answered = b""
        deadline = time.monotonic() + 40  # the default per-read timeout is 10 s
        while time.monotonic() < deadline:
            answered = request(port, b"GET / HTTP/1.0\r\n\r\n")
            if answered.startswith(b"HTTP/1.0 200"):
                break
            assert status(answered) == 503  # turned away at once while full, never left hanging
            time.sleep(1)
        assert answered.startswith(b"HTTP/1.0 200"), answered[:100]
        assert proc.poll() is None
    finally:
        for sock in crowd:
            sock.close()
