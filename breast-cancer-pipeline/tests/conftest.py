"""Shared fixtures: the breast-cancer records written once per session, the command line in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from breast_cancer import BreastCancerConfig
from breast_cancer.commands import COMMANDS
from breast_cancer.dataset import save_datasets
from mlpipes.cli import run_cli


@pytest.fixture(scope="session")
def bc_config(tmp_path_factory: pytest.TempPathFactory) -> BreastCancerConfig:
    """The default config with its records written into a private artifact directory."""
    config = BreastCancerConfig(artifact_dir=str(tmp_path_factory.mktemp("breast_cancer")))
    save_datasets(config)
    return config


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's ~/.mlpipes, cache or registry."""
    monkeypatch.setenv("MLPIPES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLPIPES_REGISTRY", raising=False)


@pytest.fixture
def bc_cli():
    """``bc_cli(*argv)``: the ``breast-cancer`` command run in this process; returns its exit status."""
    return lambda *argv: run_cli(COMMANDS, BreastCancerConfig, prog="breast-cancer", argv=[str(a) for a in argv])


@pytest.fixture
def bc_process():
    """``bc_process(*argv)``: ``python -m breast_cancer ARGV`` in a fresh process (as a user runs it)."""

    def run(*argv: str, processes: int = 1) -> subprocess.CompletedProcess:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
        prefix = launcher if processes > 1 else [sys.executable]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run(
            [*prefix, "-m", "breast_cancer", *map(str, argv)], capture_output=True, text=True, env=env
        )

    return run
