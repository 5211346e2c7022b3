"""Row about real handwriting: do the bundled models read pen-drawn letters and digits?

Replays the validation set's pen trajectories through the pad and ``frame_ink`` exactly as
``python -m benchmarks.handwriting`` does (that module does the work; this row only judges it).
"""

from __future__ import annotations

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, Target, row


@row(
    "handwriting",
    "bundled models on real pen handwriting (UNIPEN, replayed on the pad)",
    "letters top-1 >= 0.85, top-3 >= 0.95; digits top-1 >= 0.985",
)
def handwriting(bench: Bench) -> list[Metric]:
    from benchmarks.handwriting import evaluate, strokes_path

    if not strokes_path().exists():
        raise NotAvailable(f"no real-handwriting strokes at {strokes_path()} (set $HANDWRITING_STROKES)")
    result = evaluate()
    bench.details["handwriting"] = result
    cases = result["cases"]
    spread = {case: cases[case]["by_contributor"]["interval_90"] for case in ("letters", "digits")}
    return [
        Metric("letters, all: top-1", cases["letters"]["top1"], "", Target(">=", 0.85)),
        Metric("letters, all: top-3", cases["letters"]["top3"], "", Target(">=", 0.95)),
        Metric("letters, capitals: top-1", cases["capitals"]["top1"], ""),
        Metric("letters, lower case: top-1", cases["lower case"]["top1"], ""),
        Metric("letters: mean top-1 probability", cases["letters"]["mean_top1_probability"], ""),
        Metric("digits: top-1", cases["digits"]["top1"], "", Target(">=", 0.985)),
        Metric("digits: top-3", cases["digits"]["top3"], ""),
        Metric("digits: mean top-1 probability", cases["digits"]["mean_top1_probability"], ""),
        # Where another set of writers could land: the low end of a 90 % interval over contributors.
        Metric("letters top-1, contributors resampled: 5th percentile", spread["letters"]["top1"][0], ""),
        Metric("letters top-3, contributors resampled: 5th percentile", spread["letters"]["top3"][0], ""),
        Metric("digits top-1, contributors resampled: 5th percentile", spread["digits"]["top1"][0], ""),
    ]
