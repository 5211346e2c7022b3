"""The config every pipeline subclasses: where its artifacts live, which weights it ships, how it trains.

A pipeline is its model and its data; everything else is here. A pipeline's config names it
(``pipeline = "mnist"``), says where its bundled weights are and which version ``pretrained=True``
loads, and points at three functions by ``"module:name"`` (imported only when a command needs
them, so ``--help`` stays instant):

- ``model_factory``: ``fn(config, pretrained=False, version=None) -> nn.Module`` — a classifier
  with ``.labels``, ``forward(inputs) -> logits`` and ``predict(raw) -> probabilities``;
- ``batch_inputs``: ``fn(batch) -> Tensor`` — record columns (a dict of tensors) to the model's input;
- ``read_input``: ``fn(path, config) -> array`` — a file named on the command line to ``predict``'s input;
- ``preprocess``: ``fn(raw) -> array`` — that input to the model's (what ``predict`` applies before the
  ONNX Runtime model, as the PyTorch model's ``predict`` does).

The training and evaluation commands, ``--weights`` resolution, export and deploy read these and
the fields below; a child pipeline inherits all of it from its parent's config.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from mlpipes.config import Config, param, require_fields
from mlpipes.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class PipelineConfig(Config):
    """Settings every pipeline has. Subclass it (``frozen=True``), set the class variables, add fields."""

    pipeline: ClassVar[str] = "pipeline"
    bundled_weights: ClassVar[Path | None] = None
    pretrained_version: ClassVar[str] = "1.0.0"
    model_factory: ClassVar[str | Callable[..., Any]] = ""
    batch_inputs: ClassVar[str | Callable[..., Any]] = ""
    read_input: ClassVar[str | Callable[..., Any]] = "mlpipes.commands:read_npy"
    preprocess: ClassVar[str | Callable[..., Any]] = ""
    # Fields only this pipeline's own data and training code read, not its model or hooks: a child
    # that brings its own code lists them as ``unused``, so setting one there is refused, not ignored.
    recipe_fields: ClassVar[tuple[str, ...]] = ()

    # data
    dataset_url: str = param("", "dataset records, any fsspec URL (default: <artifacts>/datasets/<pipeline>)")
    train_samples: int = param(0, "training examples to use, validation included (the first N; 0: all)", ge=0)
    validation_samples: int = param(
        0, "training examples held out (seeded) for validation (0: use the test split)", ge=0
    )
    test_samples: int = param(0, "test examples to evaluate on (the first N of the split; 0: all)", ge=0)
    stream: bool = param(False, "stream the records shard by shard instead of loading them into memory")

    # model
    model_version: str = param(
        "", "version of the weights train-model writes (default: <bundled version>+<run name>, never a bundled one)"
    )

    # training
    epochs: int = param(3, "passes over the training set", gt=0)
    batch_size: int = param(
        128, "examples per optimisation step, over all processes (torchrun: each takes batch_size / world size)", gt=0
    )
    learning_rate: float = param(0.01, "peak learning rate", gt=0)
    weight_decay: float = param(5e-4, "weight decay", ge=0)
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where to train and score: auto picks cuda if present")
    threads: int = param(0, "CPU threads (0: all cores for torch, 1 for ONNX Runtime)", ge=0)
    precision: Literal["fp32", "bf16"] = param("fp32", "bf16: autocast forward passes to bfloat16 (for CUDA GPUs)")
    checkpoint_every: int = param(
        0, "also checkpoint every N steps inside an epoch (0: at the end of each epoch)", ge=0
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require_fields(self, self.recipe_fields)
        if self.train_samples and self.validation_samples >= self.train_samples:
            raise ConfigError(
                f"key 'validation_samples': {self.validation_samples} leaves no training data of {self.train_samples}"
            )
        if self.model_version:
            from mlpipes.safety import safe_name

            safe_name(self.model_version, "key 'model_version'")

    # ---- what the pipeline is ---------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, in output order."""
        raise NotImplementedError(f"{type(self).__name__} must define the labels property")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def check_records(self, records: Any) -> None:
        """Refuse settings that contradict the dataset records (``mlpipes.records.Records``) before a run starts."""

    def onnx_metadata(self) -> dict[str, Any]:
        """What a consumer of the exported model must know beyond labels and input (e.g. preprocessing)."""
        return {}

    # ---- where things are -------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.artifacts / "raw"

    @property
    def records_url(self) -> str:
        return self.dataset_url or str(self.artifacts / "datasets" / self.pipeline)

    @property
    def runs_dir(self) -> Path:
        return self.artifacts / "runs"

    @property
    def weights_dir(self) -> Path:
        return self.artifacts / "weights"


def hook(config: PipelineConfig, name: str) -> Callable[..., Any]:
    """The function a config's ``"module:name"`` class variable points at (or the function itself)."""
    target = getattr(type(config), name, "")
    if callable(target):
        return target
    if not target or ":" not in target:
        raise ConfigError(f"{type(config).__name__}.{name} is not set; point it at 'module:function'")
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)


def build_classifier(config: PipelineConfig, pretrained: bool | str = False, version: str | None = None) -> Any:
    """The pipeline's classifier, built by its ``model_factory`` hook."""
    return hook(config, "model_factory")(config, pretrained=pretrained, version=version)
