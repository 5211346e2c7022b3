"""Fixtures of the adversarial suite: a private artifact home, and the CLI run in-process."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from adversarial_helpers import ENTRY_POINTS, MNIST_MIRROR, Result


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MLPIPES_HOME (and cache), with no registry or mirror settings leaking in."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("MLPIPES_HOME", str(root))
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))
    for name in ("MLPIPES_REGISTRY", "MLPIPES_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    if MNIST_MIRROR.is_dir():
        monkeypatch.setenv("MNIST_MIRROR", str(MNIST_MIRROR))
    return root


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``cli("mnist", "predict", ...)`` runs that command's ``main`` in this process and returns a Result."""

    def run(prog: str, *args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", [prog, *map(str, args)])
        main = importlib.import_module(ENTRY_POINTS[prog]).main
        try:
            code = main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return Result(code or 0, captured.out, captured.err)

    return run
