"""The real-handwriting benchmark's own logic, on synthetic strokes (the real set is never a fixture)."""

import gzip
import json

import numpy as np
import pytest

from benchmarks import handwriting
from benchmarks.registry import ROWS


def sample(char: str, label: int, kind: str = "letter", case: str = "lower") -> dict:
    return {"label": label, "char": char, "kind": kind, "case": case, "strokes": [[[40.0, 40.0], [240.0, 240.0]]]}


def test_case_report_counts_top1_top3_and_confusions():
    labels = ("a", "b", "c", "d")
    samples = [sample("a", 0), sample("a", 0), sample("b", 1), sample("c", 2)]
    probs = np.array(
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.05, 0.45, 0.4], [0.1, 0.1, 0.5, 0.3]], np.float32
    )
    r = handwriting.case_report(probs, samples, labels)
    assert r["n"] == 4 and r["top1"] == 0.5 and r["top3"] == 0.75
    assert r["mean_top1_probability"] == pytest.approx((0.7 + 0.6 + 0.45 + 0.5) / 4)
    assert r["confusions"] == [
        {"char": "a", "predicted": "b", "count": 1, "share": 0.5},
        {"char": "b", "predicted": "c", "count": 1, "share": 1.0},
    ]


def test_samples_are_drawn_with_the_generators_pad_and_framed(monkeypatch):
    from ascii_letter import strokes
    from mnist import pen

    assert strokes.pad_image is pen.pad_image  # the generator draws with the same pen
    drawn, pad_image = [], pen.pad_image

    def spy(s, *args, **kwargs):
        drawn.append(s)
        return pad_image(s, *args, **kwargs)

    monkeypatch.setattr(pen, "pad_image", spy)
    x = handwriting.framed([sample("a", 0)], {"size": 32, "box": 23, "center": "mass"})
    assert len(drawn) == 1 and x.shape == (1, 32, 32) and x.max() == pytest.approx(1, abs=0.05)


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(handwriting.STROKES_ENV, str(tmp_path / "nowhere.json.gz"))
    assert handwriting.main(["--only", "letters"]) == 2
    assert "nowhere.json.gz: no real-handwriting strokes" in capsys.readouterr().err
    other = tmp_path / "other.json.gz"
    other.write_bytes(gzip.compress(json.dumps({"format": "something/2", "samples": []}).encode()))
    with pytest.raises(ValueError, match="format 'something/2'"):
        handwriting.load_samples(other)


def test_the_row_is_registered_with_the_issue_targets():
    import benchmarks.rows  # noqa: F401  (registers)

    assert "handwriting" in ROWS and "0.85" in ROWS["handwriting"].target and "0.985" in ROWS["handwriting"].target


def test_contributors_are_scored_apart_and_resampled_whole():
    hit = np.array([True] * 6 + [False] * 2)  # "good" reads all 6, "bad" none of its 2
    samples = [dict(sample("a", 0), contributor="good")] * 6 + [dict(sample("a", 0), contributor="bad")] * 2
    r = handwriting.by_contributor(hit, hit, samples)
    assert r["contributors"] == {"good": {"n": 6, "top1": 1.0, "top3": 1.0}, "bad": {"n": 2, "top1": 0.0, "top3": 0.0}}
    low, high = r["interval_90"]["top1"]
    assert low == 0.0 and high == 1.0  # a set of two contributors can draw "bad" twice, or "good" twice
    one = handwriting.by_contributor(hit[:6], hit[:6], samples[:6])
    assert one["interval_90"] == {"top1": [1.0, 1.0], "top3": [1.0, 1.0]}
    assert handwriting.by_contributor(hit, hit, [sample("a", 0)] * 8) is None  # photos name no contributor
