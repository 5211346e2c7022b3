"""`torchrun -m mnist train-model`: the unchanged command, data-parallel over gloo on loopback.

These tests launch real processes (``python -m mnist`` and ``torchrun``) on a small subset of
real MNIST, so they need the offline mirror (``$MNIST_MIRROR``, set by CI and the Makefile).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlpipes import distributed
from mlpipes.errors import UserError
from mlpipes.records import Records
from mlpipes.testing import S3Server
from mnist import dataset
from mnist.config import MnistConfig
from mnist.train import train_model

SUBSET = ["--train-samples", "4000", "--validation-samples", "500", "--test-samples", "2000", "--batch-size", "64"]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Full MNIST as local dataset records, written once for this module."""
    if not os.environ.get("MNIST_MIRROR"):
        pytest.skip("set MNIST_MIRROR to a folder holding the MNIST .gz files (see README)")
    config = MnistConfig(artifact_dir=str(tmp_path_factory.mktemp("mnist-data")))
    return dataset.save_datasets(config).url


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a launched run: a private artifact home and shard cache."""
    return {**os.environ, "MLPIPES_HOME": str(tmp_path / "home"), "MLPIPES_CACHE": str(tmp_path / "cache")}


def command(args: list[str], processes: int) -> list[str]:
    """``python -m mnist ARGS``, or the same under ``torchrun --standalone --nproc-per-node N``."""
    if processes == 1:
        return [sys.executable, "-m", "mnist", *args]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return [*launcher, "-m", "mnist", *args]


def mnist(args: list[str], env: dict[str, str], processes: int = 1) -> str:
    done = subprocess.run(command(args, processes), env=env, capture_output=True, text=True, timeout=400)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{output[-3000:]}"
    return done.stdout


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and all its descendants at once, as a crash or an out-of-memory kill would."""
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def the_run(artifacts: Path) -> Path:
    runs = [p for p in (artifacts / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected one run record, found {runs}"
    return runs[0]


def test_two_processes_reach_the_accuracy_of_one_and_only_rank_0_writes(
    records: str, env: dict[str, str], tmp_path: Path
) -> None:
    accuracy = {}
    for processes in (1, 2):
        artifacts = tmp_path / f"x{processes}"
        args = ["train-model", "--epochs", "2", "--dataset-url", records, "--artifact-dir", str(artifacts), *SUBSET]
        out = mnist(args, env, processes)
        metrics = json.loads((the_run(artifacts) / "metrics.json").read_text())
        assert metrics["processes"] == processes
        assert metrics["test_examples"] == 2000
        accuracy[processes] = metrics["test_accuracy"]
        # rank 0 alone prints and writes: one line per epoch, one result, one run, one weights version
        epochs = [line.split(":")[0] for line in out.splitlines() if line.startswith("epoch ")]
        assert epochs == ["epoch 1/2", "epoch 2/2"]
        assert out.count("test accuracy") == 1
        version = f"{MnistConfig.pretrained_version}+{the_run(artifacts).name}"  # never a bundled version
        files = sorted(p.name for p in (artifacts / "weights").iterdir() if not p.name.startswith("."))
        assert len(files) == 3 and files[0] == f"mnist-{version}.json"
        assert files[1].startswith(f"mnist-classifier-{version}.") and files[2].startswith(f"mnist-features-{version}.")
        assert not list(artifacts.rglob("*.tmp"))
    assert accuracy[1] > 0.9 and accuracy[2] > 0.9, accuracy
    assert abs(accuracy[1] - accuracy[2]) < 0.02, accuracy


def test_a_killed_distributed_run_resumes_from_its_last_checkpoint(
    records: str, env: dict[str, str], tmp_path: Path
) -> None:
    artifacts = tmp_path / "art"
    small = ["--train-samples", "1500", "--validation-samples", "300", "--test-samples", "500", "--batch-size", "60"]
    args = ["train-model", "--epochs", "8", "--dataset-url", records, "--artifact-dir", str(artifacts), *small]
    launcher = subprocess.Popen(
        command(args, 2), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        history: list = []
        while not history and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            files = list(artifacts.glob("runs/*/history.json"))
            history = json.loads(files[0].read_text()) if files else []
    finally:
        kill_tree(launcher.pid)  # torchrun and both ranks, mid-training
        launcher.wait()
    assert history, "the run ended or timed out before its first checkpoint"
    run = the_run(artifacts)
    assert not (run / "metrics.json").exists(), "the run finished before it could be killed"

    out = mnist(["train-model", "--resume", "--artifact-dir", str(artifacts)], env, processes=2)
    assert f"resuming {run}" in out
    resumed = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in resumed] == list(range(1, 9))
    assert resumed[: len(history)] == history  # finished epochs are kept, not retrained
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs"] == 8
    assert (artifacts / "weights" / f"mnist-{MnistConfig.pretrained_version}+{run.name}.json").exists()


def test_every_rank_trains_on_records_read_from_s3(
    records: str, s3_env: S3Server, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, **s3_env.env()}
    url = f"s3://{s3_env.create_bucket()}/datasets/mnist"
    out = mnist(["save-datasets", "--dataset-url", url, "--artifact-dir", str(tmp_path / "upload")], env)
    index = Records.open(url).index  # written through fsspec: shards, then the index
    assert index["sha256"] in out

    artifacts = tmp_path / "art"
    small = ["--train-samples", "1000", "--validation-samples", "200", "--test-samples", "500", "--batch-size", "50"]
    mnist(["train-model", "--epochs", "1", "--dataset-url", url, "--artifact-dir", str(artifacts), *small], env, 2)
    manifest = json.loads(next((artifacts / "weights").glob("mnist-*+*.json")).read_text())
    assert manifest["dataset_sha256"] == index["sha256"]
    assert manifest["config"]["dataset_url"] == url
    shards = {s["sha256"] for split in index["splits"].values() for s in split["shards"]}
    cached = {p.stem for p in (Path(env["MLPIPES_CACHE"]) / "shards").iterdir()}
    first = {index["splits"][split]["shards"][0]["sha256"] for split in ("train", "test")}
    assert first <= cached <= shards  # the shards the run needs, fetched into the cache keyed by their sha256
    assert not (artifacts / "datasets").exists()


def test_bf16_autocast_trains(records: str, tmp_path: Path) -> None:
    """The bf16 path (meant for CUDA) also runs on CPU, where torch autocasts to bfloat16 too."""
    config = MnistConfig(
        artifact_dir=str(tmp_path),
        dataset_url=records,
        train_samples=2000,
        validation_samples=200,
        test_samples=500,
        epochs=2,
        batch_size=50,
        precision="bf16",
    )
    manifest = json.loads(train_model(config).read_text())
    assert manifest["config"]["precision"] == "bf16"
    assert math.isfinite(manifest["metrics"]["test_loss"]) and manifest["metrics"]["test_accuracy"] > 0.85


def test_a_batch_that_does_not_split_over_the_processes_is_refused_before_any_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: 2)  # as under torchrun --nproc-per-node 2
    with pytest.raises(UserError, match="batch_size 65 does not split over 2 processes"):
        train_model(MnistConfig(artifact_dir=str(tmp_path), batch_size=65))
    assert not (tmp_path / "runs").exists()
