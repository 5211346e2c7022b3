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
