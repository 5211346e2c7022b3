"""The letter pipeline's own commands, then MNIST's training and the standard ones, run with the letter config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ascii_letter.config import AsciiLetterConfig
from mlpipes.commands import STANDARD, report_records
from mnist.commands import train_model


def make_raw_data(config: AsciiLetterConfig, output: Annotated[str, "where to write the tarball"] = "") -> None:
    """Render the letter tarball (images/<a..z>/<NNN>.png): pen strokes like handwriting, font glyphs or both
    (--generator); same seed, same bytes."""
    from ascii_letter import dataset

    path = dataset.make_raw_data(config, Path(output) if output else None)
    print(f"{config.examples_per_class * len(config.labels)} images in {path}")


def save_datasets(
    config: AsciiLetterConfig, force: Annotated[bool, "rewrite the records even if they are up to date"] = False
) -> None:
    """Read the raw tarball (--tarball, default: the rendered one) safely, split it stratified and
    seeded, and write train/test records."""
    from ascii_letter import dataset

    report_records(dataset.save_datasets(config, force=force))


def transfer_study(
    config: AsciiLetterConfig,
    per_class: Annotated[tuple[int, ...], "training examples per letter to compare"] = (10, 25, 50, 100),
    seeds: Annotated[int, "training seeds per setting"] = 3,
) -> None:
    """MNIST features vs from scratch at several training-set sizes: a table, JSON and a PNG plot."""
    from ascii_letter import study

    study.transfer_study(config, per_class, seeds)


COMMANDS = [make_raw_data, save_datasets, train_model, *STANDARD, transfer_study]
