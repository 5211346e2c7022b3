import numpy as np
import pytest
import torch

from mlpipes.calibration import (
    T_MAX,
    T_MIN,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability,
    softmax,
)
from mlpipes.errors import DataError


def calibrated_world(n: int = 20_000, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution: labels are drawn from it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(n, classes))
    p = softmax(logits)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return logits, labels


@pytest.mark.parametrize("true_t", [3.0, 0.4], ids=["over-confident", "under-confident"])
def test_the_temperature_that_distorted_a_calibrated_model_is_recovered(true_t):
    logits, labels = calibrated_world()
    distorted = logits * true_t  # T > 1: logits too large (over-confident); T < 1: too small
    t = fit_temperature(distorted, labels)
    assert t == pytest.approx(true_t, rel=0.05)
    before = expected_calibration_error(softmax(distorted), labels)
    after = expected_calibration_error(softmax(distorted, t), labels)
    assert before > 0.05 and after < 0.015 and after < before / 4
    assert negative_log_likelihood(distorted, labels, t) < negative_log_likelihood(distorted, labels)


def test_a_calibrated_model_keeps_t_near_one_and_a_small_ece():
    logits, labels = calibrated_world(seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)
    assert expected_calibration_error(softmax(logits), labels) < 0.015


def test_fit_is_deterministic_and_takes_torch_tensors():
    logits, labels = calibrated_world(2000, seed=3)
    t = fit_temperature(logits * 2, labels)
    assert fit_temperature(torch.tensor(logits * 2, dtype=torch.float32), torch.tensor(labels)) == pytest.approx(
        t, rel=1e-5
    )
    assert fit_temperature(logits * 2, labels) == t


def test_the_fitted_t_is_the_nll_minimum():
    logits, labels = calibrated_world(3000, seed=4)
    logits = logits * 1.7 + 0.3
    t = fit_temperature(logits, labels)
    nll = negative_log_likelihood(logits, labels, t)
    for other in (t * 0.97, t * 1.03):
        assert negative_log_likelihood(logits, labels, other) > nll


def test_temperature_never_changes_the_predicted_class():
    logits, labels = calibrated_world(500, seed=5)
    t = fit_temperature(logits * 4, labels)
    assert (softmax(logits * 4, t).argmax(1) == (logits * 4).argmax(1)).all()


def test_extreme_cases_are_clipped_not_crashed():
    labels = np.array([0, 1, 2, 0])
    separated = np.eye(3)[labels] * 50  # every example right with a huge margin: the smaller T, the better
    assert fit_temperature(separated, labels) == T_MIN
    wrong = -np.eye(3)[labels] * 5  # every example confidently wrong: flatten as far as allowed
    assert fit_temperature(wrong, labels) == T_MAX
    assert np.isfinite(negative_log_likelihood(np.full((2, 3), 1e4), [0, 1], T_MIN))


def test_ece_bins_count_every_example_and_measure_the_gap():
    # Two bins used: confidence 0.95 (half right) and 0.55 (all right).
    p = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 4)
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 0])
    summary = reliability(p, labels, bins=10)
    assert sum(b["count"] for b in summary["bins"]) == 8
    assert [b["count"] for b in summary["bins"]] == [4, 4]
    assert summary["ece"] == pytest.approx(0.5 * abs(0.5 - 0.95) + 0.5 * abs(1.0 - 0.55))
    assert summary["max_gap"] == pytest.approx(0.45) and summary["accuracy"] == pytest.approx(0.75)
    assert expected_calibration_error(p, labels, bins=10) == summary["ece"]


def test_report_says_before_and_after():
    logits, labels = calibrated_world(5000, seed=6)
    report = calibration_report(logits * 2.5, labels, fit_temperature(logits * 2.5, labels))
    assert report["ece_after"] < report["ece_before"] and report["nll_after"] < report["nll_before"]
    assert report["mean_confidence_after"] < report["mean_confidence_before"]


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((3,)), [0, 1, 2], "expected logits"),
        (np.zeros((3, 2)), [0, 1], "expected logits"),
        (np.zeros((0, 2)), [], "no examples"),
        (np.array([[np.nan, 0.0]]), [0], "NaN"),
        (np.zeros((2, 2)), [0, 2], "labels must be in"),
    ],
)
def test_bad_input_gets_a_one_line_error(logits, labels, match):
    with pytest.raises(DataError, match=match):
        fit_temperature(logits, labels)
