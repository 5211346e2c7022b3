"""The commands every pipeline has, as plain functions of its config; register them with one line::

    COMMANDS = [save_datasets, train_model, *mlpipes.commands.STANDARD]

``evaluate``, ``predict``, ``export-onnx``, ``deploy``, ``list-versions`` and ``pull`` read the
pipeline's hooks and folders from the config (``mlpipes.pipeline``), so a child pipeline gets them
with its own labels, data and weights. Heavy imports happen inside the functions: ``--help`` is instant.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mlpipes.errors import DataError, UserError
from mlpipes.pipeline import PipelineConfig

if TYPE_CHECKING:
    from mlpipes.records import Records

WeightsOption = Annotated[
    str,
    "which weights: 'trained' (this artifact dir; --model-version picks one, else the newest), 'pretrained' "
    "(bundled; --model-version picks another, from the registry), 'registry' (the configured registry), a "
    "registry URL or a manifest path; default: trained if any, else pretrained",
]


# ---- helpers a pipeline's own commands use ---------------------------------------------------
def existing_records(url: str, provenance: dict[str, Any]) -> Records | None:
    """The records at ``url`` if they were made from the same inputs and are intact, else None."""
    from mlpipes.records import Records

    try:
        records = Records.open(url)
        if records.index.get("provenance") != provenance:
            return None
        records.verify()  # every shard against its sha256: "up to date" only if intact
        return records
    except DataError:
        return None


def report_records(records: Records) -> None:
    rows = ", ".join(f"{split} {info['rows']}" for split, info in records.index["splits"].items())
    print(f"dataset records ({rows}) in {records.url}\nsha256 {records.sha256}")


def load_classifier(config: PipelineConfig, weights: str = "") -> Any:
    """The classifier ``--weights`` names (sha256-verified); says which weights it is."""
    from mlpipes.pipeline import build_classifier
    from mlpipes.resolve import select

    selected = select(config, weights)
    print(f"weights: {selected.describe()}", file=sys.stderr)  # stdout stays the command's data (--json)
    return build_classifier(config, pretrained=str(selected.manifest))


@contextlib.contextmanager
def inference(config: PipelineConfig, model: Any) -> Iterator[Any]:
    """``model`` on ``--device``, ``--threads`` and ``--precision`` in force: scoring honours them like training."""
    import torch

    from mlpipes.distributed import pick_device

    device, threads = pick_device(config.device), torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            yield model.to(device)
    finally:
        torch.set_num_threads(threads)  # a library call leaves the process as it found it


def read_npy(path: Path, config: PipelineConfig) -> Any:
    """A ``.npy`` array (never pickled objects, size-checked): the default way to read predict's input files."""
    from mlpipes.images import read_array_file

    return read_array_file(path)


# ---- the standard commands -------------------------------------------------------------------
def evaluate(config: PipelineConfig, weights: WeightsOption = "") -> None:
    """Test accuracy, per-class accuracy and confusion matrix of a model version."""
    from mlpipes.metrics import format_report
    from mlpipes.pipeline import hook
    from mlpipes.training import evaluate as evaluate_split
    from mlpipes.training import load_test_split

    with inference(config, load_classifier(config, weights)) as model:
        result = evaluate_split(model, load_test_split(config), hook(config, "batch_inputs"), model.labels)
    print(format_report(result, model.labels))


def predict(
    config: PipelineConfig,
    files: Annotated[list[str], "input files (images, .npy, CSV: what the pipeline reads); one may hold a batch"],
    json: Annotated[bool, "print JSON instead of text"] = False,
    weights: WeightsOption = "",
    backend: Annotated[Literal["torch", "onnx"], "run PyTorch, or ONNX Runtime on the export-onnx file"] = "torch",
) -> None:
    """Classify input files: the most likely label and its (calibrated) probability for each example."""
    from mlpipes.pipeline import hook

    read_input = hook(config, "read_input")
    inputs = []
    for name in files:  # every file read (and refused, naming it) before any model is loaded
        try:
            inputs.append((name, read_input(Path(name), config)))
        except UserError as e:
            raise type(e)(str(e) if name in str(e) else f"{name}: {e}") from None
    if backend == "onnx":
        runner = contextlib.nullcontext(onnx_classifier(config, weights, threads=config.threads or 1))
    else:
        runner = inference(config, load_classifier(config, weights))
    results = []
    with runner as model:
        for name, array in inputs:
            try:
                probabilities = model.predict(array)
            except UserError as e:
                raise type(e)(f"{name}: {e}") from None
            for i, p in enumerate(probabilities):
                best = int(p.argmax())
                entry = {"file": name, "label": model.labels[best], "probability": float(p[best])}
                if len(probabilities) > 1:
                    entry["index"] = i
                entry["probabilities"] = {label: round(float(q), 6) for label, q in zip(model.labels, p)}
                results.append(entry)
    if json:
        print(jsonlib.dumps(results, indent=2))
        return
    for r in results:
        where = f"{r['file']}[{r['index']}]" if "index" in r else r["file"]
        print(f"{where}: {r['label']} ({r['probability']:.4f})")


def onnx_classifier(config: PipelineConfig, weights: str = "", threads: int = 1) -> Any:
    """The exported classifier on ONNX Runtime: ``.predict`` and ``.labels`` as in PyTorch (threads 0: all cores)."""
    from mlpipes.onnx import OnnxClassifier
    from mlpipes.pipeline import hook
    from mlpipes.resolve import select

    selected = select(config, weights)
    print(f"weights: {selected.describe()}", file=sys.stderr)
    preprocess = hook(config, "preprocess") if type(config).preprocess else None
    return OnnxClassifier.from_manifest(selected.manifest, preprocess=preprocess, threads=threads)


