"""The simulated-photo benchmark's own logic, on generated strokes (the real set is never a fixture)."""

import gzip
import io
import json

import numpy as np
from PIL import Image

from benchmarks import handwriting, photos


def generated_samples() -> list[dict]:
    from ascii_letter.strokes import letter_strokes
    from mnist.dataset import DIGIT_FORMS
    from mnist.pen import hand, read_forms

    forms = read_forms(DIGIT_FORMS)
    samples = []
    for i, digit in enumerate((3, 7)):
        strokes = hand(list(forms[str(digit)][0]), np.random.default_rng(i))
        samples.append({"label": digit, "char": str(digit), "kind": "digit", "case": "none", "strokes": strokes})
    for i, (char, case) in enumerate((("k", "lower"), ("B", "upper"))):
        strokes = letter_strokes(char, np.random.default_rng(i))
        samples.append(
            {"label": ord(char.lower()) - 97, "char": char, "kind": "letter", "case": case, "strokes": strokes}
        )
    return [{**s, "strokes": [np.asarray(p).tolist() for p in s["strokes"]]} for s in samples]


def test_photos_are_deterministic_grey_jpegs_larger_than_the_letter():
    strokes = generated_samples()[0]["strokes"]
    first, again = (photos.photograph(strokes, np.random.default_rng(4)) for _ in range(2))
    assert first == again
    image = Image.open(io.BytesIO(first))
    assert image.format == "JPEG" and image.mode == "L" and min(image.size) >= 120 * 1.3 - 1


def test_framed_photos_are_read_and_the_whole_photo_resized_is_not(tmp_path, monkeypatch):
    path = tmp_path / "strokes.json.gz"
    path.write_bytes(
        gzip.compress(json.dumps({"format": "handwriting-strokes/1", "samples": generated_samples()}).encode())
    )
    monkeypatch.setenv(handwriting.STROKES_ENV, str(path))
    result = photos.evaluate(per_sample=2, seed=1)
    assert set(result["cases"]) == {"digits", "capitals", "lower case", "letters"}
    assert result["cases"]["letters"]["framed"]["n"] == 4 and result["cases"]["digits"]["framed"]["n"] == 4
    for case in ("digits", "letters"):
        assert result["cases"][case]["framed"]["top1"] == 1.0
        assert result["cases"][case]["resized"]["top1"] <= 0.5
    assert "framed top-1" in photos.text_report(result)
