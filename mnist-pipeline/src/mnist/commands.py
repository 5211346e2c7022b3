"""The pipeline's commands: its own two, then the standard ones every mlpipes pipeline has.

Each takes the config first; ``mlpipes.cli`` turns them into the ``mnist`` command line. Nothing
heavy is imported until a command runs, so ``mnist --help`` answers at once.
"""

from __future__ import annotations

from typing import Annotated

from mlpipes.commands import STANDARD, report_records
from mnist.config import MnistConfig


def save_datasets(
    config: MnistConfig, force: Annotated[bool, "rewrite the records even if they are up to date"] = False
) -> None:
    """Fetch the raw data (verified by sha256) and write train/test dataset records."""
    from mnist import dataset

    report_records(dataset.save_datasets(config, force=force))


def train_model(
    config: MnistConfig,
    resume: Annotated[bool, "continue the latest run from its last checkpoint"] = False,
    force: Annotated[bool, "replace weights of an explicit --model-version that already exist"] = False,
) -> None:
    """Train the classifier; writes a run record, a checkpoint per epoch and versioned weights."""
    from mnist import train

    train.train_model(config, resume=resume, force=force)


COMMANDS = [save_datasets, train_model, *STANDARD]
