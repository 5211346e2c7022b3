"""Export a weights version to ONNX, with its preprocessing contract and a parity check.

The ONNX file lands beside the version's manifest in ``<artifacts>/weights`` and is recorded in
it (``files.onnx``), so ``deploy`` publishes it with the safetensors. Config-driven throughout:
a child pipeline's config brings its own labels, image size and drawing recipe.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlpipes.onnx import OnnxClassifier, export_version
from mlpipes.weights import read_manifest
from mnist.config import MnistConfig
from mnist.dataset import load_split
from mnist.model import mnist_classifier
from mnist.preprocess import preprocess_images
from mnist.weights import select_manifest


def into_artifacts(config: MnistConfig, manifest_path: Path) -> Path:
    """A manifest inside the artifact directory: bundled (or foreign) versions are copied in whole.

    The export is recorded in the manifest, and the package's own files must never change.
    """
    if manifest_path.parent.resolve() == config.weights_dir.resolve():
        return manifest_path
    manifest = read_manifest(manifest_path)
    config.weights_dir.mkdir(parents=True, exist_ok=True)
    for entry in manifest["files"].values():
        if entry["file"].endswith(".safetensors"):
            shutil.copyfile(manifest_path.parent / entry["file"], config.weights_dir / entry["file"])
    target = config.weights_dir / manifest_path.name
    shutil.copyfile(manifest_path, target)  # last: a manifest whose files are all present
    return target


def contract(config: MnistConfig, manifest: dict[str, Any]) -> dict[str, Any]:
    """What a consumer must know to feed the model: stored in the ONNX metadata."""
    return {
        "description": f"{config.pipeline} classifier {manifest['version']} exported by mlpipes",
        "pipeline": config.pipeline,
        "model_version": manifest["version"],
        "code_version": manifest.get("code_version", ""),
        "labels": list(config.labels),
        "image_size": config.image_size,
        "input": "images",
        "input_layout": "NCHW",
        "input_dtype": "float32",
        "input_range": [0.0, 1.0],
        "scale": "pixel / 255",
        "polarity": "white on black",
        "output": "logits",
        "drawing": config.drawing,
        "weights_sha256": manifest["files"]["classifier"]["sha256"],
        "test_accuracy": manifest.get("metrics", {}).get("test_accuracy"),
    }


def export_model(config: MnistConfig, weights: str = "", parity_samples: int = 1000) -> tuple[Path, dict[str, Any]]:
    """Export a version to ``<artifacts>/weights/<pipeline>-<version>.onnx``; return it and its manifest entry."""
    images, _ = load_split(config, "test", parity_samples)  # first: no records, nothing copied
    manifest_path = into_artifacts(config, select_manifest(config, weights))
    model = mnist_classifier(config, pretrained=str(manifest_path))  # verifies the weights' sha256
    entry = export_version(
        model,
        manifest_path,
        images.float().div_(255),
        image_shape=config.image_shape,
        metadata=contract(config, read_manifest(manifest_path)),
    )
    return manifest_path.parent / entry["file"], entry


def onnx_classifier(config: MnistConfig | None = None, weights: str = "", threads: int = 1) -> OnnxClassifier:
    """The exported classifier on ONNX Runtime: same ``.predict`` and ``.labels`` as the PyTorch one."""
    config = config or MnistConfig()
    return OnnxClassifier.from_manifest(select_manifest(config, weights), preprocess=preprocess_images, threads=threads)
