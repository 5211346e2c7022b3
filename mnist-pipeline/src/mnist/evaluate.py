"""Measure a classifier on labelled images, and draw the plots a run record keeps."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpipes.artifacts import atomic_path


def evaluate_model(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> dict[str, Any]:
    """Accuracy, mean loss, per-class accuracy and confusion matrix of ``model`` on uint8 images."""
    confusion, loss_sum = confusion_and_loss(model, images, labels, batch_size)
    return summarize(confusion, loss_sum, model.labels)


@torch.no_grad()
def confusion_and_loss(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, float]:
    """The confusion matrix (rows: true, columns: predicted) and summed loss: sums add across ranks."""
    model.eval()
    device = next(model.parameters()).device
    classes = len(model.labels)
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    total_loss = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).float().div_(255)
        y = labels[start : start + batch_size].to(device)
        logits = model(x.contiguous(memory_format=torch.channels_last))
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        predicted = logits.argmax(1)
        confusion += torch.bincount((y * classes + predicted).cpu(), minlength=classes * classes).view(classes, classes)
    return confusion, total_loss


def summarize(confusion: torch.Tensor, loss_sum: float, labels: tuple[str, ...]) -> dict[str, Any]:
    """The metrics a run record keeps, from a confusion matrix and a summed loss."""
    examples = int(confusion.sum())
    per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
    return {
        "accuracy": (confusion.diag().sum() / max(1, examples)).item(),
        "loss": float(loss_sum) / max(1, examples),
        "examples": examples,
        "per_class_accuracy": {label: round(acc, 6) for label, acc in zip(labels, per_class.tolist())},
        "confusion_matrix": confusion.tolist(),
    }


def plot_history(history: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, training vs validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "o-", label="validation")
        ax.set(xlabel="epoch", ylabel=key, title=key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(confusion: list[list[int]], labels: tuple[str, ...], path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    size = max(5, 0.4 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    if len(labels) <= 12:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if i == j else "black")
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
