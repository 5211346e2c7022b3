"""Seeded, stratified train/test splits: the same split on every machine."""

from __future__ import annotations

import numpy as np

from mlpipes.errors import DataError


def stratified_split(
    labels: np.ndarray, test_per_class: int, seed: int, train_per_class: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded split taking ``test_per_class`` of every class for test, the rest
    (or ``train_per_class`` of it) for training, each in a seeded random order (so the first N
    of either is a fair sample). Same labels and seed, same split everywhere."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        shuffled = members[rng.permutation(len(members))]
        if len(shuffled) <= test_per_class:
            raise DataError(f"class {label}: {len(members)} examples, need more than {test_per_class} for a split")
        test.append(shuffled[:test_per_class])
        rest = shuffled[test_per_class:]
        if train_per_class:
            if len(rest) < train_per_class:
                raise DataError(f"class {label}: {len(rest)} training examples, fewer than {train_per_class}")
            rest = rest[:train_per_class]
        train.append(rest)
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
