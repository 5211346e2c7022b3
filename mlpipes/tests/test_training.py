"""The shared training loop on a toy tabular pipeline: run record, resume from the exact step, sources."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mlpipes.errors import UserError
from mlpipes.pipeline import PipelineConfig
from mlpipes.records import write_records
from mlpipes.training import InMemorySource, Trainer, seed_device, with_credentials
from mlpipes.weights import load_state_dict, read_manifest


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.labels = ("low", "high")
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


@dataclasses.dataclass(frozen=True)
class ToyConfig(PipelineConfig):
    pipeline = "toy"

    @property
    def labels(self) -> tuple[str, ...]:
        return ("low", "high")


def records(folder: Path) -> str:
    rng = np.random.default_rng(0)
    splits = {}
    for split, rows in (("train", 300), ("test", 100)):
        x = rng.normal(size=(rows, 4)).astype(np.float32)
        splits[split] = {"x": x, "label": (x.sum(1) > 0).astype(np.int64)}
    write_records(folder, splits, name="toy", provenance={"seed": 0})
    return str(folder)


class Crash(Exception):
    pass


def train(
    config: ToyConfig, resume: bool = False, crash_at: int | None = None, calibration: InMemorySource | None = None
) -> Path:
    """A recipe like a pipeline's train.py, with noise from the trainer's generator (like augmentation)."""
    trainer = Trainer(config, resume)
    config = trainer.config
    data = trainer.data()
    model = Toy()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.9)
    steps = itertools.count()

    def loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if next(steps) == crash_at:
            raise Crash
        x = batch["x"] + 0.1 * torch.randn(batch["x"].shape, generator=trainer.generator)
        logits = model(x)
        return nn.functional.cross_entropy(logits, batch["label"]), logits

    trainer.fit(model, optimizer, scheduler, data, loss, inputs=lambda batch: batch["x"], calibration=calibration)
    return trainer.save(model, {"classifier": model})


@pytest.fixture
def config(tmp_path: Path) -> ToyConfig:
    return ToyConfig(
        artifact_dir=str(tmp_path / "art"), dataset_url=records(tmp_path / "data"), epochs=3, batch_size=20,
        learning_rate=0.05, validation_samples=50, checkpoint_every=4,
    )  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_a_run_writes_its_record_and_a_calibrated_version(config: ToyConfig, stream: bool) -> None:
    manifest_path = train(config.replace(stream=stream))
    (run,) = [p for p in (Path(config.artifact_dir) / "runs").iterdir() if p.is_dir()]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[-1]["val_accuracy"] > 0.8
    manifest = read_manifest(manifest_path)
    assert manifest["version"] == f"1.0.0+{run.name}" and manifest["meta"]["labels"] == ["low", "high"]
    assert manifest["meta"]["input"] == {"shape": [4], "dtype": "float32"} and manifest["meta"]["temperature"] > 0
    assert manifest["metrics"]["test_examples"] == 100 and manifest["metrics"]["test_accuracy"] > 0.8
    for name in ("config.yaml", "metrics.json", "training_curves.png", "confusion_matrix.png", "checkpoint.pt"):
        assert (run / name).stat().st_size > 0


def test_the_temperature_is_fitted_on_the_calibration_data_when_given(config: ToyConfig) -> None:
    """Data unlike the training set's (here: labels right only 70 % of the time) calls for a softer temperature."""
    plain = read_manifest(train(config.replace(model_version="1.0.0")))["metrics"]
    x = np.random.default_rng(1).normal(size=(400, 4)).astype(np.float32)
    label = (x.sum(1) > 0) ^ (np.random.default_rng(2).random(400) < 0.3)
    unlike = InMemorySource({"x": torch.from_numpy(x), "label": torch.from_numpy(label.astype(np.int64))}, 100,
                            shuffle=False)  # fmt: skip
    other = read_manifest(train(config.replace(model_version="2.0.0"), calibration=unlike))["metrics"]
    assert other["test_accuracy"] == plain["test_accuracy"]  # the same training; only the fit differs
    assert other["temperature"] > 2 * plain["temperature"]


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
@pytest.mark.parametrize("crash_at", [6, 13, 24])  # mid-epoch after a checkpoint, just after one, at an epoch's end
def test_resume_after_a_crash_continues_from_the_exact_step(
    config: ToyConfig, tmp_path: Path, crash_at: int, stream: bool
) -> None:
    config = config.replace(stream=stream)
    reference = train(config.replace(artifact_dir=str(tmp_path / "straight")))
    with pytest.raises(Crash):
        train(config, crash_at=crash_at)
    resumed = train(config, resume=True)
    for key, tensor in load_state_dict(reference, "classifier").items():
        torch.testing.assert_close(load_state_dict(resumed, "classifier")[key], tensor, rtol=1e-6, atol=1e-6)
    run = Path(config.artifact_dir) / "runs" / read_manifest(resumed)["version"].split("+")[1]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_a_resumed_run_takes_back_the_credentials_its_record_left_out(config: ToyConfig) -> None:
    config = config.replace(registry="https://reader:s3cret@models.example/registry?token=abc")
    with pytest.raises(Crash):
        train(config, crash_at=6)
    (run,) = [p for p in (Path(config.artifact_dir) / "runs").iterdir() if p.is_dir()]
    saved = ToyConfig.from_yaml(run / "config.yaml")
    assert "s3cret" not in (run / "config.yaml").read_text() and saved.registry != config.registry
    assert with_credentials(saved, config).registry == config.registry
    assert with_credentials(saved, config.replace(epochs=9)).epochs == 3  # only redacted URLs come back
    other = config.replace(registry="https://reader:s3cret@elsewhere.example/registry?token=abc")
    assert with_credentials(saved, other).registry == saved.registry  # another URL is not this run's
    resumed = Trainer(config, resume=True)  # what the resumed run trains with
    resumed.run.release()
    assert resumed.config.registry == config.registry and resumed.config.epochs == 3


