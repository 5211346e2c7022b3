"""The training loop every pipeline shares; the pipeline's ``train.py`` stays its recipe.

A recipe reads top to bottom::

    trainer = Trainer(config, resume)       # device, seed, torchrun's process group, run record
    config = trainer.config                 # a resumed run continues with the config it started with
    data = trainer.data()                   # train / validation / test batches, in memory or streamed
    model = my_classifier(config)
    optimizer, scheduler = ...              # the recipe's choice
    def loss(model, batch): ...             # -> (loss, logits); augmentation goes here
    trainer.fit(model, optimizer, scheduler, data, loss, inputs=batch_inputs)
    return trainer.save(model, {"features": model.features, "classifier": model})

and the trainer does the plumbing: seeded runs, a progress bar with throughput and data-wait,
validation and an atomic checkpoint every epoch (and every ``checkpoint_every`` steps),
``--resume`` from the exact step, DistributedDataParallel under ``torchrun`` with ``batch_size``
as the global batch, bf16 autocast, metrics summed over ranks, rank-0-only writes, the run
record (config, history, metrics, plots), a temperature fitted on the validation split so
probabilities are calibrated, and versioned weights with their manifest.

Data comes as a :class:`BatchSource`: :class:`InMemorySource` (the whole split as tensors, the
fast path for small datasets) or ``mlpipes.streaming.StreamingSource`` (shards streamed to every
rank) with ``--stream``. Both give each rank an equal, disjoint, per-epoch reshuffled share.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mlpipes import distributed
from mlpipes.artifacts import RunBusyError, RunRecord, atomic_path, write_json
from mlpipes.errors import UserError
from mlpipes.metrics import confusion_and_loss, plot_confusion, plot_history, summarize
from mlpipes.pipeline import PipelineConfig
from mlpipes.records import Records
from mlpipes.resolve import bundled
from mlpipes.safety import redact_config
from mlpipes.weights import manifest_path, save_version

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]]
InputsFn = Callable[[Batch], torch.Tensor]


class BatchSource(Protocol):
    """Batches of one split for this rank: in memory or streamed, the trainer does not care."""

    def __len__(self) -> int:
        """Steps (batches) per epoch on this rank."""

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """This rank's batches of ``epoch`` from ``start_step`` on; the same (seed, epoch, rank, world),
        the same batches."""


class InMemorySource:
    """A split held as tensors (on the training device): each batch is one gather, no per-sample Python.

    Training (``shuffle=True``): every rank takes an equal, disjoint share of a (seed, epoch)-seeded
    permutation, the remainder dropped so all ranks take the same number of steps. Evaluation
    (``shuffle=False``): rank r takes rows r, r+world, …; all ranks together cover every row once.
    """

    def __init__(
        self,
        columns: Batch,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int | None = None,
        world: int | None = None,
    ):
        self.columns, self.batch_size, self.seed, self.shuffle = columns, batch_size, seed, shuffle
        self.rank = distributed.rank() if rank is None else rank
        self.world = distributed.world_size() if world is None else world
        self.rows = len(next(iter(columns.values())))

    def __len__(self) -> int:
        if self.shuffle:
            return (self.rows // self.world) // self.batch_size
        return math.ceil(len(range(self.rank, self.rows, self.world)) / self.batch_size)

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        device = next(iter(self.columns.values())).device
        if self.shuffle:
            order = distributed.epoch_indices(self.rows, self.seed, epoch, self.rank, self.world).to(device)
        else:
            order = torch.arange(self.rank, self.rows, self.world, device=device)
        for step in range(start_step, len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield {name: column[index] for name, column in self.columns.items()}


@dataclass
class Data:
    """The three splits a run uses; ``validation`` is a seeded hold-out of train, or the test split."""

    train: BatchSource
    validation: BatchSource
    test: BatchSource


def holdout(rows: int, count: int, seed: int) -> np.ndarray:
    """The sorted row indices a seeded validation hold-out takes from the first ``rows`` training rows."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(order[:count])


