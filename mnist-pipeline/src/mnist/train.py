"""The training recipe: AdamW with a one-cycle schedule, label-smoothed cross-entropy, batch augmentation.

With ``teachers`` (trained models' manifests), the averaged probabilities of those models on each
augmented batch replace the labels: ensemble distillation, one model's cost at inference.

Read top to bottom: set up the run, get the data, build the model, choose optimizer and
schedule, define one training step's loss, fit, save. The loop around it (seeded, progress bar,
validation and a checkpoint each epoch, ``--resume``, data-parallel under ``torchrun`` with
``batch_size`` as the global batch, bf16, run record, plots, calibration, versioned weights) is
``mlpipes.training.Trainer``'s, so the same recipe runs on one process or many.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mlpipes.artifacts import sha256_file
from mlpipes.resolve import locate
from mlpipes.training import Trainer
from mlpipes.weights import read_manifest
from mnist.augment import Augmentation
from mnist.config import MnistConfig
from mnist.dataset import batch_inputs, font_calibration
from mnist.model import mnist_classifier, mnist_parent_features


def train_model(config: MnistConfig, resume: bool = False, force: bool = False) -> Path:
    """Train the classifier: run record, a checkpoint each epoch, versioned weights at the end."""
    trainer = Trainer(config, resume, force)  # device, seed, torchrun's process group, run record
    config = trainer.config  # a resumed run continues with the config it was started with
    data = trainer.data()  # train / validation / test batches: in memory, or streamed with --stream

    model = mnist_classifier(config).to(trainer.device).to(memory_format=torch.channels_last)
    parameters = model.freeze_features() if config.freeze_features else model.parameters()
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.learning_rate,
        total_steps=config.epochs * len(data.train),
        pct_start=config.warmup_fraction,
    )

    augment = Augmentation.from_config(config) if config.augment else None  # so drawn digits look familiar
    harder = Augmentation.from_config(config) if config.calibrate_augmented else None
    calibration = font_calibration(config) if config.calibration_fonts else None  # other writers' hands
    teacher_manifests = [locate(config, teacher).manifest for teacher in config.teachers]  # resolved once
    teachers = [mnist_classifier(config, pretrained=str(m)).to(trainer.device) for m in teacher_manifests]

    def loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch_inputs(batch)
        if augment is not None:
            images = augment(images, trainer.generator)  # the trainer reseeds it every step: resumes exactly
        logits = model(images)
        if teachers:  # on a distorted image, what the ensemble reads is a truer target than its label
            with torch.no_grad():
                targets = torch.stack([teacher(images).softmax(1) for teacher in teachers]).mean(0)
            return nn.functional.cross_entropy(logits, targets), logits
        return nn.functional.cross_entropy(logits, batch["label"], label_smoothing=config.label_smoothing), logits

    def calibration_inputs(batch: dict[str, torch.Tensor]) -> torch.Tensor:  # seeded: the same every run
        return harder(batch_inputs(batch), config.seed) if harder is not None else batch_inputs(batch)

    trainer.fit(
        model, optimizer, scheduler, data, loss,
        inputs=batch_inputs, calibration_inputs=calibration_inputs, calibration=calibration,
    )  # fmt: skip
    return trainer.save(
        model,
        {"features": model.features, "classifier": model},
        meta={"image_size": config.image_size, "polarity": "white on black", **teacher_lineage(teacher_manifests)},
        parent=mnist_parent_features(config)[1] if config.pretrained_features else None,
    )


def teacher_lineage(manifests: list[Path]) -> dict[str, list[dict[str, str]]]:
    """The distillation teachers, by name, version and manifest checksum: a distilled model's other parents."""
    lineage = [{**{key: read_manifest(m)[key] for key in ("name", "version")}, "manifest_sha256": sha256_file(m)}
               for m in manifests]  # fmt: skip
    return {"teachers": lineage} if lineage else {}
