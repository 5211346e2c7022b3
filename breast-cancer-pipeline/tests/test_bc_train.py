"""train-model on the real table: run record, the input scaler in the weights, resume after kill -9, evaluate."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from breast_cancer import FEATURES, BreastCancerConfig
from breast_cancer.dataset import batch_inputs
from breast_cancer.train import train_model
from mlpipes.training import load_data
from mlpipes.weights import load_state_dict, read_manifest


def short(bc_config: BreastCancerConfig, tmp_path, **overrides) -> BreastCancerConfig:
    """A private artifact directory reading the session's records; few epochs."""
    settings = {"epochs": 6, **overrides}
    return BreastCancerConfig(artifact_dir=str(tmp_path), dataset_url=bc_config.records_url, **settings)


def test_short_training_writes_a_run_and_weights_that_carry_the_scaler(bc_config, tmp_path):
    config = short(bc_config, tmp_path)
    manifest_path = train_model(config)

    run = next((tmp_path / "runs").glob("*/metrics.json")).parent
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.9 and metrics["test_examples"] == 114
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == list(range(1, 7))
    assert (run / "training_curves.png").stat().st_size > 0 and (run / "confusion_matrix.png").stat().st_size > 0

    manifest = read_manifest(manifest_path)
    assert manifest["version"] == f"1.0.0+{run.name}" and set(manifest["files"]) == {"features", "classifier"}
    assert manifest["meta"]["features"] == list(FEATURES) and manifest["meta"]["input"]["shape"] == [30]
    assert manifest["meta"]["temperature"] > 0 and manifest["config"] == config.to_dict()

    # The standardisation statistics are those of the rows the recipe trains on (never validation or test
    # rows), saved with the weights: no external scaler.
    state = load_state_dict(manifest_path, "classifier")
    rows = torch.cat([batch_inputs(batch) for batch in load_data(config).train.batches(0)])
    assert len(rows) == (455 - 91) // 32 * 32  # the first epoch's batches: the hold-out and the remainder left out
    np.testing.assert_allclose(state["mean"], rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(state["std"], rows.std(0), rtol=1e-5)
    assert not np.allclose(state["std"], 1.0)
    assert set(load_state_dict(manifest_path, "features")) == {"0.weight", "0.bias", "3.weight", "3.bias"}


def killed_at_first_checkpoint(command: list[str], runs: Path) -> Path:
    """Start a training process, SIGKILL it as soon as a checkpoint exists; return its run folder."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - started < 120:
            checkpoint = next(runs.glob("*/checkpoint.pt"), None)
            if checkpoint is not None:
                return checkpoint.parent
            time.sleep(0.005)
        raise AssertionError(f"no checkpoint in {runs} (exit status {process.poll()})")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_resume_after_kill_matches_an_uninterrupted_run(bc_config, tmp_path, bc_process, bc_cli, capsys):
    # dropout on: each step reseeds the generator dropout draws from, so the resumed steps draw the same masks
    settings = {"epochs": 12, "dropout": 0.3, "checkpoint_every": 2}
    killed = short(bc_config, tmp_path / "killed", **settings)
    argv = ["train-model", "--artifact-dir", killed.artifact_dir, "--dataset-url", killed.dataset_url]
    argv += [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]
    run = killed_at_first_checkpoint([sys.executable, "-m", "breast_cancer", *argv], tmp_path / "killed" / "runs")
    if (run / "metrics.json").exists():
        pytest.skip("the run finished before it could be killed (machine too fast for this test)")

    resumed = bc_process(*argv, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == list(range(1, 13))

    reference = train_model(short(bc_config, tmp_path / "straight", **settings))
    resumed_manifest = next((tmp_path / "killed" / "weights").glob("breast_cancer-*.json"))
    for key, tensor in load_state_dict(reference, "classifier").items():
        np.testing.assert_allclose(load_state_dict(resumed_manifest, "classifier")[key], tensor, atol=1e-5)

    capsys.readouterr()
    assert bc_cli("evaluate", "--artifact-dir", killed.artifact_dir, "--dataset-url", killed.dataset_url) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("test accuracy") and f"breast_cancer 1.0.0+{run.name} (trained" in captured.err


def test_evaluate_names_the_weights_and_prints_the_confusion_matrix(bc_config, bc_cli, capsys):
    assert bc_cli("evaluate", "--weights", "pretrained", "--artifact-dir", bc_config.artifact_dir) == 0
    captured = capsys.readouterr()
    assert "breast_cancer 1.0.0 (bundled" in captured.err
    assert captured.out.startswith("test accuracy 0.98") and "malignant" in captured.out and "benign" in captured.out


def test_data_parallel_training_under_torchrun(bc_config, tmp_path, bc_process):
    argv = ["train-model", "--artifact-dir", tmp_path, "--dataset-url", bc_config.records_url, "--epochs", "2"]
    result = bc_process(*argv, processes=2)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(next(tmp_path.glob("runs/*/metrics.json")).read_text())
    assert metrics["processes"] == 2 and metrics["test_examples"] == 114
    assert len(list(tmp_path.glob("weights/breast_cancer-1.0.0+*.json"))) == 1
