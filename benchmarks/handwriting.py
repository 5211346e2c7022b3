"""Real pen handwriting, replayed as the page's pad draws it: how well do the models read people?

``python -m benchmarks.handwriting [--weights-dir DIR] [--letter-weights M] [--digit-weights M] [--json]``

Each sample of the validation set (UNIPEN pen trajectories placed on the 280 px pad; see its
README) is drawn by ``mnist.pen.pad_image`` — the same function the letter generator
draws with — framed by ``mnist.preprocess.frame_ink`` with the model config's ``drawing`` (what
the page reads from the ONNX metadata), and classified. Reported per case (digits, capitals,
lower case, all letters): top-1, top-3, mean top-1 probability, and the worst confusions; then
top-1 per contributor and a 90 % interval over contributors, since the targets are measured on
writers this set does not hold.

Validation only: nothing here may feed training, calibration or data selection, and nothing it
reads or draws is written anywhere (this module lives in ``benchmarks/`` for that reason).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STROKES_ENV = "HANDWRITING_STROKES"
RELATIVE = Path("shared", "data", "handwriting", "dev_strokes.json.gz")


def strokes_path() -> Path:
    """``$HANDWRITING_STROKES``, else the set beside the repository (``../shared/data/handwriting``;
    a git worktree one level deeper looks one folder further up)."""
    if os.environ.get(STROKES_ENV):
        return Path(os.environ[STROKES_ENV]).expanduser().resolve()
    candidates = [REPO.parent / RELATIVE, REPO.parent.parent / RELATIVE]
    return next((p.resolve() for p in candidates if p.exists()), candidates[0].resolve())


def load_samples(path: Path | None = None) -> list[dict[str, Any]]:
    """The samples of the strokes file (``format: handwriting-strokes/1``)."""
    path = path or strokes_path()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no real-handwriting strokes; set ${STROKES_ENV} to dev_strokes.json.gz")
    data = json.loads(gzip.decompress(path.read_bytes()))
    if data.get("format") != "handwriting-strokes/1":
        raise ValueError(f"{path}: format {data.get('format')!r}, expected 'handwriting-strokes/1'")
    return data["samples"]


def framed(samples: list[dict[str, Any]], drawing: dict[str, Any]) -> np.ndarray:
    """Every sample drawn on the pad and framed like the page does: float32 ``(N, size, size)``."""
    from mnist.pen import pad_image
    from mnist.preprocess import frame_ink

    return np.stack([frame_ink(pad_image(s["strokes"]), **drawing) for s in samples])


def case_report(probs: np.ndarray, samples: list[dict[str, Any]], labels: tuple[str, ...], worst: int = 8) -> dict:
    """Top-1/top-3, mean top-1 probability and the most frequent confusions of one case."""
    truth = np.array([s["label"] for s in samples])
    top3 = np.argsort(-probs, axis=1)[:, :3]
    hit1, hit3 = top3[:, 0] == truth, (top3 == truth[:, None]).any(1)
    per_char = Counter(s["char"] for s in samples)
    mistakes = Counter((s["char"], labels[p]) for s, p, ok in zip(samples, top3[:, 0], hit1) if not ok)
    from mlpipes.calibration import expected_calibration_error

    return {
        "n": len(samples),
        "top1": float(hit1.mean()),
        "top3": float(hit3.mean()),
        "mean_top1_probability": float(probs.max(1).mean()),
        "ece": float(expected_calibration_error(probs, truth)),
        "confusions": [
            {"char": c, "predicted": p, "count": n, "share": round(n / per_char[c], 3)}
            for (c, p), n in mistakes.most_common(worst)
        ],
        "by_contributor": by_contributor(hit1, hit3, samples),
    }


def by_contributor(
    hit1: np.ndarray, hit3: np.ndarray, samples: list[dict[str, Any]], draws: int = 4000, seed: int = 0
) -> dict[str, Any] | None:
    """Top-1/top-3 per contributor, and where they could land on another set like this one.

    The targets are measured on writers who are not in this set, and contributors (the institutions
    that collected the samples) differ far more than samples do. Resampling whole contributors with
    replacement (a cluster bootstrap, seeded) gives a 90 % interval for a set drawn the same way.
    None when the samples do not name their contributor.
    """
    names = [s.get("contributor") for s in samples]
    if not names or None in names:
        return None
    counts = Counter(names)
    contributors = sorted(counts, key=lambda n: (-counts[n], n))
    member = (np.array(contributors)[:, None] == np.array(names)).astype(np.int64)  # (contributors, samples)
    sizes, right1, right3 = member.sum(1), member @ hit1.astype(np.int64), member @ hit3.astype(np.int64)
    k = len(contributors)
    picks = np.random.default_rng(seed).multinomial(k, [1 / k] * k, draws)  # times each is drawn, per set
    top1, top3 = (picks @ right1) / (picks @ sizes), (picks @ right3) / (picks @ sizes)
    return {
        "contributors": {
            c: {"n": int(n), "top1": float(r1 / n), "top3": float(r3 / n)}
            for c, n, r1, r3 in zip(contributors, sizes, right1, right3)
        },
        "interval_90": {
            "top1": [float(q) for q in np.percentile(top1, [5, 95])],
            "top3": [float(q) for q in np.percentile(top3, [5, 95])],
        },
    }


def evaluate(
    letter_weights: bool | str = True, digit_weights: bool | str = True, path: Path | None = None
) -> dict[str, Any]:
    """Per-case results for the letter and digit models (``True``: bundled; or a manifest path)."""
    from ascii_letter import AsciiLetterConfig, ascii_letter_classifier
    from mnist import MnistConfig, mnist_classifier

    samples = load_samples(path)
    out: dict[str, Any] = {"strokes": str(path or strokes_path()), "cases": {}, "weights": {}}
    jobs = [
        ("digits", MnistConfig(), mnist_classifier, digit_weights, lambda s: s["kind"] == "digit"),
        ("letters", AsciiLetterConfig(), ascii_letter_classifier, letter_weights, lambda s: s["kind"] == "letter"),
    ]
    for name, config, build, weights, keep in jobs:
        if weights is False:
            continue
        chosen = [s for s in samples if keep(s)]
        model = build(config, pretrained=weights)
        probs = model.predict(framed(chosen, config.drawing), invert=False)
        out["weights"][name] = "bundled" if weights is True else str(weights)
        if name == "digits":
            out["cases"]["digits"] = case_report(probs, chosen, config.labels)
            continue
        for case, which in (("capitals", "upper"), ("lower case", "lower")):
            rows = [i for i, s in enumerate(chosen) if s["case"] == which]
            out["cases"][case] = case_report(probs[rows], [chosen[i] for i in rows], config.labels)
        out["cases"]["letters"] = case_report(probs, chosen, config.labels)
    return out


def find_manifest(folder: Path, pipeline: str) -> str | bool:
    """The newest ``<pipeline>-<version>.json`` manifest in a weights folder, or False when none."""
    found = sorted(folder.glob(f"{pipeline}-*.json"), key=lambda p: p.stat().st_mtime)
    return str(found[-1]) if found else False


def text_report(result: dict[str, Any]) -> str:
    lines = [f"real handwriting: {result['strokes']}"]
    lines += [f"  {name} weights: {source}" for name, source in result["weights"].items()]
    lines.append(f"  {'case':<11} {'n':>5} {'top-1':>6} {'top-3':>6} {'p(top-1)':>8} {'ECE':>6}  worst confusions")
    for case, r in result["cases"].items():
        worst = ", ".join(f"{c['char']}→{c['predicted']} {c['count']}" for c in r["confusions"][:6])
        lines.append(
            f"  {case:<11} {r['n']:>5} {r['top1']:>6.3f} {r['top3']:>6.3f} {r['mean_top1_probability']:>8.3f} "
            f"{r['ece']:>6.3f}  {worst}"
        )
    spread = {case: r["by_contributor"] for case, r in result["cases"].items() if r.get("by_contributor")}
    if spread:
        lines.append("  on another set drawn like this one (contributors resampled; 90 % interval):")
        for case, b in spread.items():
            (low1, high1), (low3, high3) = b["interval_90"]["top1"], b["interval_90"]["top3"]
            each = ", ".join(f"{c} {v['top1']:.2f} (n={v['n']})" for c, v in b["contributors"].items())
            lines.append(
                f"  {case:<11} top-1 {low1:.3f}-{high1:.3f}  top-3 {low3:.3f}-{high3:.3f}  "
                f"top-1 per contributor: {each}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.handwriting", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights-dir", type=Path, help="a weights folder: its newest ascii_letter-*.json and mnist-*.json"
    )
    parser.add_argument("--letter-weights", help="a letter manifest path (default: bundled, or from --weights-dir)")
    parser.add_argument("--digit-weights", help="a digit manifest path (default: bundled, or from --weights-dir)")
    parser.add_argument("--only", choices=["letters", "digits"], help="evaluate one model only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    letters: bool | str = args.letter_weights or True
    digits: bool | str = args.digit_weights or True
    if args.weights_dir:
        letters = args.letter_weights or find_manifest(args.weights_dir, "ascii_letter") or True
        digits = args.digit_weights or find_manifest(args.weights_dir, "mnist") or True
    if args.only:
        letters, digits = (letters, False) if args.only == "letters" else (False, digits)
    return print_result(lambda: evaluate(letters, digits), text_report, args.json)


def print_result(run: Callable[[], dict[str, Any]], report: Callable[[dict[str, Any]], str], as_json: bool) -> int:
    """Run a validation benchmark and print its result, as text or JSON; a missing or foreign strokes
    file (or a refused weights file) is one line on stderr and exit status 2."""
    from mlpipes.errors import UserError

    try:
        result = run()
    except (FileNotFoundError, ValueError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if as_json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