def test_nothing_to_resume_and_too_few_rows_are_one_line_errors(config: ToyConfig) -> None:
    with pytest.raises(UserError, match="nothing to resume"):
        train(config, resume=True)
    with pytest.raises(UserError, match="fewer than one batch"):
        train(config.replace(batch_size=400))


@pytest.mark.parametrize(("rows", "world", "batch"), [(100, 1, 10), (103, 2, 10), (97, 3, 7), (10, 4, 2)])
def test_in_memory_shares_are_equal_disjoint_and_resumable(rows: int, world: int, batch: int) -> None:
    columns = {"i": torch.arange(rows)}
    shares = [InMemorySource(columns, batch, seed=3, rank=r, world=world) for r in range(world)]
    seen = [torch.cat([b["i"] for b in s.batches(epoch=1)]) for s in shares]
    assert len({len(s) for s in seen}) == 1 and len(seen[0]) == len(shares[0]) * batch
    union = torch.cat(seen)
    assert len(set(union.tolist())) == len(union)  # disjoint
    tail = torch.cat([b["i"] for b in shares[0].batches(epoch=1, start_step=1)] or [torch.zeros(0, dtype=torch.long)])
    assert torch.equal(tail, seen[0][batch:])  # resuming at step 1 gives exactly the rest
    evaluation = [InMemorySource(columns, batch, shuffle=False, rank=r, world=world) for r in range(world)]
    covered = sorted(torch.cat([b["i"] for s in evaluation for b in s.batches(0)]).tolist())
    assert covered == list(range(rows))  # evaluation covers every row once


def test_seed_device_makes_dropout_depend_on_the_step_seed_alone() -> None:
    def dropout_after(seed: int) -> torch.Tensor:
        torch.rand(7)  # whatever ran before must not matter
        seed_device(torch.device("cpu"), seed)
        return torch.nn.functional.dropout(torch.ones(256), 0.5)

    assert torch.equal(dropout_after(123), dropout_after(123))
    assert not torch.equal(dropout_after(123), dropout_after(124))