def load_data(config: PipelineConfig, device: torch.device | None = None, rank: int = 0, world: int = 1) -> Data:
    """Train/validation/test sources for ``config``: in memory, or streamed when ``config.stream``."""
    records = Records.open(config.records_url)
    train_rows = min(config.train_samples or records.rows("train"), records.rows("train"))
    held = holdout(train_rows, config.validation_samples, config.seed) if config.validation_samples else None
    per_rank = config.batch_size // world
    device = device or torch.device("cpu")

    if config.stream:
        from mlpipes.streaming import StreamingSource

        def source(split: str, limit: int, train: bool, **rows: Any) -> BatchSource:
            return StreamingSource(
                config.records_url, split, batch_size=per_rank if train else 1000, seed=config.seed, rank=rank,
                world=world, limit=limit, shuffle=train, drop_last=train, **rows,
            )  # fmt: skip

        train = source("train", train_rows, True, exclude=held)
        validation = source("train", train_rows, False, include=held) if held is not None else None
    else:

        def tensors(split: str, limit: int, rows: np.ndarray | None = None) -> Batch:
            columns = records.load(split, limit=limit)
            if rows is not None:
                columns = {name: column[rows] for name, column in columns.items()}
            return {name: torch.from_numpy(np.ascontiguousarray(column)).to(device) for name, column in columns.items()}

        kept = np.setdiff1d(np.arange(train_rows), held) if held is not None else None
        train = InMemorySource(tensors("train", train_rows, kept), per_rank, seed=config.seed, rank=rank, world=world)
        validation = None
        if held is not None:
            validation = InMemorySource(tensors("train", train_rows, held), 1000, shuffle=False, rank=rank, world=world)
    if len(train) == 0:
        raise UserError(
            f"{config.records_url}: {train_rows} training rows, fewer than one batch of {config.batch_size} "
            f"per epoch over {world} process(es); lower --batch-size"
        )
    test = load_test_split(config, device, rank, world)
    return Data(train, validation if validation is not None else test, test)


def load_test_split(
    config: PipelineConfig, device: torch.device | None = None, rank: int = 0, world: int = 1
) -> BatchSource:
    """The test split alone (``config.test_samples`` of it), streamed or in memory: scoring reads nothing else."""
    records = Records.open(config.records_url)
    rows = min(config.test_samples or records.rows("test"), records.rows("test"))
    if config.stream:
        from mlpipes.streaming import StreamingSource

        return StreamingSource(config.records_url, "test", batch_size=1000, seed=config.seed, rank=rank, world=world,
                               limit=rows, shuffle=False, drop_last=False)  # fmt: skip
    columns = records.load("test", limit=rows)
    tensors = {
        name: torch.from_numpy(np.ascontiguousarray(column)).to(device or "cpu") for name, column in columns.items()
    }
    return InMemorySource(tensors, 1000, shuffle=False, rank=rank, world=world)


def seed_device(device: torch.device, seed: int) -> None:
    """Seed the generators that dropout on ``device`` draws from (the CPU's, and a GPU's own).

    Not ``torch.manual_seed``: called every step, it would also queue a seed, with a formatted stack
    trace, for each accelerator backend not yet started (CUDA, XPU, MTIA): 0.14-0.2 ms a step on a 2-core CPU.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):  # that GPU's generator, whichever is current
            torch.cuda.manual_seed(seed)
    elif device.type != "cpu":
        torch.manual_seed(seed)


def evaluate(model: nn.Module, source: BatchSource, inputs: InputsFn, labels: tuple[str, ...]) -> dict[str, Any]:
    """Metrics of ``model`` on a split: each rank scores its part, the sums are the split's."""
    confusion, loss_sum = confusion_and_loss(model, source.batches(0), inputs, len(labels))
    loss_total = distributed.all_reduce_sum(torch.tensor(loss_sum, dtype=torch.float64)).item()
    return summarize(distributed.all_reduce_sum(confusion), loss_total, labels)


@torch.no_grad()
def gather_logits(model: nn.Module, source: BatchSource, inputs: InputsFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's logits and labels of a split, concatenated on every rank (for calibration)."""
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for batch in source.batches(0):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        parts.append((model(inputs(batch)).float().cpu(), batch["label"].cpu()))
    logits = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0)
    labels = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, dtype=torch.long)
    if distributed.world_size() > 1:
        everyone = [None] * distributed.world_size()
        torch.distributed.all_gather_object(everyone, (logits, labels))
        logits, labels = torch.cat([e[0] for e in everyone]), torch.cat([e[1] for e in everyone])
    return logits, labels


def code_version(config: PipelineConfig) -> str:
    """The package that defines the config, and its version: ``"ascii_letter 0.1.0"``."""
    package = type(config).__module__.split(".")[0]
    return f"{package} {getattr(importlib.import_module(package), '__version__', '?')}"


