"""The transfer study's models, read on real handwriting: do MNIST's features pay off on people's letters?

``python -m benchmarks.transfer_handwriting [STUDY_FOLDER] [--json]``

``ascii-letter transfer-study`` trains, for each training-set size and seed, one letter model
from MNIST's features and one from scratch, and scores them on the generated test split. This
scores the same weights on the real-handwriting validation set (all letters, top-1), and prints
both tables side by side. Validation only: nothing here feeds training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.handwriting import framed, load_samples


def score_study(folder: Path) -> list[dict[str, Any]]:
    """One row per (start, per_class): generated-test and real-handwriting accuracy over the seeds."""
    from ascii_letter import AsciiLetterConfig, ascii_letter_classifier
    from mlpipes.weights import find_versions

    study = json.loads((folder / "transfer_study.json").read_text())
    letters = [s for s in load_samples() if s["kind"] == "letter"]
    truth = np.array([s["label"] for s in letters])
    config = AsciiLetterConfig()
    images = framed(letters, config.drawing)
    rows = []
    for row in study["rows"]:
        real = []
        for seed in range(study["seeds"]):
            (manifest,) = find_versions(
                folder / f"{row['start']}-{row['per_class']}-{seed}" / "weights", config.pipeline
            )
            model = ascii_letter_classifier(config, str(manifest))  # same architecture as the study's runs
            real.append(float((model.predict(images, invert=False).argmax(1) == truth).mean()))
        rows.append({**row, "handwriting": real, "handwriting_mean": float(np.mean(real)),
                     "handwriting_std": float(np.std(real))})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.transfer_handwriting", description=__doc__.splitlines()[0]
    )
    default = Path.home() / ".mlpipes" / "ascii_letter" / "transfer-study"
    parser.add_argument("folder", nargs="?", type=Path, default=default, help=f"the study's folder [{default}]")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    rows = score_study(args.folder)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| train per letter | start | generated test | real handwriting (letters top-1) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['per_class']} | {r['start']} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} % "
              f"| {100 * r['handwriting_mean']:.2f} ± {100 * r['handwriting_std']:.2f} % |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
