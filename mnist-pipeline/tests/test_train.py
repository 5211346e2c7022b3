"""Training on a small real subset: run record, weights, reproducibility, resume after kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from mlpipes.artifacts import sha256_file
from mlpipes.resolve import locate
from mlpipes.weights import load_state_dict, read_manifest, save_version
from mnist import MnistConfig, mnist_classifier
from mnist.dataset import load_split
from mnist.train import train_model

SMALL = {"train_samples": 3000, "validation_samples": 500, "test_samples": 1000, "batch_size": 64}


def small_config(mnist_config, tmp_path, **overrides):
    records = str(mnist_config.artifacts / "datasets" / "mnist")
    return MnistConfig(artifact_dir=str(tmp_path), dataset_url=records, **{**SMALL, **overrides})


def cli_args(config):
    return [
        f"--{key.replace('_', '-')}={value}"
        for key, value in {**SMALL, "artifact_dir": config.artifact_dir, "dataset_url": config.dataset_url}.items()
    ]


def test_short_training_learns_and_writes_a_complete_run_record(mnist_config, tmp_path):
    config = small_config(mnist_config, tmp_path, epochs=2)
    manifest_path = train_model(config)

    run = next((tmp_path / "runs").glob("*/config.yaml")).parent
    assert MnistConfig.from_yaml(run / "config.yaml") == config  # the saved config loads back equal
    history = yaml.safe_load((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[-1]["val_accuracy"] > history[0]["val_accuracy"] - 0.05
    metrics = yaml.safe_load((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.85 and metrics["test_examples"] == 1000
    for name in ("training_curves.png", "confusion_matrix.png", "checkpoint.pt", "confusion_matrix.json"):
        assert (run / name).stat().st_size > 0

    manifest = read_manifest(manifest_path)
    version = f"{MnistConfig.pretrained_version}+{run.name}"  # never a bundled version's name
    assert manifest_path.name == f"mnist-{version}.json" and set(manifest["files"]) == {"features", "classifier"}
    assert manifest["config"] == config.to_dict() and manifest["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert manifest["meta"]["temperature"] > 0 and metrics["validation_ece"] <= metrics["validation_ece_before"]
    assert len(manifest["dataset_sha256"]) == 64
    assert manifest["parent"] is None


def assert_same_weights(first, second):
    """Equal up to float summation order (oneDNN may pick kernels by memory alignment)."""
    for key, tensor in load_state_dict(first, "classifier").items():
        other = load_state_dict(second, "classifier")[key]
        assert other.float().allclose(tensor.float(), rtol=1e-3, atol=1e-3), key


def test_same_seed_same_weights(mnist_config, tmp_path):
    first = train_model(small_config(mnist_config, tmp_path / "a", epochs=1))
    second = train_model(small_config(mnist_config, tmp_path / "b", epochs=1))
    assert_same_weights(first, second)
    accuracies = [read_manifest(path)["metrics"]["test_accuracy"] for path in (first, second)]
    assert abs(accuracies[0] - accuracies[1]) <= 0.002


def test_resume_after_kill_matches_an_uninterrupted_run(mnist_config, tmp_path):
    epochs = 3
    interrupted = small_config(mnist_config, tmp_path / "killed", epochs=epochs)
    command = [sys.executable, "-m", "mnist", "train-model", *cli_args(interrupted), f"--epochs={epochs}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "killed" / "runs"
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoint.pt")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    run = next(runs.glob("*/checkpoint.pt")).parent
    assert not (run / "metrics.json").exists(), "the run finished before it could be killed"

    result = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    history = yaml.safe_load((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))

    reference = train_model(small_config(mnist_config, tmp_path / "straight", epochs=epochs))
    assert_same_weights(next((tmp_path / "killed" / "weights").glob("mnist-*.json")), reference)


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mnist", "train-model", "--resume", "--artifact-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("mnist: error: nothing to resume in") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--batch-size=0", "'batch_size': must be > 0"),
        ("--image-size=20", "'image_size': must be >= 28"),
        ("--learning-rate=inf", "'learning_rate': must be finite"),
        ("--learning-rate=0", "'learning_rate': must be > 0"),
        ("--model-version=/../../x", "not a safe name"),
    ],
)
def test_invalid_settings_are_refused(flag, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mnist", "train-model", flag, "--artifact-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and message in result.stderr


def test_a_distilled_model_learns_what_its_teachers_read_and_names_them(mnist_config, accuracy_of, tmp_path):
    """With ``teachers``, their probabilities are the targets, not the labels: a teacher that reads every
    digit d as d+1 (the bundled model with its head's rows rolled) teaches its student the same, whatever
    head each has (the teacher loads with its own: the bundled letters learn from teachers of two heads)."""
    state = load_state_dict(locate(mnist_config, True).manifest, "classifier")
    for key in ("head.2.weight", "head.2.bias"):
        state[key] = state[key].roll(1, 0)
    teacher = save_version(
        tmp_path / "teacher", name="mnist", version="shifted", state_dicts={"classifier": state},
        config=MnistConfig().to_dict(), metrics={}, dataset_sha256=None, code_version="test",
    )  # fmt: skip
    config = small_config(mnist_config, tmp_path / "student", epochs=2, head_grid=2, teachers=(str(teacher),))
    assert read_manifest(teacher)["config"]["head_grid"] != config.head_grid
    manifest = train_model(config)

    student = mnist_classifier(config, pretrained=str(manifest))
    images, labels = load_split(mnist_config, "test", limit=1000)
    assert accuracy_of(student, images, (labels + 1) % 10) > 0.8
    assert accuracy_of(student, images, labels) < 0.1
    lineage = {"name": "mnist", "version": "shifted", "manifest_sha256": sha256_file(teacher)}
    assert read_manifest(manifest)["meta"]["teachers"] == [lineage]