def resume_latest(runs: Path, patience: float = 15.0) -> RunRecord | None:
    """The latest run, locked for this process; a process that is still dying (just killed) gets
    ``patience`` seconds to let go of it before the run is called busy."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return RunRecord.resume(runs)
        except RunBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def open_run(
    config: PipelineConfig, resume: bool, force: bool = False
) -> tuple[RunRecord, PipelineConfig, dict[str, Any] | None]:
    """A new run record, or the latest one (locked: no two processes train it) with its saved config
    and checkpoint (rank 0's job).

    Everything that can be refused is checked first (records, settings against them, the batch
    split, the version to write), so a refused run leaves nothing behind.
    """
    run = resume_latest(config.runs_dir) if resume else None
    if resume and (run is None or not run.path("checkpoint.pt").exists()):
        raise UserError(f"nothing to resume in {config.runs_dir}: no run with a checkpoint; train without --resume")
    if run is not None:
        config = with_credentials(type(config).from_yaml(run.path("config.yaml")), config)
    world = distributed.world_size()
    if config.batch_size % world:
        raise UserError(f"batch_size {config.batch_size} does not split over {world} processes; use a multiple")
    if config.model_version and not force:
        if bundled(config, config.model_version) is not None:
            raise UserError(
                f"model_version {config.model_version} is the version bundled with the {config.pipeline} package; "
                "pick another, or leave it empty to get <bundled version>+<run name> (--force to train it anyway)"
            )
        existing = manifest_path(config.weights_dir, config.pipeline, config.model_version)
        if existing.exists() and run is None:
            raise UserError(
                f"{existing}: {config.pipeline} {config.model_version} is already trained here and versions are "
                "immutable; pick another --model-version, or --force to replace it"
            )
    config.check_records(Records.open(config.records_url))
    if run is None:
        return RunRecord.create(config.runs_dir, _config_yaml(config)), config, None
    print(f"resuming {run.dir} with its saved config")
    return run, config, torch.load(run.path("checkpoint.pt"), map_location="cpu", weights_only=True)


def with_credentials(saved: PipelineConfig, given: PipelineConfig) -> PipelineConfig:
    """A resumed run's saved config, with each URL whose credentials the record left out taken from ``given``.

    The record never holds secrets, so a URL with ``user:secret@`` or a token comes back redacted; the
    same URL given again (redacted, it equals the saved one) brings its credentials back. Nothing else changes.
    """
    given_back = {
        name: getattr(given, name)
        for name in saved.to_dict()
        if getattr(given, name) != getattr(saved, name) and redact_config(getattr(given, name)) == getattr(saved, name)
    }
    return saved.replace(**given_back) if given_back else saved


def _config_yaml(config: PipelineConfig) -> str:
    import yaml

    return yaml.safe_dump(redact_config(config.to_dict()), sort_keys=False)


class Trainer:
    """One training run of a pipeline: set up in ``__init__``, then ``data``, ``fit``, ``save``."""

    def __init__(self, config: PipelineConfig, resume: bool = False, force: bool = False):
        self.device = distributed.setup(config.device)  # joins the process group when torchrun launched us
        self.threads = torch.get_num_threads()  # restored by save(): a library call leaves the process as it was
        if config.threads:
            torch.set_num_threads(config.threads)
        # Rank 0 creates or reopens the run; every rank gets its name, config and checkpoint, so
        # resuming needs no filesystem shared between machines.
        self.run, self.config, self.checkpoint = distributed.main_only(lambda: open_run(config, resume, force))
        self.force = force
        torch.manual_seed(self.config.seed)  # the model the recipe builds next starts the same every time
        self.generator = torch.Generator()  # CPU: the recipe's randomness (augmentation), reseeded every step
        self.history: list[dict[str, Any]] = []
        self.test: dict[str, Any] = {}
        self.temperature = 1.0
        self.calibration: dict[str, Any] = {}
        self.started = time.perf_counter()

    @property
    def world(self) -> int:
        return distributed.world_size()

    def data(self) -> Data:
        """The run's train/validation/test batches; one reader per machine fills a shard cache first."""
        with distributed.local_main_first():
            return load_data(self.config, self.device, distributed.rank(), self.world)

    # ---- the loop -------------------------------------------------------------------------------
    def fit(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, data: Data, loss: LossFn,
        inputs: InputsFn, calibration_inputs: InputsFn | None = None, calibration: BatchSource | None = None,
    ) -> None:  # fmt: skip
        """Train for ``config.epochs``; validate, checkpoint and log each epoch; test and calibrate at the end.

        The temperature is fitted on ``calibration`` (default: the validation split) through
        ``calibration_inputs`` (default: ``inputs``): a recipe may pass data unlike the training set's
        (other writers) or harder versions of its images, a proxy for the inputs people will bring, so
        that confidence holds there rather than only on data like the training set's.
        """
        config, run = self.config, self.run
        model.to(self.device)
        self._data, self._inputs = data, inputs
        start_epoch, start_step, sums = 0, 0, None
        if self.checkpoint is not None:
            model.load_state_dict(self.checkpoint["model"])
            optimizer.load_state_dict(self.checkpoint["optimizer"])
            scheduler.load_state_dict(self.checkpoint["scheduler"])
            self.history = self.checkpoint["history"]
            start_epoch, start_step = self.checkpoint["epoch"], self.checkpoint.get("step", len(data.train))
            if start_step >= len(data.train):
                start_epoch, start_step = start_epoch + 1, 0
            elif self.checkpoint.get("world", self.world) != self.world:
                raise UserError(
                    f"{self.run.dir}: the checkpoint was taken mid-epoch by {self.checkpoint['world']} processes; "
                    f"resume with {self.checkpoint['world']} (a run resumes on any number at an epoch's end)"
                )
            elif distributed.is_main():
                sums = torch.tensor(self.checkpoint["sums"], dtype=torch.float64)
        # DDP starts every rank from rank 0's weights and averages gradients in backward().
        gpu = [self.device.index] if self.device.type == "cuda" else None
        net = model if self.world == 1 else DistributedDataParallel(model, device_ids=gpu)
        state = (model, optimizer, scheduler)

        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            stats = self._train_epoch(net, state, data.train, loss, epoch, start_step, sums)
            start_step, sums = 0, None
            distributed.broadcast_buffers(model)  # evaluate (and save) rank 0's batch-norm statistics
            val = evaluate(model, data.validation, inputs, model.labels)
            self.history.append(
                {"epoch": epoch + 1, **stats, "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                 "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - epoch_start}
            )  # fmt: skip
            if distributed.is_main():
                self._checkpoint(state, epoch, len(data.train), [0.0, 0.0, 0.0])
                run.write_history(self.history)
                print(
                    f"epoch {epoch + 1}/{config.epochs}: train loss {stats['train_loss']:.4f} "
                    f"acc {stats['train_accuracy']:.4f} | val loss {val['loss']:.4f} acc {val['accuracy']:.4f} "
                    f"| {self.history[-1]['seconds']:.1f}s, {stats['samples_per_second']:.0f} samples/s, "
                    f"{100 * stats['data_wait_fraction']:.0f}% waiting for data"
                    + (f" | {self.world} processes" if self.world > 1 else ""),
                    flush=True,
                )
        self.test = evaluate(model, data.test, inputs, model.labels)
        self._calibrate(model, calibration or data.validation, calibration_inputs or inputs)

    def _train_epoch(
        self, net: nn.Module, state: tuple, source: BatchSource, loss_fn: LossFn, epoch: int, start_step: int,
        sums: torch.Tensor | None,
    ) -> dict[str, float]:  # fmt: skip
        """One pass over this rank's share; loss/accuracy summed over ranks, throughput measured."""
        from tqdm.auto import tqdm

        _, optimizer, scheduler = state
        config, device = self.config, self.device
        net.train()
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, seen: no sync per step
        if sums is not None:
            totals += sums.to(device)
        steps, waited, samples, began = len(source), 0.0, 0, time.perf_counter()
        bar = tqdm(
            total=steps, initial=start_step, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step", leave=False,
            mininterval=0.5, disable=not distributed.is_main(),
        )  # fmt: skip
        batches = source.batches(epoch, start_step)
        for step in range(start_step, steps):
            wait_start = time.perf_counter()
            batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
            waited += time.perf_counter() - wait_start
            step_seed = hash((config.seed, epoch, step, distributed.rank())) & (2**63 - 1)
            self.generator.manual_seed(step_seed)  # augmentation (and dropout, below) depend on the step alone,
            seed_device(device, step_seed)  # so a run resumed at any step continues exactly
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                loss, logits = loss_fn(net, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # under DDP this also averages the gradients over ranks
            optimizer.step()
            scheduler.step()
            labels = batch["label"]
            samples += len(labels)
            totals += torch.stack(
                [loss.detach().double() * len(labels), (logits.argmax(1) == labels).sum().double(),
                 torch.tensor(float(len(labels)), dtype=torch.float64, device=device)]
            )  # fmt: skip
            bar.update(1)
            if step % 20 == 0 and distributed.is_main():
                done = totals.tolist()
                bar.set_postfix(loss=f"{done[0] / max(1, done[2]):.3f}", acc=f"{done[1] / max(1, done[2]):.3f}",
                                wait=f"{100 * waited / max(1e-9, time.perf_counter() - began):.0f}%")  # fmt: skip
            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < steps:
                global_sums = distributed.all_reduce_sum(totals.cpu())
                if distributed.is_main():
                    self._checkpoint(state, epoch, step + 1, global_sums.tolist())
        bar.close()
        seconds = time.perf_counter() - began
        loss_sum, correct, seen = distributed.all_reduce_sum(totals.cpu()).tolist()
        return {
            "train_loss": loss_sum / max(1, seen),
            "train_accuracy": correct / max(1, seen),
            "samples_per_second": samples * self.world / max(1e-9, seconds),
            "data_wait_fraction": waited / max(1e-9, seconds),
        }

    def _checkpoint(self, state: tuple, epoch: int, step: int, sums: list[float]) -> None:
        model, optimizer, scheduler = state
        checkpoint = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": epoch, "step": step, "sums": sums, "history": self.history, "world": self.world,
        }  # fmt: skip
        with atomic_path(self.run.path("checkpoint.pt")) as tmp:
            torch.save(checkpoint, tmp)

    def _calibrate(self, model: nn.Module, source: BatchSource, inputs: InputsFn) -> None:
        """Fit a temperature on ``source`` so predicted probabilities match accuracy."""
        from mlpipes.calibration import expected_calibration_error, fit_temperature

        logits, labels = gather_logits(model, source, inputs)
        if not len(labels):
            return
        self.temperature = float(fit_temperature(logits, labels))
        before = expected_calibration_error(torch.softmax(logits, 1), labels)
        after = expected_calibration_error(torch.softmax(logits / self.temperature, 1), labels)
        self.calibration = {"temperature": self.temperature, "validation_ece_before": before,
                            "validation_ece": after}  # fmt: skip

    # ---- results --------------------------------------------------------------------------------
    def save(
        self, model: nn.Module, weights: dict[str, nn.Module], *, meta: dict[str, Any] | None = None,
        parent: dict[str, Any] | None = None,
    ) -> Path:  # fmt: skip
        """Write the run's metrics, plots and versioned weights (rank 0); every rank returns the manifest."""
        manifest = distributed.main_only(lambda: self._write_results(model, weights, meta or {}, parent))
        distributed.cleanup()  # every rank leaves the process group together
        torch.set_num_threads(self.threads)
        return manifest

    def _write_results(
        self, model: nn.Module, weights: dict[str, nn.Module], meta: dict[str, Any], parent: dict[str, Any] | None
    ) -> Path:
        config, run, test = self.config, self.run, self.test
        metrics = {
            "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_examples": test["examples"],
            "per_class_accuracy": test["per_class_accuracy"], "epochs": config.epochs, "processes": self.world,
            "train_seconds": sum(h["seconds"] for h in self.history),
            "this_session_seconds": time.perf_counter() - self.started,
            "parameters": sum(p.numel() for p in model.parameters()), **self.calibration,
        }  # fmt: skip
        run.write_metrics(metrics)
        write_json(run.path("confusion_matrix.json"), test["confusion_matrix"])
        plot_history(self.history, run.path("training_curves.png"))
        plot_confusion(test["confusion_matrix"], model.labels, run.path("confusion_matrix.png"))
        example = next(self._data.test.batches(0))
        sample = self._inputs({k: v[:1].to(self.device) for k, v in example.items()})
        manifest = save_version(
            config.weights_dir,
            name=config.pipeline,
            version=config.model_version or f"{config.pretrained_version}+{run.name}",
            state_dicts={role: module.state_dict() for role, module in weights.items()},
            config=redact_config(config.to_dict()),
            metrics={k: v for k, v in metrics.items() if k != "per_class_accuracy"},
            dataset_sha256=Records.open(config.records_url).sha256,
            code_version=code_version(config),
            meta={
                "labels": list(model.labels),
                "temperature": self.temperature,
                "input": {"shape": list(sample.shape[1:]), "dtype": str(sample.dtype).removeprefix("torch.")},
                **meta,
            },
            parent=parent,
            force=self.force,
        )
        run.release()
        print(
            f"test accuracy {test['accuracy']:.4f} on {test['examples']} examples "
            f"({math.fsum(h['seconds'] for h in self.history):.1f}s training)"
        )
        print(f"run record: {run.dir}\nweights: {manifest}")
        return manifest
