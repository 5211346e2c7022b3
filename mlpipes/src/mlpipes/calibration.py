"""Calibrated confidence: one temperature that makes predicted probabilities match accuracy.

(Interim version; the model-web branch replaces it.)
"""

from __future__ import annotations

import itertools

import torch


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the negative log-likelihood of ``softmax(logits / T)``."""
    logits, labels = torch.as_tensor(logits).double(), torch.as_tensor(labels).long()
    grid = torch.exp(torch.linspace(-3, 3, 601, dtype=torch.float64))
    losses = torch.stack([torch.nn.functional.cross_entropy(logits / t, labels) for t in grid])
    return float(grid[int(losses.argmin())])


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their counts."""
    probabilities, labels = torch.as_tensor(probabilities).double(), torch.as_tensor(labels).long()
    confidence, predicted = probabilities.max(1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    error = 0.0
    for lo, hi in itertools.pairwise(edges.tolist()):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            gap = correct[inside].mean().item() - confidence[inside].mean().item()
            error += inside.double().mean().item() * abs(gap)
    return error
