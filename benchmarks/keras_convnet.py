"""The Keras ``mnist_convnet`` example rebuilt in PyTorch: the baseline our training is compared with.

Same architecture (34,826 parameters), Keras' initialisers (Glorot-uniform kernels, zero
biases) and Adam settings (lr 1e-3, epsilon 1e-7), batch 128, and ``validation_split=0.1`` as
Keras does it: the *last* 10% of the training set, taken before shuffling. It trains on the
same records through the same data fast path as ours, so the comparison is about the recipe.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from benchmarks.fastpath import batches, our_gather
from mlpipes.training import InMemorySource, evaluate
from mnist.dataset import batch_inputs

KERAS_PARAMETERS = 34_826


class KerasConvnet(nn.Module):
    """Conv 32 3×3 relu, maxpool 2, conv 64 3×3 relu, maxpool 2, flatten, dropout 0.5, dense 10."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = tuple(str(d) for d in range(10))  # evaluation reads them
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(64 * 5 * 5, 10),  # softmax lives in the loss, as usual in PyTorch
        )
        for module in self.net:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def time_to_accuracy(
    images: torch.Tensor,
    labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    target: float = 0.99,
    max_epochs: int = 15,
    batch_size: int = 128,
    seed: int = 0,
) -> dict[str, Any]:
    """Train until test accuracy reaches ``target`` (checked after each epoch, not timed).

    The clock counts what Keras' ``fit`` does per epoch: the training steps and the validation
    pass. Returns the seconds to target (inf if never reached) and the per-epoch history.
    """
    torch.manual_seed(seed)
    split = len(images) - len(images) // 10
    train_x, train_y, val_x, val_y = images[:split], labels[:split], images[split:], labels[split:]
    model = KerasConvnet().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    history: list[dict[str, float]] = []
    seconds = 0.0
    for epoch in range(max_epochs):
        start = time.perf_counter()
        model.train()
        for batch in batches(len(train_x), batch_size, seed * 1000 + epoch, drop_last=False):
            x, y = our_gather(train_x, train_y, batch)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        val = evaluate_model(model, val_x, val_y)
        seconds += time.perf_counter() - start
        test = evaluate_model(model, test_images, test_labels)
        history.append(
            {"epoch": epoch + 1, "seconds": seconds, "val_accuracy": val["accuracy"], "test_accuracy": test["accuracy"]}
        )
        print(
            f"keras recipe epoch {epoch + 1}: {seconds:.1f}s so far, val acc {val['accuracy']:.4f}, "
            f"test acc {test['accuracy']:.4f}",
            flush=True,
        )
        if test["accuracy"] >= target:
            return {"seconds": seconds, "epochs": epoch + 1, "history": history}
    return {"seconds": float("inf"), "epochs": None, "history": history}


def evaluate_model(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Accuracy and loss on uint8 images (N,1,H,W), through the trainer's own evaluation."""
    source = InMemorySource({"image": images[:, 0], "label": labels}, 1000, shuffle=False)
    return evaluate(model, source, batch_inputs, model.labels)
