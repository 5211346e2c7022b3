"""The training recipe: records in memory, AdamW with a one-cycle schedule, a checkpoint per epoch.

Read top to bottom: set up, load data, build the model, loop over epochs (train, validate,
checkpoint), then evaluate on the test split and write the run record and versioned weights.
Everything random is seeded, so the same config gives the same weights, and a run killed at
any moment resumes from its last finished epoch with ``--resume``.

The same recipe trains data-parallel when launched by ``torchrun --nproc-per-node N -m mnist
train-model``: ``batch_size`` stays the global batch (each of the N processes takes
``batch_size / N`` of it), DistributedDataParallel averages the gradients, metrics are summed
over processes, and only rank 0 prints and writes files. Under plain ``python`` the world is
one process and every distributed call is a no-op.
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from mlpipes import distributed
from mlpipes.artifacts import RunRecord, atomic_path, write_json
from mlpipes.errors import UserError
from mlpipes.records import Records
from mlpipes.weights import save_version
from mnist.config import MnistConfig
from mnist.dataset import load_split
from mnist.evaluate import confusion_and_loss, plot_confusion, plot_history, summarize
from mnist.model import Classifier, mnist_classifier
from mnist.weights import load_parent_features


def split_train_validation(config: MnistConfig) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Training and validation examples: a seeded hold-out of the train split, or the test split."""
    images, labels = load_split(config, "train", config.train_samples)
    if config.validation_samples == 0:
        return (images, labels), load_split(config, "test", config.test_samples)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
    val, train = order[: config.validation_samples], order[config.validation_samples :]
    return (images[train], labels[train]), (images[val], labels[val])


def trainable_parameters(model: Classifier, config: MnistConfig) -> list[nn.Parameter]:
    if config.freeze_features:
        model.features.requires_grad_(False)
        return list(model.head.parameters())
    return list(model.parameters())


def train_one_epoch(model: nn.Module, optimizer, scheduler, images, labels, config: MnistConfig, epoch: int):
    """One pass over this rank's share of the (device-resident) training set; metrics summed over ranks."""
    model.train()
    if config.freeze_features:
        getattr(model, "module", model).features.eval()  # keep the transferred batch-norm statistics
    batch_size = config.batch_size // distributed.world_size()  # this rank's part of the global batch
    order = distributed.epoch_indices(len(images), config.seed, epoch).to(images.device)
    steps = len(order) // batch_size
    loss_sum = torch.zeros((), device=images.device)  # summed on the device: no sync per step
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    bf16 = config.precision == "bf16"
    desc, quiet = f"epoch {epoch + 1}/{config.epochs}", not distributed.is_main()  # one progress bar: rank 0's
    bar = tqdm(range(steps), desc=desc, unit="step", leave=False, mininterval=0.5, disable=quiet)
    for step in bar:
        batch = order[step * batch_size : (step + 1) * batch_size]
        x = images[batch].float().div_(255).contiguous(memory_format=torch.channels_last)
        y = labels[batch]
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP this also averages the gradients over ranks
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach().float() * len(y)
        correct += (logits.argmax(1) == y).sum()
        if step % 20 == 0 and not quiet:
            seen = (step + 1) * batch_size
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}")
    loss_total, correct_total, seen_total = distributed.all_reduce_sum(
        torch.tensor([loss_sum.item(), correct.item(), steps * batch_size], dtype=torch.float64)
    ).tolist()
    return {"train_loss": loss_total / max(1, seen_total), "train_accuracy": correct_total / max(1, seen_total)}


