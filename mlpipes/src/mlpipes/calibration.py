"""Calibrated confidence: one temperature that makes a classifier's probabilities honest.

Label smoothing caps a network's confidence (a clean, obvious 7 gets ~88 %) while a plain
cross-entropy network tends to be over-confident; either way "80 %" does not mean right four
times in five. Temperature scaling divides the logits by one scalar ``T`` fitted on held-out
data (minimum negative log-likelihood): it never changes which class wins, only how sure the
model says it is. Fit it on the pipeline's own validation split, never on the data you report on.

Works on numpy arrays or torch tensors (anything ``numpy.asarray`` takes); computed in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlpipes.errors import DataError

# The search interval for T. Beyond it the model is either certain of everything it sees
# (perfectly separated training-like data: any small T fits) or knows nothing; we clip there.
T_MIN, T_MAX = 1e-2, 1e2


def _logits_and_labels(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64, copy=False)
    if z.ndim != 2 or y.shape != (len(z),):
        raise DataError(f"calibration: expected logits (N, classes) and labels (N,), got {z.shape} and {y.shape}")
    if len(z) == 0:
        raise DataError("calibration: no examples to fit a temperature on")
    if not np.isfinite(z).all():
        raise DataError("calibration: logits contain NaN or infinity")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise DataError(f"calibration: labels must be in [0, {z.shape[1]}), got {y.min()}..{y.max()}")
    return z, y


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of ``logits / temperature`` (rows sum to 1), float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def negative_log_likelihood(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Mean cross-entropy of the labels under ``softmax(logits / temperature)``."""
    z, y = _logits_and_labels(logits, labels)
    z = z / temperature
    m = z.max(axis=1)
    log_sum = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(log_sum - z[np.arange(len(y)), y]))


def fit_temperature(logits: Any, labels: Any, iterations: int = 100) -> float:
    """The temperature ``T > 0`` minimising the NLL of ``softmax(logits / T)`` on (held-out) labels.

    The NLL is convex in ``β = 1/T``, and its derivative, ``mean(E_p[z] - z_label)``, increases
    with β: a bisection on the sign of that derivative, in log β, finds the minimum without step
    sizes or tolerances to tune and gives the same T for the same input on every machine. ``T``
    is clipped to [0.01, 100] (reached only when the data are perfectly separated or the logits
    carry no information).
    """
    z, y = _logits_and_labels(logits, labels)
    z = z - z.max(axis=1, keepdims=True)  # shift-invariant; keeps exp() finite for any β <= 1/T_MIN
    true = z[np.arange(len(y)), y]

    def slope(beta: float) -> float:
        p = np.exp(beta * z)
        p /= p.sum(axis=1, keepdims=True)
        return float(np.mean((p * z).sum(axis=1) - true))

    lo, hi = math.log(1 / T_MAX), math.log(1 / T_MIN)  # log β
    if slope(math.exp(lo)) >= 0:
        return T_MAX
    if slope(math.exp(hi)) <= 0:
        return T_MIN
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if slope(math.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return float(1 / math.exp((lo + hi) / 2))


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = 15) -> float:
    """Top-1 expected calibration error: the count-weighted mean |accuracy − confidence| over
    ``bins`` equal-width confidence bins (0 is perfectly calibrated; 0.03 is "3 %")."""
    return reliability(probabilities, labels, bins)["ece"]


def reliability(probabilities: Any, labels: Any, bins: int = 15) -> dict[str, Any]:
    """A reliability summary (JSON-ready): per confidence bin its count, mean confidence and
    accuracy, plus the ECE, overall accuracy, mean confidence and the largest bin gap."""
    p, y = _logits_and_labels(probabilities, labels)
    if bins < 1:
        raise DataError(f"calibration: bins must be >= 1, got {bins}")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (lo, hi]; 0 in bin 0
    counts = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct, minlength=bins)
    used = counts > 0
    mean_conf = np.where(used, conf_sum / np.maximum(counts, 1), np.nan)
    mean_acc = np.where(used, acc_sum / np.maximum(counts, 1), np.nan)
    gaps = np.abs(mean_acc - mean_conf)
    ece = float(np.sum(gaps[used] * counts[used]) / len(y))
    return {
        "examples": len(y),
        "ece": ece,
        "max_gap": float(gaps[used].max()),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "bins": [
            {"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(counts[b]),
             "confidence": float(mean_conf[b]), "accuracy": float(mean_acc[b])}
            for b in range(bins)
            if used[b]
        ],
    }  # fmt: skip


def calibration_report(logits: Any, labels: Any, temperature: float, bins: int = 15) -> dict[str, Any]:
    """ECE and NLL before (T = 1) and after temperature scaling, e.g. for a run's metrics."""
    before = reliability(softmax(logits), labels, bins)
    after = reliability(softmax(logits, temperature), labels, bins)
    return {
        "temperature": temperature,
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "nll_before": negative_log_likelihood(logits, labels),
        "nll_after": negative_log_likelihood(logits, labels, temperature),
        "mean_confidence_before": before["mean_confidence"],
        "mean_confidence_after": after["mean_confidence"],
        "accuracy": after["accuracy"],
        "examples": after["examples"],
    }
