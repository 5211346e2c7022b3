"""Row about the child pipeline: at 100 letters per class, do MNIST's features beat training from scratch?

Runs issue 3's own transfer study (``ascii_letter.study.transfer_study``) at 100 examples per
class only, so the row measures exactly what the README's table reports.
"""

from __future__ import annotations

import json

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, Target, row
from benchmarks.timing import median

PER_CLASS = 100


@row("letters_transfer", "ascii-letter at 100/class: transfer vs from scratch", "transfer >= scratch + 3 points")
def letters_transfer(bench: Bench) -> list[Metric]:
    try:
        from ascii_letter.config import AsciiLetterConfig
        from ascii_letter.study import transfer_study
    except ImportError as e:
        raise NotAvailable(f"ascii_letter's transfer study is not importable ({e}); it comes with issue 3") from None
    config = AsciiLetterConfig(artifact_dir=str(bench.fresh_dir("letters")))
    seeds = bench.repeats(full=3, quick=1)
    transfer_study(config, per_class=(PER_CLASS,), seeds=seeds)
    study = json.loads((config.artifacts / "transfer-study" / "transfer_study.json").read_text())
    by_start = {r["start"]: r for r in study["rows"] if r["per_class"] == PER_CLASS}
    transfer, scratch = by_start["mnist"], by_start["scratch"]
    gains = [100 * (t - s) for t, s in zip(transfer["accuracies"], scratch["accuracies"])]  # same seed, paired
    bench.details["study"] = study
    accuracy = {start: [100 * a for a in r["accuracies"]] for start, r in by_start.items()}
    return [
        Metric("MNIST features: test accuracy", 100 * transfer["mean"], "%", None, accuracy["mnist"]),
        Metric("from scratch: test accuracy", 100 * scratch["mean"], "%", None, accuracy["scratch"]),
        Metric(
            f"transfer - scratch, {seeds} seeds",
            100 * (transfer["mean"] - scratch["mean"]),
            "points",
            Target(">=", 3),
            gains,
        ),
        Metric("seconds per training run", median([transfer["seconds"], scratch["seconds"]]), "s"),
    ]
