"""The suite's own behaviour: how rows are judged and reported. No timings are asserted here."""

from __future__ import annotations

import inspect
import json
import math
import os

import pytest
import torch

import mnist
from benchmarks import __main__ as cli
from benchmarks import registry
from benchmarks.fastpath import GATHER_FRAGMENTS, batches, our_gather
from benchmarks.keras_convnet import KERAS_PARAMETERS, KerasConvnet
from benchmarks.registry import ERROR, MET, MISSED, NOT_AVAILABLE, REPORT, Metric, NotAvailable, Row, Target, run_row
from benchmarks.report import format_value, markdown_table, text_table


class FakeBench:
    def __init__(self) -> None:
        self.details: dict = {}


def make_row(fn) -> Row:
    return Row("fake", "a fake row", "<= 1 s", fn)


def test_targets_judge_both_directions_and_never_pass_non_finite_values():
    assert Target("<=", 30).met(30) and not Target("<=", 30).met(30.01)
    assert Target(">=", 0.8).met(0.8) and not Target(">=", 0.8).met(0.79)
    for bad in (math.inf, -math.inf, math.nan):
        assert not Target("<=", 30).met(bad)
        assert not Target(">=", 0.8).met(bad)


def test_a_row_is_met_only_when_every_targeted_metric_is():
    met = Metric("a", 1.0, "s", Target("<=", 2))
    missed = Metric("b", 3.0, "s", Target("<=", 2))
    info = Metric("c", 5.0, "s")
    assert run_row(make_row(lambda b: [met, info]), FakeBench()).status == MET
    assert run_row(make_row(lambda b: [met, missed, info]), FakeBench()).status == MISSED
    assert run_row(make_row(lambda b: [info]), FakeBench()).status == REPORT


def test_a_missing_dependency_is_reported_as_not_available_with_its_reason():
    def row(bench):
        raise NotAvailable("mlpipes.onnx is not importable")

    result = run_row(make_row(row), FakeBench())
    assert result.status == NOT_AVAILABLE
    assert result.reason == "mlpipes.onnx is not importable"
    assert result.to_json()["metrics"] == []


def test_a_crashing_row_becomes_an_error_result_not_an_exception():
    def row(bench):
        raise ValueError("shape (3, 4)")

    result = run_row(make_row(row), FakeBench())
    assert result.status == ERROR
    assert result.reason == "ValueError: shape (3, 4)"
    assert "Traceback" in result.details["traceback"]
    assert run_row(make_row(lambda b: []), FakeBench()).status == ERROR  # measured nothing


def test_non_finite_values_become_json_null_and_print_as_never():
    metric = Metric("time to 99%", math.inf, "s", Target("<=", 30))
    data = metric.to_json()
    assert data["value"] is None and data["status"] == MISSED
    json.dumps(data, allow_nan=False)
    assert format_value(None, "s") == "never"
    assert format_value(123456.7, "img/s") == "123,457 img/s"
    assert format_value(0.04912, "s") == "0.0491 s"


def test_our_gather_is_the_line_the_trainer_runs_and_gives_float_channels_last_batches():
    from mlpipes import training

    source = inspect.getsource(training.InMemorySource.batches)
    assert all(fragment in source for fragment in GATHER_FRAGMENTS)
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(50)
    batch = batches(50, 16, seed=0)[0]
    x, y = our_gather(images, labels, batch)
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, images[batch].float() / 255) and torch.equal(y, labels[batch])


def test_epoch_batches_cover_each_row_once():
    full = batches(300, 128, seed=1)
    assert [len(b) for b in full] == [128, 128]
    keep = batches(300, 128, seed=1, drop_last=False)
    assert sorted(torch.cat(keep).tolist()) == list(range(300))


def test_the_keras_recipe_has_the_keras_parameter_count_and_ten_outputs():
    model = KerasConvnet()
    assert sum(p.numel() for p in model.parameters()) == KERAS_PARAMETERS == 34_826
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_suite_writes_results_with_machine_description_and_statuses(tmp_path, monkeypatch, capsys):
    def fast(bench):
        return [Metric("speed", 2.0, "x", Target(">=", 1))]

    def missing(bench):
        raise NotAvailable("no browser here")

    rows = {
        "fast": Row("fast", "a fast row", ">= 1x", fast),
        "missing": Row("missing", "a row that needs a browser", "<= 0.3 ms", missing),
    }
    monkeypatch.setattr(registry, "ROWS", rows)
    monkeypatch.setattr(cli, "ROWS", rows)
    monkeypatch.setenv("MLPIPES_HOME", str(tmp_path / "home"))
    out = tmp_path / "results.json"
    assert cli.main(["--quick", "--output", str(out)]) == 0
    assert os.environ["MLPIPES_HOME"] == str(tmp_path / "home")  # the suite's scratch home does not leak out
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert {"cpu_model", "cpu_cores", "date", "load_average_start", "load_average_end"} <= report["machine"].keys()
    assert report["machine"]["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert report["machine"]["versions"]["mnist-pipeline"] == mnist.__version__  # the code's, not stale metadata
    assert [r["status"] for r in report["rows"]] == [MET, NOT_AVAILABLE]
    assert report["summary"][MET] == 1 and report["summary"][NOT_AVAILABLE] == 1
    printed = capsys.readouterr().out
    assert "not available (no browser here)" in printed
    assert "| fast | speed | 2.00 x | >= 1 | met |" in markdown_table(report["rows"])
    assert "met" in text_table(report["rows"])


def test_unknown_row_names_are_refused_with_the_valid_names():
    with pytest.raises(SystemExit, match=r"unknown benchmark row.*nope.*train_model"):
        cli.select(["nope"])
