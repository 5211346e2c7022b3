"""ONNX export with a parity check, and ONNX Runtime inference.

An exported model is one self-contained ``.onnx`` file (no ``.onnx.data`` beside it) whose one
input is named after the model's ``forward`` argument (``images`` for an image classifier,
``features`` for a tabular one), shaped like the example it was exported with but for a dynamic
batch dimension, and whose output is ``logits``. Its ``metadata_props`` carry the contract
(labels, input, temperature, preprocessing, model version), so a consumer in any language needs
nothing else. Every export is checked against the PyTorch model on real examples and refused if
they disagree.

Needs the ``onnx`` extra: ``pip install mlpipes[onnx]`` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpipes.artifacts import atomic_path, sha256_bytes, sha256_file
from mlpipes.errors import DataError, IntegrityError, UserError

FORMAT = "mlpipes.onnx/1"
OUTPUT = "logits"
OPSET = 18


def _require(module: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"ONNX support needs the '{module}' package: pip install 'mlpipes[onnx]'") from None


class ParityError(IntegrityError):
    """The exported graph computes something other than the PyTorch model."""


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    example: torch.Tensor,
    metadata: dict[str, Any],
    opset: int = OPSET,
) -> Path:
    """Write ``model`` as a single-file ONNX graph with a dynamic batch and ``metadata`` attached.

    ``model.forward`` takes one tensor shaped like ``example`` (any batch size) and returns
    logits; the graph's input is named after that argument. Non-string metadata values are
    stored as JSON. The file appears atomically: a failed export leaves nothing under ``path``.
    """
    onnx = _require("onnx")
    _require("onnxscript")
    model = model.eval()
    name = input_name(model)
    example = example[:2] if len(example) >= 2 else torch.cat([example, example])
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    with _quiet_exporter():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[name],
            output_names=[OUTPUT],
            dynamic_shapes={name: {0: batch}},
            opset_version=opset,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    proto.doc_string = str(metadata.get("description", ""))
    props = {"format": FORMAT, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}}
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return path


def input_name(model: nn.Module) -> str:
    """The name of ``model.forward``'s one tensor argument: the exported graph's input name."""
    import inspect

    return next(iter(inspect.signature(model.forward).parameters))


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs warnings about optional packages (torchvision) we do not use."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata an export attached, with JSON values decoded (labels come back as a list)."""
    ort = _require("onnxruntime")
    path = Path(path)
    try:
        raw = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    except Exception as e:  # onnxruntime raises its own exception types for unreadable files
        raise DataError(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    return {k: _decode(v) for k, v in raw.items()}


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def session(path: str | os.PathLike, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session tuned for small models.

    One intra-op thread is fastest for batch 1 (a thread pool costs more than it saves on a
    few million multiply-adds); pass ``threads=0`` (all cores) for large batches. All graph
    optimisations are on (constant folding, conv fusions, NCHWc layouts).
    """
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(
    model: nn.Module, path: str | os.PathLike, examples: torch.Tensor, *, atol: float = 1e-4
) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime logits on ``examples`` (the model's input, e.g. images in [0, 1]).

    Returns the report (examples, max absolute difference, argmax agreement); raises
    :class:`ParityError` unless every argmax agrees and every logit is within ``atol``.
    """
    examples = examples.float().contiguous()
    with torch.inference_mode():
        expected = model.eval()(examples).float().numpy()
    runner = session(path, threads=0)
    got = runner.run([OUTPUT], {runner.get_inputs()[0].name: examples.numpy()})[0]
    if got.shape != expected.shape:
        raise ParityError(f"{path}: ONNX output shape {got.shape}, PyTorch gives {expected.shape}")
    report = {
        "examples": len(examples),
        "max_abs_diff": float(np.abs(got - expected).max()) if got.size else 0.0,
        "argmax_agreement": float((got.argmax(1) == expected.argmax(1)).mean()) if len(got) else 1.0,
        "atol": atol,
    }
    if report["argmax_agreement"] < 1.0 or report["max_abs_diff"] > atol:
        raise ParityError(
            f"{path}: ONNX Runtime disagrees with PyTorch on {report['examples']} examples "
            f"(max |diff| {report['max_abs_diff']:.3g} > {atol:g} or argmax agreement "
            f"{report['argmax_agreement']:.4f} < 1); the export is not trustworthy, not keeping it"
        )
    return report


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """float32 probabilities of ``logits / temperature``, in as few array operations as possible.

    A batch-1 ``predict()`` spends as long in NumPy calls as in the model itself, so each one counts.
    """
    z = np.subtract(logits, logits.max(axis=1, keepdims=True), dtype=np.float32)  # the one new array
    if temperature != 1.0:
        z /= np.float32(temperature)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class OnnxClassifier:
    """An exported classifier run by ONNX Runtime, with the ``.predict``/``.labels`` of the PyTorch one.

    ``preprocess`` turns raw user input into the model's float32 input (numpy or torch); the
    pipeline passes its own (``mnist.preprocess.preprocess_array``) so both backends see the same input.
    Logits are divided by the ``temperature`` in the metadata (1 if absent) before the softmax.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        preprocess: Callable[..., np.ndarray | torch.Tensor] | None = None,
        threads: int = 1,
    ):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path}: ONNX model not found; run export-onnx first")
        try:
            self.session = session(self.path, threads)
        except UserError:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise DataError(f"{self.path}: not a readable ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k: _decode(v) for k, v in raw.items()}
        labels = self.metadata.get("labels")
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if OUTPUT not in outputs or len(self.session.get_inputs()) != 1:
            raise DataError(f"{self.path}: not an mlpipes export (needs one input and an output '{OUTPUT}')")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, (str, int)) for x in labels):
            raise DataError(f"{self.path}: its metadata has no list of labels; export it again with export-onnx")
        width = outputs[OUTPUT][-1] if outputs[OUTPUT] else None
        if isinstance(width, int) and width != len(labels):  # a symbolic width is checked by predict's output
            raise DataError(
                f"{self.path}: metadata lists {len(labels)} labels but the graph outputs {width} classes; "
                "export it again with export-onnx"
            )
        temperature = self.metadata.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < 1e6:
            raise DataError(f"{self.path}: metadata temperature {str(temperature)[:40]} is not a positive number")
        self.labels = tuple(labels)
        self.temperature = float(temperature)
        self.input_name = self.session.get_inputs()[0].name
        self.preprocess = preprocess

    @classmethod
    def from_manifest(
        cls, manifest_path: str | os.PathLike, preprocess: Callable[..., Any] | None = None, threads: int = 1
    ) -> OnnxClassifier:
        """The ONNX file a weights manifest lists under ``files.onnx``, refused unless its sha256 matches."""
        from mlpipes.weights import read_manifest

        manifest_path = Path(manifest_path)
        entry = read_manifest(manifest_path)["files"].get("onnx")
        if entry is None:
            raise UserError(f"{manifest_path}: this version has no ONNX export; run export-onnx first")
        path = manifest_path.parent / entry["file"]
        if not path.exists():
            raise DataError(f"{path}: ONNX file listed in {manifest_path.name} is missing; run export-onnx again")
        got = sha256_file(path)
        if got != entry.get("sha256"):
            raise IntegrityError(
                f"{path}: sha256 {got} does not match the manifest ({entry.get('sha256')}); "
                "delete it and run export-onnx again"
            )
        return cls(path, preprocess, threads)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """The model's float32 input (N, ...) → ``(N, classes)`` logits."""
        return self.session.run([OUTPUT], {self.input_name: inputs})[0]

    def predict(self, inputs: Any, **kwargs: Any) -> np.ndarray:
        """Raw input (whatever ``preprocess`` accepts) → float32 ``(N, classes)`` calibrated probabilities."""
        x = self.preprocess(inputs, **kwargs) if self.preprocess else inputs
        if isinstance(x, torch.Tensor):
            x = x.numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        return softmax(self.logits(x), self.temperature)

    def __repr__(self) -> str:
        return f"OnnxClassifier({str(self.path)!r}, labels={len(self.labels)})"


def file_entry(path: str | os.PathLike, **extra: Any) -> dict[str, Any]:
    """The manifest entry for an exported file: name, sha256, size, plus ``extra`` (e.g. parity)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the exported file ({e.strerror or e})") from None
    return {"file": path.name, "sha256": sha256_bytes(data), "bytes": len(data), **extra}


def export_version(
    model: nn.Module,
    manifest_path: str | os.PathLike,
    examples: torch.Tensor,
    *,
    metadata: dict[str, Any],
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Export the model of a saved weights version and add it to that version as ``files["onnx"]``.

    The graph is written to a temporary file beside the manifest and checked for parity on
    ``examples``; only then :func:`mlpipes.weights.add_file` stages it under a content-addressed
    name and commits the updated manifest atomically. The weight files are never touched; the
    same export again is a no-op; a different export replaces only the ``onnx`` file. Returns the
    entry (file, sha256, bytes, opset, parity). The manifest's folder must be writable: copy a
    bundled version into the artifact directory first (:func:`mlpipes.weights.copy_version`).
    """
    from mlpipes.weights import add_file, read_manifest

    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    prefix = f".{manifest['name']}-{manifest['version']}."
    fd, scratch = tempfile.mkstemp(prefix=prefix, suffix=".export.onnx", dir=manifest_path.parent)
    os.close(fd)
    try:
        export_onnx(model, scratch, example=examples, metadata=metadata)
        parity = check_parity(model, scratch, examples, atol=atol)
        return add_file(manifest_path, "onnx", scratch, opset=OPSET, parity=parity)
    finally:
        Path(scratch).unlink(missing_ok=True)
