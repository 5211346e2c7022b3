"""The training recipe: records in memory, AdamW with a one-cycle schedule, a checkpoint per epoch.

Read top to bottom: set up, load data, build the model, loop over epochs (train, validate,
checkpoint), then evaluate on the test split and write the run record and versioned weights.
Everything random is seeded, so the same config gives the same weights, and a run killed at
any moment resumes from its last finished epoch with ``--resume``.
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mlpipes.artifacts import RunRecord, atomic_path, write_json
from mlpipes.errors import UserError
from mlpipes.records import Records
from mlpipes.weights import save_version
from mnist.config import MnistConfig
from mnist.dataset import load_split
from mnist.evaluate import evaluate_model, plot_confusion, plot_history
from mnist.model import Classifier, mnist_classifier
from mnist.weights import load_parent_features


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


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


def train_one_epoch(
    model, optimizer, scheduler, images, labels, config: MnistConfig, epoch: int, device
) -> dict[str, float]:
    model.train()
    if config.freeze_features:
        model.features.eval()  # keep the transferred batch-norm statistics
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
    steps = len(images) // config.batch_size
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="step", leave=False, mininterval=0.5)
    for step in bar:
        batch = order[step * config.batch_size : (step + 1) * config.batch_size]
        x = images[batch].to(device, non_blocking=True).float().div_(255).contiguous(memory_format=torch.channels_last)
        y = labels[batch].to(device, non_blocking=True)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return {"train_loss": loss_sum / max(1, seen), "train_accuracy": correct / max(1, seen)}


def code_version(config: MnistConfig) -> str:
    """The package that defines the config, and its version: "ascii_letter 0.1.0"."""
    package = type(config).__module__.split(".")[0]
    return f"{package} {importlib.import_module(package).__version__}"


def train_model(config: MnistConfig, resume: bool = False) -> Path:
    """Train the classifier: run record, a checkpoint each epoch, versioned weights at the end."""
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)

    run = RunRecord.latest(config.runs_dir) if resume else None
    if resume and (run is None or not run.path("checkpoint.pt").exists()):
        raise UserError(f"nothing to resume in {config.runs_dir}: no run with a checkpoint; train without --resume")
    if run is not None:
        config = type(config).from_yaml(run.path("config.yaml"))
        print(f"resuming {run.dir} with its saved config")
    else:
        run = RunRecord.create(config.runs_dir, config.to_yaml())

    (train_images, train_labels), (val_images, val_labels) = split_train_validation(config)
    if len(train_images) < config.batch_size:
        raise UserError(f"{len(train_images)} training examples, fewer than one batch of {config.batch_size}")

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
    if resume:
        checkpoint = torch.load(run.path("checkpoint.pt"), map_location=device, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        history, start_epoch = checkpoint["history"], checkpoint["epoch"] + 1

    started = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        stats = train_one_epoch(model, optimizer, scheduler, train_images, train_labels, config, epoch, device)
        val = evaluate_model(model, val_images, val_labels)
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
            f"epoch {epoch + 1}/{config.epochs}: train loss {stats['train_loss']:.4f} acc {stats['train_accuracy']:.4f}"
            f" | val loss {val['loss']:.4f} acc {val['accuracy']:.4f} | {history[-1]['seconds']:.1f}s",
            flush=True,
        )

    test_images, test_labels = load_split(config, "test", config.test_samples)
    test = evaluate_model(model, test_images, test_labels)
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_examples": test["examples"],
        "per_class_accuracy": test["per_class_accuracy"],
        "epochs": config.epochs,
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
