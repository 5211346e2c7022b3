"""mnist export-onnx and the ONNX Runtime backend on real MNIST; drawings framed like MNIST."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mlpipes.artifacts import sha256_file
from mlpipes.cli import run_cli
from mlpipes.commands import onnx_classifier
from mlpipes.errors import DataError
from mlpipes.resolve import bundled as bundled_manifest
from mlpipes.weights import read_manifest
from mnist import MnistConfig, mnist_classifier
from mnist.commands import COMMANDS
from mnist.dataset import load_split, save_datasets
from mnist.preprocess import area_weights, frame_ink

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def mnist_cli(*argv: str) -> int:
    return run_cli(COMMANDS, MnistConfig, prog="mnist", argv=list(argv))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Real MNIST records and the bundled weights exported by the command, in a private artifact dir."""
    if not os.environ.get("MNIST_MIRROR"):
        pytest.skip("set MNIST_MIRROR to a folder with the MNIST .gz files (e.g. ../shared/data/mnist)")
    artifacts = tmp_path_factory.mktemp("mnist")
    config = MnistConfig(artifact_dir=str(artifacts))
    save_datasets(config)
    bundled = bundled_manifest(config).read_bytes()
    assert mnist_cli("export-onnx", "--artifact-dir", str(artifacts), "--parity-samples", "500") == 0
    assert bundled_manifest(config).read_bytes() == bundled  # the package's own manifest is never rewritten
    return config


def test_export_records_onnx_in_the_versions_manifest(exported, capsys):
    manifest = read_manifest(exported.weights_dir / f"mnist-{MnistConfig.pretrained_version}.json")
    entry = manifest["files"]["onnx"]
    path = exported.weights_dir / entry["file"]
    assert entry["file"] == path.name and entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
    assert entry["parity"]["examples"] == 500 and entry["parity"]["argmax_agreement"] == 1.0
    assert entry["parity"]["max_abs_diff"] <= 1e-4
    for role in ("features", "classifier"):  # the bundled weights were copied in whole: deployable as one unit
        file = exported.weights_dir / manifest["files"][role]["file"]
        assert sha256_file(file) == manifest["files"][role]["sha256"]


def test_the_bundled_head_exports_as_one_average_pool_and_a_small_product(exported):
    """Where users wait (batch 1), the head costs what 1.3.0's global average did: its 3×3 cells are one
    plain AveragePool (3-wide windows every 2) before a 576 × 10 product, not a 3,136 × 10 one."""
    import onnx

    manifest = read_manifest(exported.weights_dir / f"mnist-{MnistConfig.pretrained_version}.json")
    graph = onnx.load(exported.weights_dir / manifest["files"]["onnx"]["file"]).graph
    pool, reshape, gemm = graph.node[-3:]
    assert (pool.op_type, reshape.op_type, gemm.op_type) == ("AveragePool", "Reshape", "Gemm")
    attributes = {a.name: list(a.ints) for a in pool.attribute}
    assert attributes["kernel_shape"] == [3, 3] and attributes["strides"] == [2, 2]
    weight = next(t for t in graph.initializer if t.name == gemm.input[1])
    assert sorted(weight.dims) == [10, 64 * 3 * 3]


def test_onnx_metadata_is_the_preprocessing_contract(exported):
    clf = onnx_classifier(exported)
    meta = clf.metadata
    assert clf.labels == tuple("0123456789")
    assert meta["image_size"] == 28 and meta["input_layout"] == "NCHW" and meta["input_dtype"] == "float32"
    assert meta["input_range"] == [0.0, 1.0] and meta["polarity"] == "white on black"
    assert meta["model_version"] == MnistConfig.pretrained_version and meta["pipeline"] == "mnist"
    assert meta["drawing"] == {"size": 28, "box": 20, "center": "mass"}


def test_onnx_backend_predicts_like_pytorch_on_real_test_images(exported):
    images, labels = load_split(exported, "test", 1000)
    x = images[:, 0].numpy()  # (N, 28, 28) uint8: the public predict() path, preprocessing included
    torch_p = mnist_classifier(exported, pretrained=True).predict(x)
    onnx_p = onnx_classifier(exported).predict(x)
    assert onnx_p.shape == (1000, 10) and onnx_p.dtype == np.float32
    np.testing.assert_allclose(onnx_p, torch_p, atol=1e-5)
    assert (onnx_p.argmax(1) == torch_p.argmax(1)).all()
    assert (onnx_p.argmax(1) == labels.numpy()).mean() >= 0.99
    single = onnx_classifier(exported).predict(x[0] / 255.0)  # (H, W) float input, batch of one
    assert single.shape == (1, 10) and single.argmax() == labels[0]


def test_predict_command_on_the_onnx_backend(exported, tmp_path, capsys):
    images, labels = load_split(exported, "test", 3)
    np.save(tmp_path / "three.npy", images[:, 0].numpy())
    args = ["predict", str(tmp_path / "three.npy"), "--artifact-dir", str(exported.artifacts), "--json"]
    assert mnist_cli(*args, "--backend", "onnx") == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == [str(int(y)) for y in labels]


def test_export_without_records_names_the_missing_step(tmp_path, capsys):
    assert mnist_cli("export-onnx", "--artifact-dir", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "save-datasets" in err and "Traceback" not in err
    assert not (tmp_path / "weights").exists()


# ---- drawings: framed like MNIST ------------------------------------------------------------------
def test_area_weights_average_and_conserve():
    for n_in, n_out in [(10, 5), (7, 3), (3, 7), (280, 20), (5, 5)]:
        w = area_weights(n_in, n_out)
        np.testing.assert_allclose(w.sum(1), 1)  # each output pixel is an average
        np.testing.assert_allclose(w.sum(0), n_out / n_in)  # each input pixel counts by its area
    np.testing.assert_allclose(area_weights(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_frame_ink_scales_into_the_box_and_centres_by_mass():
    drawing = np.zeros((280, 280))
    drawing[30:230, 100:150] = 1.0  # a tall bar, 200 x 50, off centre
    out = frame_ink(drawing, size=28, box=20, center="mass")
    assert out.shape == (28, 28) and out.dtype == np.float32
    rows, cols = np.flatnonzero(out.max(1) > 0), np.flatnonzero(out.max(0) > 0)
    assert len(rows) == 20 and len(cols) == 5  # longer side 20 px, aspect kept
    ys, xs = np.indices(out.shape) + 0.5
    assert abs((out * ys).sum() / out.sum() - 14) <= 0.5 and abs((out * xs).sum() / out.sum() - 14) <= 0.5
    assert np.array_equal(frame_ink(np.zeros((50, 60))), np.zeros((28, 28), np.float32))
    boxed = frame_ink((drawing * 255).astype(np.uint8), size=32, box=28, center="box")
    assert np.flatnonzero(boxed.max(1) > 0).tolist() == list(range(2, 30))
    with pytest.raises(DataError, match="expected one grayscale image"):
        frame_ink(np.zeros((2, 28, 28)))


def test_reframed_mnist_digits_keep_their_labels(exported):
    """MNIST digits blown up to a 280 px pad and framed again are still recognised: same recipe."""
    images, labels = load_split(exported, "test", 300)
    big = np.kron(images[:, 0].numpy() / 255.0, np.ones((10, 10)))  # (N, 280, 280), like the web pad
    framed = np.stack([frame_ink(d) for d in big])
    accuracy = (onnx_classifier(exported).predict(framed).argmax(1) == labels.numpy()).mean()
    assert accuracy >= 0.97
