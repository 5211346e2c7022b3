"""What every row shares: a private scratch folder, the MNIST records, and our training runs.

Rows never touch ``~/.mlpipes``: everything goes under one temporary folder that is removed at
the end. Expensive shared work (writing the records, training our model) happens once per suite
run and is reused by every row that needs it, so a comparison row and the row it compares with
see the same measurement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from benchmarks.registry import NotAvailable
from benchmarks.timing import time_once
from mlpipes.errors import UserError
from mlpipes.weights import find_versions, read_manifest
from mnist.config import MIRROR_ENV, MnistConfig


@dataclass
class TrainingRun:
    """One ``train-model`` run of the default config, in this process or through the CLI."""

    how: str  # "in-process" or "cli"
    wall_seconds: float  # the whole call or command, data loading and saving included
    train_seconds: float  # the epochs alone (training plus validation), as the run record reports it
    test_accuracy: float
    history: list[dict[str, Any]]


class Bench:
    """Passed to every row: settings of this suite run plus the shared, lazily built fixtures."""

    def __init__(self, workdir: Path, quick: bool = False, profiling: bool = False):
        self.workdir = workdir
        self.quick = quick
        self.profiling = profiling  # the profiler sees only this process: train here at least once
        self.details: dict[str, Any] = {}  # a row's extra facts for the JSON; reset before each row
        self._names: set[str] = set()
        self._training: list[TrainingRun] | None = None

    def repeats(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def fresh_dir(self, name: str) -> Path:
        """A new, empty folder under the scratch folder (``name``, ``name-2``, ...)."""
        candidate, n = name, 1
        while candidate in self._names:
            n += 1
            candidate = f"{name}-{n}"
        self._names.add(candidate)
        path = self.workdir / candidate
        path.mkdir(parents=True)
        return path

    # ---- data ----------------------------------------------------------------------------------
    @cached_property
    def data_home(self) -> Path:
        """An artifact folder with the raw MNIST files cached and the records written."""
        from mnist.dataset import save_datasets

        if not os.environ.get(MIRROR_ENV):
            raise NotAvailable(f"no MNIST data: set ${MIRROR_ENV} to a folder holding the four MNIST .gz files")
        home = self.fresh_dir("data")
        try:
            save_datasets(MnistConfig(artifact_dir=str(home)))
        except UserError as e:
            raise NotAvailable(f"no MNIST data ({e})") from None
        return home

    @property
    def records_url(self) -> str:
        return MnistConfig(artifact_dir=str(self.data_home)).records_url

    def config(self, name: str, **overrides: Any) -> MnistConfig:
        """The default MNIST config, training from the shared records into its own artifact folder."""
        return MnistConfig(artifact_dir=str(self.fresh_dir(name)), dataset_url=self.records_url, **overrides)

    # ---- subprocesses --------------------------------------------------------------------------
    def cli_env(self, home: Path) -> dict[str, str]:
        return {**os.environ, "MLPIPES_HOME": str(home), "TQDM_DISABLE": "1"}

    def run_cli(self, args: list[str], home: Path) -> float:
        """Wall seconds of ``python -m mnist <args>`` with ``home`` as its artifact root."""
        seconds, done = time_once(
            lambda: subprocess.run(
                [sys.executable, "-m", "mnist", *args], env=self.cli_env(home), capture_output=True, text=True
            )
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"mnist {' '.join(args)} exited {done.returncode}: {' | '.join(tail)}")
        return seconds

    # ---- our training runs ---------------------------------------------------------------------
    def our_training(self) -> list[TrainingRun]:
        """Train the default config: twice in this process (quick: not at all) and once through the CLI.

        Every run's epoch time counts as a sample of the training time; the CLI run also gives
        the wall time a user sees, interpreter start and imports included.
        """
        if self._training is None:
            from mnist.train import train_model

            runs = []
            for _ in range(self.repeats(full=2, quick=1 if self.profiling else 0)):
                config = self.config("train")
                wall, manifest = time_once(lambda config=config: train_model(config))
                runs.append(self._training_run("in-process", wall, manifest))
            home = self.fresh_dir("train-cli")
            wall = self.run_cli(["train-model", "--dataset-url", self.records_url], home)
            config = MnistConfig(artifact_dir=str(home / MnistConfig.pipeline))
            runs.append(self._training_run("cli", wall, self._manifest_path(config)))
            self._training = runs
        return self._training

    @staticmethod
    def _manifest_path(config: MnistConfig) -> Path:
        """The newest trained version (a run names it ``<bundled version>+<run name>``)."""
        return find_versions(config.weights_dir, config.pipeline)[-1]

    @staticmethod
    def _training_run(how: str, wall: float, manifest: Path) -> TrainingRun:
        metrics = read_manifest(manifest)["metrics"]
        history_file = sorted((manifest.parent.parent / "runs").glob("*/history.json"))
        history = read_json(history_file[-1]) if history_file else []
        return TrainingRun(how, wall, metrics["train_seconds"], metrics["test_accuracy"], history)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
