"""Letter images: deterministic generators for the raw tarball, and tarball → records.

The generator is the config's: handwriting-like pen strokes (``ascii_letter.strokes``), font
glyphs (``render_letter``), or both mixed. The raw layout is a tarball of
``images/<letter>/<NN>.png``, white ink on black like MNIST.
Records are written in MNIST's format, so ``mnist.dataset.load_split`` reads them unchanged.
"""

from __future__ import annotations

import functools
import gzip
import io
import tarfile
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from ascii_letter.config import AsciiLetterConfig
from ascii_letter.strokes import render_stroke_letter
from mlpipes.artifacts import atomic_path, sha256_file
from mlpipes.commands import existing_records
from mlpipes.errors import DataError
from mlpipes.records import Records, write_records
from mlpipes.splits import stratified_split
from mlpipes.tarballs import check_classes, read_image_tarball
from mnist.pen import find_fonts
from mnist.preprocess import preprocess_images

MIXED_FONT_SHARE = 0.2  # generator="mixed": one image in five is a font glyph
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # fonts that ship with matplotlib
TYPEFACES = {  # family: its weights and styles
    "DejaVu Sans": ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf"],
    "DejaVu Serif": ["DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf"],
    "DejaVu Sans Mono": ["DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf"],
    "STIX General": ["STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf"],
    "Computer Modern Roman": ["cmr10.ttf", "cmb10.ttf", "cmti10.ttf"],
    "Computer Modern Sans": ["cmss10.ttf"],
    "Computer Modern Typewriter": ["cmtt10.ttf"],
}


@functools.cache
def load_font(file: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / file), 64)


def render_letter(char: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One glyph with random typeface, weight, slant, size and position: uint8 (size, size)."""
    files = list(TYPEFACES.values())[rng.integers(len(TYPEFACES))]
    font = load_font(files[rng.integers(len(files))])
    canvas = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(canvas).text((80, 80), char, fill=255, font=font, anchor="mm", stroke_width=int(rng.integers(0, 3)))
    shear = rng.uniform(-0.3, 0.3)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * 80, 0, 1, 0), Image.BILINEAR)
    canvas = canvas.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR)
    ink = canvas.crop(canvas.point(lambda v: 255 if v > 40 else 0).getbbox())
    side = int(max(ink.size) * rng.uniform(1.15, 1.6))  # the margin sets the letter's size in the frame
    square = Image.new("L", (side, side), 0)
    square.paste(ink, (int(rng.integers(0, side - ink.width + 1)), int(rng.integers(0, side - ink.height + 1))))
    return np.asarray(square.resize((size, size), Image.LANCZOS))


def render_example(char: str, rng: np.random.Generator, config: AsciiLetterConfig) -> np.ndarray:
    """One training image of ``char`` from the config's generator: uint8 ``(image_size, image_size)``."""
    typeset = config.generator == "fonts" or (config.generator == "mixed" and rng.random() < MIXED_FONT_SHARE)
    if typeset:
        return render_letter(char, rng, config.image_size)
    return render_stroke_letter(char, rng, config.drawing, find_fonts(config.handwriting_fonts))


def make_raw_data(config: AsciiLetterConfig, output: Path | None = None) -> Path:
    """Render ``examples_per_class`` images per letter (half upper, half lower case) into a tarball.
    Byte-identical for the same seed: each image has its own RNG, and tar/gzip/PNG carry no times."""
    output = output or config.tarball_path
    find_fonts(config.handwriting_fonts)  # a missing font fails now, not after minutes of rendering
    digits = max(2, len(str(config.examples_per_class - 1)))
    with (
        atomic_path(output) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for label_index, letter in enumerate(tqdm(config.labels, desc="rendering", unit="letter", leave=False)):
            for i in range(config.examples_per_class):
                rng = np.random.default_rng([config.seed, label_index, i])
                pixels = render_example(letter.upper() if i % 2 == 0 else letter, rng, config)
                png = io.BytesIO()
                Image.fromarray(pixels).save(png, format="PNG")
                member = tarfile.TarInfo(f"images/{letter}/{i:0{digits}d}.png")
                member.size, member.mode = png.tell(), 0o644
                tar.addfile(member, io.BytesIO(png.getvalue()))
    return output


def save_datasets(
    config: AsciiLetterConfig, tarball: Path | None = None, force: bool = False, train_per_class: int = 0
) -> Records:
    """Tarball → stratified, seeded train/test records (a no-op when they hold the same inputs)."""
    explicit = bool(tarball or config.tarball)  # only the default tarball is rendered when missing, never a typo
    tarball = Path(tarball) if tarball else config.tarball_path
    if not tarball.is_file():
        if explicit or tarball.exists():
            raise DataError(
                f"{tarball}: no such tarball file; check --tarball, or render one with make-raw-data --output {tarball}"
            )
        make_raw_data(config, tarball)
    provenance = {
        "tarball": tarball.name,
        "sha256": sha256_file(tarball),
        "test_per_class": config.test_per_class,
        "train_per_class": train_per_class,
        "seed": config.seed,
        "image_size": config.image_size,
    }
    out = config.records_url
    existing = None if force else existing_records(out, provenance)
    if existing is not None:
        return existing

    items = read_image_tarball(tarball, size=config.image_size)  # budgets, layout, safe decoding, resized
    labels = check_classes(tarball, items, config.labels)  # a-z only, none missing, no image under two labels
    images = np.stack([p for _, _, p in items])
    images = (preprocess_images(images).squeeze(1).numpy() * 255).round().astype(np.uint8)  # dark-on-white → MNIST's
    train, test = stratified_split(labels, config.test_per_class, config.seed, train_per_class)
    splits = {"train": {"image": images[train], "label": labels[train]},
              "test": {"image": images[test], "label": labels[test]}}  # fmt: skip
    write_records(out, splits, name=config.pipeline, provenance=provenance)
    return Records.open(out)
