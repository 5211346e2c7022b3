"""A classifier's metrics from a confusion matrix, and the plots a run record keeps.

Confusion matrices and summed losses add across ranks and batches, so every rank scores its
own part and one ``all_reduce`` gives the split's numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpipes.artifacts import atomic_path


@torch.no_grad()
def confusion_and_loss(
    model: nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    inputs: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    num_classes: int,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, float]:
    """The confusion matrix (rows: true, columns: predicted) and summed cross-entropy over ``batches``."""
    model.eval()
    device = device or next(model.parameters()).device
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    total_loss = 0.0
    for batch in batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        logits = model(inputs(batch)).float()
        labels = batch["label"]
        total_loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        pairs = (labels * num_classes + logits.argmax(1)).cpu()
        confusion += torch.bincount(pairs, minlength=num_classes * num_classes).view(num_classes, num_classes)
    return confusion, total_loss


def summarize(confusion: torch.Tensor, loss_sum: float, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, mean loss, per-class accuracy and the confusion matrix, as plain JSON values."""
    examples = int(confusion.sum())
    per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
    return {
        "accuracy": (confusion.diag().sum() / max(1, examples)).item(),
        "loss": float(loss_sum) / max(1, examples),
        "examples": examples,
        "per_class_accuracy": {label: round(acc, 6) for label, acc in zip(labels, per_class.tolist())},
        "confusion_matrix": confusion.tolist(),
    }


def format_report(result: dict[str, Any], labels: Sequence[str], split: str = "test") -> str:
    """The text ``evaluate`` prints: accuracy, per-class accuracy, and the confusion matrix if it fits."""
    lines = [f"{split} accuracy {result['accuracy']:.4f} on {result['examples']} examples (loss {result['loss']:.4f})"]
    lines.append("per class: " + "  ".join(f"{k}:{v:.3f}" for k, v in result["per_class_accuracy"].items()))
    matrix = result["confusion_matrix"]
    if len(labels) <= 30:
        width = max(5, len(str(max(max(r) for r in matrix))) + 1, max(len(str(label)) for label in labels) + 1)
        first = max(4, max(len(str(label)) for label in labels))
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * first + "".join(f"{label:>{width}}" for label in labels))
        lines += [f"{label:>{first}}" + "".join(f"{n:>{width}}" for n in row) for label, row in zip(labels, matrix)]
    return "\n".join(lines)


def plot_history(history: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, training vs validation."""
    plt = _pyplot()
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


def plot_confusion(confusion: list[list[int]], labels: Sequence[str], path: str | os.PathLike) -> None:
    """The test confusion matrix on a log colour scale, with counts when there are few classes."""
    plt = _pyplot()
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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