def export_onnx(
    config: PipelineConfig,
    weights: WeightsOption = "",
    parity_samples: Annotated[int, "real test examples PyTorch and ONNX Runtime must agree on"] = 1000,
) -> None:
    """Export a weights version to ONNX (one file, dynamic batch) and record it in the version's manifest.

    The file lands beside the version's manifest in <artifacts>/weights; its metadata holds the
    contract (labels, input, temperature, preprocessing). PyTorch and ONNX Runtime must agree on real
    test examples (every argmax, logits within 1e-4), else nothing is written. Needs the dataset
    records (save-datasets). Weights are never rewritten: bundled or pulled versions are staged as
    a local copy of the same version first.
    """
    import torch

    from mlpipes.onnx import export_version
    from mlpipes.pipeline import build_classifier, hook
    from mlpipes.records import Records
    from mlpipes.resolve import select
    from mlpipes.weights import local_copy, read_manifest

    if parity_samples <= 0:
        raise UserError(f"--parity-samples must be positive, got {parity_samples}")
    batch = Records.open(config.records_url).load("test", limit=parity_samples)  # first: no records, nothing copied
    examples = hook(config, "batch_inputs")({k: torch.from_numpy(v) for k, v in batch.items()})
    selected = select(config, weights)
    manifest_path = local_copy(selected.manifest, config.weights_dir)
    model = build_classifier(config, pretrained=str(manifest_path))  # verifies the weights' sha256
    manifest = read_manifest(manifest_path)
    entry = export_version(model, manifest_path, examples.float(), metadata=contract(config, manifest, model, examples))
    parity = entry["parity"]
    print(
        f"{manifest_path.parent / entry['file']} ({entry['bytes']} bytes, sha256 {entry['sha256'][:12]}…)\n"
        f"parity on {parity['examples']} test examples: max |diff| {parity['max_abs_diff']:.2e}, "
        f"argmax agreement {parity['argmax_agreement']:.4f}"
    )


def contract(config: PipelineConfig, manifest: dict[str, Any], model: Any, examples: Any) -> dict[str, Any]:
    """What a consumer must know to feed the exported model, stored in its metadata."""
    from mlpipes.onnx import input_name

    meta = manifest.get("meta", {})
    return {
        "description": f"{config.pipeline} classifier {manifest['version']} exported by mlpipes",
        "pipeline": config.pipeline,
        "model_version": manifest["version"],
        "code_version": manifest.get("code_version", ""),
        "labels": list(config.labels),
        "input": input_name(model),
        "input_shape": ["N", *examples.shape[1:]],
        "input_dtype": "float32",
        "output": "logits",
        "temperature": float(meta.get("temperature", 1.0)),
        "weights_sha256": manifest["files"]["classifier"]["sha256"],
        "test_accuracy": manifest.get("metrics", {}).get("test_accuracy"),
        **config.onnx_metadata(),
    }


def deploy(
    config: PipelineConfig,
    weights: Annotated[
        str, "what to publish: 'trained' (this artifact dir), 'pretrained' (bundled) or a manifest path"
    ] = "trained",
    force: Annotated[bool, "replace a published version whose content differs (breaks immutability)"] = False,
) -> None:
    """Publish a model version (weights, ONNX file if exported, manifest) to the registry.

    The registry is --registry, else $MLPIPES_REGISTRY, else a local folder. Publishing the same
    content again does nothing; different content under a published version is refused.
    """
    from mlpipes.registry import Registry
    from mlpipes.resolve import select

    selected = select(config, weights)
    print(f"weights: {selected.describe()}")
    print(Registry(config.registry_url).publish(selected.manifest, force=force))


def list_versions(config: PipelineConfig) -> None:
    """The model versions published to the registry: version, date, test accuracy, files."""
    from mlpipes.registry import Registry
    from mlpipes.safety import redact_url

    url = redact_url(config.registry_url)
    versions = Registry(config.registry_url).versions(config.pipeline)
    if not versions:
        print(f"{url}: no published versions of {config.pipeline}")
        return
    print(f"{url}/{config.pipeline}:")
    for v in versions:
        accuracy = v.get("metrics", {}).get("test_accuracy")
        shown = f"test accuracy {accuracy:.4f}" if isinstance(accuracy, (int, float)) else "no test accuracy"
        parent = v.get("parent") or {}
        origin = f"  from {parent.get('name')} {parent.get('version')} {parent.get('role')}" if parent else ""
        pinned = "  (bundled version)" if v["version"] == config.pretrained_version else ""
        files = ", ".join(v["files"])
        print(f"  {v['version']:<10} {v.get('created') or '?':<21} {shown}  files: {files}{origin}{pinned}")


def pull(config: PipelineConfig, version: Annotated[str, "model version to download, e.g. 1.0.0"]) -> None:
    """Download a published version into the local cache, verifying every file's sha256."""
    from mlpipes import registry

    manifest = registry.pull(config.registry_url, config.pipeline, version, refresh=True)
    print(f"{config.pipeline} {version} verified and cached: {manifest}")


STANDARD = [evaluate, predict, export_onnx, deploy, list_versions, pull]
