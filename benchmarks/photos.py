"""Real handwriting as a phone would see it: the validation strokes, photographed in pencil.

``python -m benchmarks.photos [--per-sample N] [--seed S] [--json]``

There is no set of real photographs here, so each pen trajectory of the validation set
(``benchmarks.handwriting``) is drawn as a photograph of a pencil letter would look: a thin
grey stroke (1–4 % of the letter's size, uneven pressure), slightly turned, on paper with uneven
light, grain and noise, blurred, off-centre in a frame 1.3–3× the letter, saved as JPEG.
Each photo is then read by the pipeline's own ``predict`` path (``read_input``: what
``mnist predict photo.jpg`` / ``ascii-letter predict photo.jpg`` does), and scored per case
against a naive reading that resizes the whole photo to the model's input (the path before
``mnist.preprocess.frame_photo``).

These are simulated photographs: they say whether the framing copes with paper, light, pencil
and placement, not what real photos score. Validation only, like ``benchmarks.handwriting``:
the photos live in a temporary folder that is deleted, and nothing here feeds training.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from benchmarks.handwriting import case_report, load_samples, print_result

PAD_CENTRE, PAD_CHAR = 140.0, 200.0  # the strokes file places each character so (README)


def photograph(strokes: list, rng: np.random.Generator) -> bytes:
    """One character's strokes as a JPEG photo of a pencil letter on paper (grayscale)."""
    letter = rng.uniform(120, 500)  # the character's longer side, in photo pixels
    scale = letter / PAD_CHAR
    width, height = (int(letter * rng.uniform(1.3, 3.0)) for _ in range(2))
    cx, cy = (rng.uniform(letter / 2 + 4, side - letter / 2 - 4) for side in (width, height))
    pen = max(1.2, letter * rng.uniform(0.01, 0.04))
    ss = 2  # supersampling for an antialiased stroke
    mask = Image.new("L", (width * ss, height * ss), 0)
    draw = ImageDraw.Draw(mask)
    turn = np.deg2rad(rng.uniform(-6, 6))
    rotate = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]) * scale * ss
    for stroke in strokes:
        points = [tuple(p) for p in (np.asarray(stroke) - PAD_CENTRE) @ rotate.T + (cx * ss, cy * ss)]
        pressure = int(255 * rng.uniform(0.55, 1.0))
        if len(points) > 1:
            draw.line(points, fill=pressure, width=max(1, round(pen * ss)), joint="curve")
        r = pen * ss / 2
        for x, y in points:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=pressure)
    ink = np.asarray(mask.resize((width, height), Image.Resampling.BOX), np.float32) / 255
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = (np.cos(angle) * xx / width + np.sin(angle) * yy / height - 0.5) * rng.uniform(0, 70)
    paper = rng.uniform(165, 235) + light
    noise = Image.fromarray(np.clip(rng.normal(128, 40, (height, width)), 0, 255).astype(np.uint8))
    grain = (np.asarray(noise.filter(ImageFilter.GaussianBlur(1.5)), np.float32) - 128) / 16  # paper fibres, σ ~ 1
    paper = paper + grain * rng.uniform(0, 10) + rng.normal(0, rng.uniform(1, 6), (height, width))
    pencil = rng.uniform(40, 130)
    photo = paper * (1 - ink) + pencil * ink
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(rng.integers(55, 92)))
    return out.getvalue()


def naive(path: Path, size: int) -> np.ndarray:
    """The whole photo resized to the model's input: how ``predict`` read an image before framing."""
    gray = Image.open(path).convert("L")
    return np.asarray(gray.resize((size, size), Image.Resampling.LANCZOS))


def evaluate(per_sample: int = 1, seed: int = 0, limit: int | None = None) -> dict[str, Any]:
    """Per-case top-1/top-3 of the bundled models on simulated photos: framed (``read_input``) vs naive."""
    from ascii_letter import AsciiLetterConfig, ascii_letter_classifier
    from mlpipes.pipeline import hook
    from mnist import MnistConfig, mnist_classifier

    samples = load_samples()[:limit]
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"per_sample": per_sample, "seed": seed, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="photos-") as folder:
        shots = []
        for i, sample in enumerate(samples):
            for k in range(per_sample):
                path = Path(folder, f"{i}-{k}.jpg")
                path.write_bytes(photograph(sample["strokes"], rng))
                shots.append((sample, path))
        jobs = [
            ("digits", MnistConfig(), mnist_classifier, "digit"),
            ("letters", AsciiLetterConfig(), ascii_letter_classifier, "letter"),
        ]
        for name, config, build, kind in jobs:
            chosen = [(s, p) for s, p in shots if s["kind"] == kind]
            if not chosen:
                continue
            model, read_input = build(config, pretrained=True), hook(config, "read_input")
            framed = model.predict(np.stack([read_input(p, config) for _, p in chosen]))
            resized = model.predict(np.stack([naive(p, config.image_size) for _, p in chosen]))
            which = [s for s, _ in chosen]
            for how, probs in (("framed", framed), ("resized", resized)):
                cases = [(name, list(range(len(which))))]
                if kind == "letter":
                    cases = [(c, [i for i, s in enumerate(which) if s["case"] == w]) for c, w in
                             (("capitals", "upper"), ("lower case", "lower"))] + cases  # fmt: skip
                for case, rows in cases:
                    report = case_report(probs[rows], [which[i] for i in rows], config.labels)
                    out["cases"].setdefault(case, {})[how] = report
    return out


def text_report(result: dict[str, Any]) -> str:
    lines = [f"simulated pencil photos of the real strokes ({result['per_sample']} per sample, seed {result['seed']})"]
    lines.append(f"  {'case':<11} {'n':>5} {'framed top-1':>12} {'top-3':>6} {'resized top-1':>13} {'top-3':>6}")
    for case, r in result["cases"].items():
        f, n = r["framed"], r["resized"]
        scores = f"{f['top1']:>12.3f} {f['top3']:>6.3f} {n['top1']:>13.3f} {n['top3']:>6.3f}"
        lines.append(f"  {case:<11} {f['n']:>5} {scores}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photos", description=__doc__.splitlines()[0])
    parser.add_argument("--per-sample", type=int, default=1, help="photos per validation sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated photos")
    parser.add_argument("--limit", type=int, help="the first N samples only (a quick look)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    return print_result(lambda: evaluate(args.per_sample, args.seed, args.limit), text_report, args.json)


if __name__ == "__main__":
    sys.exit(main())
