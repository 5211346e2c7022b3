"""The letter pipeline's own commands; the rest are MNIST's, run with the letter config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ascii_letter import dataset
from ascii_letter.config import AsciiLetterConfig
from ascii_letter.study import transfer_study
from mnist import commands as mnist_commands


def make_raw_data(config: AsciiLetterConfig, output: Annotated[str, "where to write the tarball"] = "") -> None:
    """Render the letter tarball (images/<a..z>/<NN>.png) from fonts; same seed, same bytes."""
    path = dataset.make_raw_data(config, Path(output) if output else None)
    print(f"{config.examples_per_class * len(config.labels)} images in {path}")


def save_datasets(
    config: AsciiLetterConfig, force: Annotated[bool, "rewrite the records even if they are up to date"] = False
) -> None:
    """Read the raw tarball (--tarball, default: the rendered one) safely, split it stratified and
    seeded, and write train/test records."""
    records = dataset.save_datasets(config, force=force)
    rows = ", ".join(f"{split} {info['rows']}" for split, info in records.index["splits"].items())
    print(f"dataset records ({rows}) in {records.url}\nsha256 {records.sha256}")


inherited = [c for c in mnist_commands.COMMANDS if c.__name__ != "save_datasets"]
COMMANDS = [make_raw_data, save_datasets, *inherited, transfer_study]