def evaluate_across_ranks(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Each rank scores every world-th example; the summed confusion matrices and losses are the split's."""
    mine = slice(distributed.rank(), None, distributed.world_size())
    confusion, loss_sum = confusion_and_loss(model, images[mine], labels[mine])
    loss_total = distributed.all_reduce_sum(torch.tensor(loss_sum, dtype=torch.float64)).item()
    return summarize(distributed.all_reduce_sum(confusion), loss_total, model.labels)


def code_version(config: MnistConfig) -> str:
    """The package that defines the config, and its version: "ascii_letter 0.1.0"."""
    package = type(config).__module__.split(".")[0]
    return f"{package} {importlib.import_module(package).__version__}"


def open_run(config: MnistConfig, resume: bool) -> tuple[RunRecord, MnistConfig, dict[str, Any] | None]:
    """A new run record, or the latest one with its saved config and last checkpoint (rank 0's job)."""
    run = RunRecord.latest(config.runs_dir) if resume else None
    if resume and (run is None or not run.path("checkpoint.pt").exists()):
        raise UserError(f"nothing to resume in {config.runs_dir}: no run with a checkpoint; train without --resume")
    if run is not None:
        config = type(config).from_yaml(run.path("config.yaml"))
    world = distributed.world_size()
    if config.batch_size % world:
        raise UserError(f"batch_size {config.batch_size} does not split over {world} processes; use a multiple")
    if run is None:
        return RunRecord.create(config.runs_dir, config.to_yaml()), config, None
    print(f"resuming {run.dir} with its saved config")
    return run, config, torch.load(run.path("checkpoint.pt"), map_location="cpu", weights_only=True)


def train_model(config: MnistConfig, resume: bool = False) -> Path:
    """Train the classifier: run record, a checkpoint each epoch, versioned weights at the end."""
    device = distributed.setup(config.device)  # joins the process group when torchrun launched us
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)

    # Rank 0 creates or reopens the run; every rank gets its name, config and checkpoint, so
    # resuming needs no filesystem shared between machines.
    run, config, checkpoint = distributed.main_only(lambda: open_run(config, resume))
    world = distributed.world_size()

    with distributed.local_main_first():  # one read per machine fills the shard cache for the others
        (train_images, train_labels), (val_images, val_labels) = split_train_validation(config)
        test_images, test_labels = load_split(config, "test", config.test_samples)
    if len(train_images) < config.batch_size:
        raise UserError(f"{len(train_images)} training examples, fewer than one batch of {config.batch_size}")
    train_images, train_labels = train_images.to(device), train_labels.to(device)  # uint8: small enough

    model = mnist_classifier(config).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model, config), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = len(train_images) // config.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.learning_rate,
        total_steps=config.epochs * steps_per_epoch,
        pct_start=config.warmup_fraction,
    )

    history: list[dict[str, Any]] = []
    start_epoch = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        history, start_epoch = checkpoint["history"], checkpoint["epoch"] + 1
    # DDP starts every rank from rank 0's weights and averages gradients in backward().
    gpu = [device.index] if device.type == "cuda" else None
    net = model if world == 1 else DistributedDataParallel(model, device_ids=gpu)

    started = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        stats = train_one_epoch(net, optimizer, scheduler, train_images, train_labels, config, epoch)
        distributed.broadcast_buffers(model)  # evaluate (and save) rank 0's batch-norm statistics
        val = evaluate_across_ranks(model, val_images, val_labels)
        history.append(
            {
                "epoch": epoch + 1,
                **stats,
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - epoch_start,
            }
        )
        if distributed.is_main():
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "history": history,
            }
            with atomic_path(run.path("checkpoint.pt")) as tmp:
                torch.save(checkpoint, tmp)
            run.write_history(history)
            print(
                f"epoch {epoch + 1}/{config.epochs}: train loss {stats['train_loss']:.4f} "
                f"acc {stats['train_accuracy']:.4f} | val loss {val['loss']:.4f} acc {val['accuracy']:.4f} "
                f"| {history[-1]['seconds']:.1f}s" + (f" | {world} processes" if world > 1 else ""),
                flush=True,
            )

    test = evaluate_across_ranks(model, test_images, test_labels)
    manifest = distributed.main_only(lambda: write_results(config, run, model, history, test, started))
    distributed.cleanup()  # every rank leaves the process group together
    return manifest


def write_results(
    config: MnistConfig, run: RunRecord, model: Classifier, history: list[dict[str, Any]], test: dict, started: float
) -> Path:
    """Metrics, plots and versioned weights of a finished run (rank 0's job); the manifest's path."""
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_examples": test["examples"],
        "per_class_accuracy": test["per_class_accuracy"],
        "epochs": config.epochs,
        "processes": distributed.world_size(),
        "train_seconds": sum(h["seconds"] for h in history),
        "this_session_seconds": time.perf_counter() - started,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    run.write_metrics(metrics)
    write_json(run.path("confusion_matrix.json"), test["confusion_matrix"])
    plot_history(history, run.path("training_curves.png"))
    plot_confusion(test["confusion_matrix"], model.labels, run.path("confusion_matrix.png"))

    manifest = save_version(
        config.weights_dir,
        name=config.pipeline,
        version=config.model_version,
        state_dicts={"features": model.features.state_dict(), "classifier": model.state_dict()},
        config=config.to_dict(),
        metrics={k: v for k, v in metrics.items() if k != "per_class_accuracy"},
        dataset_sha256=Records.open(config.records_url).sha256,
        code_version=code_version(config),
        meta={
            "labels": list(model.labels),
            "image_size": config.image_size,
            "input": "float32 (N,1,H,W) in [0,1]",
            "polarity": "white on black",
        },
        parent=load_parent_features(config)[1] if config.pretrained_features else None,
    )
    print(
        f"test accuracy {test['accuracy']:.4f} on {test['examples']} images "
        f"({math.fsum(h['seconds'] for h in history):.1f}s training)"
    )
    print(f"run record: {run.dir}\nweights: {manifest}")
    return manifest
