"""The pipeline's commands. Each takes the config first; ``mlpipes.cli`` turns them into a CLI.

A child pipeline reuses these functions as they are: they only touch the config they are given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from mlpipes import registry
from mlpipes.errors import DataError
from mnist import dataset, train
from mnist.config import MnistConfig
from mnist.evaluate import evaluate_model
from mnist.export import export_model, onnx_classifier
from mnist.model import Classifier, mnist_classifier
from mnist.weights import select_manifest

WeightsOption = Annotated[
    str,
    "weights: 'trained' (this artifact dir), 'pretrained' (bundled), 'registry' (the configured registry), "
    "a registry URL or a manifest path; default: trained if present, else pretrained",
]


def save_datasets(
    config: MnistConfig, force: Annotated[bool, "rewrite the records even if they are up to date"] = False
) -> None:
    """Fetch the raw data and write train/test dataset records into the artifact directory."""
    records = dataset.save_datasets(config, force=force)
    rows = ", ".join(f"{split} {info['rows']}" for split, info in records.index["splits"].items())
    print(f"dataset records ({rows}) in {records.url}\nsha256 {records.sha256}")


def train_model(
    config: MnistConfig, resume: Annotated[bool, "continue the latest run from its last checkpoint"] = False
) -> None:
    """Train the classifier; writes a run record, a checkpoint per epoch and versioned weights."""
    train.train_model(config, resume=resume)


def load_classifier(config: MnistConfig, weights: str = "") -> Classifier:
    """The classifier from ``weights`` (see ``WeightsOption``), sha256-verified."""
    return mnist_classifier(config, pretrained=str(select_manifest(config, weights)))


def evaluate(config: MnistConfig, weights: WeightsOption = "") -> None:
    """Test accuracy, per-class accuracy and confusion matrix of a model version."""
    model = load_classifier(config, weights)
    images, labels = dataset.load_split(config, "test", config.test_samples)
    result = evaluate_model(model, images, labels)
    print(f"test accuracy {result['accuracy']:.4f} on {result['examples']} images (loss {result['loss']:.4f})")
    print("per class: " + "  ".join(f"{k}:{v:.3f}" for k, v in result["per_class_accuracy"].items()))
    width = max(5, len(str(max(max(r) for r in result["confusion_matrix"]))) + 1)
    print("confusion matrix (rows: true, columns: predicted)")
    print(" " * 4 + "".join(f"{label:>{width}}" for label in model.labels))
    for label, row in zip(model.labels, result["confusion_matrix"]):
        print(f"{label:>4}" + "".join(f"{count:>{width}}" for count in row))


def load_image_file(path: Path, size: int) -> np.ndarray:
    """A PNG/JPG (as grayscale, resized to ``size``) or a .npy array."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = image.convert("L")
            if gray.size != (size, size):
                gray = gray.resize((size, size), Image.Resampling.LANCZOS)
            return np.asarray(gray)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None


def predict(
    config: MnistConfig,
    files: Annotated[list[str], "PNG, JPG or .npy files (a .npy may hold a batch)"],
    json_output: Annotated[bool, "print JSON instead of text"] = False,
    weights: WeightsOption = "",
    backend: Annotated[Literal["torch", "onnx"], "run PyTorch, or ONNX Runtime on the export-onnx file"] = "torch",
) -> None:
    """Classify image files: the most likely label and its probability for each."""
    model = onnx_classifier(config, weights) if backend == "onnx" else load_classifier(config, weights)
    results = []
    for name in files:
        array = load_image_file(Path(name), config.image_size)
        probabilities = model.predict(array)
        for i, p in enumerate(probabilities):
            best = int(p.argmax())
            entry = {"file": name, "label": model.labels[best], "probability": float(p[best])}
            if len(probabilities) > 1:
                entry["index"] = i
            entry["probabilities"] = {label: round(float(q), 6) for label, q in zip(model.labels, p)}
            results.append(entry)
    if json_output:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            where = f"{r['file']}[{r['index']}]" if "index" in r else r["file"]
            print(f"{where}: {r['label']} ({r['probability']:.4f})")


def deploy(
    config: MnistConfig,
    weights: Annotated[
        str, "what to publish: 'trained' (this artifact dir), 'pretrained' (bundled) or a manifest path"
    ] = "trained",
    force: Annotated[bool, "replace a published version whose content differs (breaks immutability)"] = False,
) -> None:
    """Publish the model version (weights, ONNX file if exported, manifest) to the registry.

    The registry is --registry, else $MLPIPES_REGISTRY, else a local folder. Publishing the same
    content again does nothing; different content under a published version is refused.
    """
    manifest = select_manifest(config, weights)
    print(registry.Registry(config.registry_url).publish(manifest, force=force))


def list_versions(config: MnistConfig) -> None:
    """The model versions published to the registry: version, date, test accuracy, files."""
    url = config.registry_url
    versions = registry.Registry(url).versions(config.pipeline)
    if not versions:
        print(f"{url}: no published versions of {config.pipeline}")
        return
    print(f"{url}/{config.pipeline}:")
    for v in versions:
        accuracy = v.get("metrics", {}).get("test_accuracy")
        shown = f"test accuracy {accuracy:.4f}" if isinstance(accuracy, (int, float)) else "no test accuracy"
        parent = v.get("parent") or {}
        origin = f"  from {parent.get('name')} {parent.get('version')} {parent.get('role')}" if parent else ""
        pinned = "  (pinned by this package)" if v["version"] == config.model_version else ""
        files = ", ".join(v["files"])
        print(f"  {v['version']:<10} {v.get('created') or '?':<21} {shown}  files: {files}{origin}{pinned}")


def pull(config: MnistConfig, version: Annotated[str, "model version to download, e.g. 1.0.0"]) -> None:
    """Download a published version into the local cache, verifying every file's sha256."""
    manifest = registry.pull(config.registry_url, config.pipeline, version, refresh=True)
    print(f"{config.pipeline} {version} verified and cached: {manifest}")


def export_onnx(
    config: MnistConfig,
    weights: WeightsOption = "",
    parity_samples: Annotated[int, "real test images PyTorch and ONNX Runtime must agree on"] = 1000,
) -> None:
    """Export a weights version to ONNX (one file, dynamic batch) and record it in the version's manifest.

    The file is <artifacts>/weights/<pipeline>-<version>.onnx; its metadata holds the preprocessing
    contract (layout, scale, polarity, labels, image size). PyTorch and ONNX Runtime must agree on
    real test images (every argmax, logits within 1e-4), else nothing is written. Needs the dataset
    records (save-datasets). Bundled weights are first copied into the artifact directory.
    """
    path, entry = export_model(config, weights, parity_samples)
    parity = entry["parity"]
    print(
        f"{path} ({entry['bytes']} bytes, sha256 {entry['sha256'][:12]}…)\n"
        f"parity on {parity['examples']} test images: max |diff| {parity['max_abs_diff']:.2e}, "
        f"argmax agreement {parity['argmax_agreement']:.4f}"
    )


COMMANDS = [save_datasets, train_model, evaluate, predict, export_onnx, deploy, list_versions, pull]
