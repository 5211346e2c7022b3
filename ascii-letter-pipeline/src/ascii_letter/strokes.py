"""Handwriting-like letters: pen strokes, varied per writer, drawn like the web page's pad.

People draw letters in the page with a round pen; fonts teach a model serifs and fills no pen
makes. So each image here is a *trajectory*: a letterform (one of several per letter, from a
hand-written table below or a single-stroke Hershey font), distorted the way one writer's hand
differs from another's (slant, aspect, size, rotation, smooth elastic bending, wobble, over- or
undershot stroke ends, exit flicks, coarse tablet sampling), then drawn by :func:`pad_image` (the pad's pen:
280 px pad, 20 px round pen, antialiased) and framed by ``mnist.preprocess.frame_ink``, the
recipe the page and the real-handwriting benchmark use. Strokes are cheap to bend (a few
hundred points), so a letter costs about 3 ms of CPU (2,600 in ~8 s), not an image warp.

Hershey fonts: the ``hershey-fonts`` package (MIT); the glyph data are Dr A. V. Hershey's
public-domain fonts (U.S. National Bureau of Standards).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from mnist.preprocess import frame_ink

PAD_SIZE = 280  # the web page's pad, pixels
PEN_PX = 20  # its pen diameter
CHAR_PX = 200  # the longer side of a character drawn on it, as the real-handwriting set scales them

# ---- the pad -----------------------------------------------------------------------------------


def pad_image(strokes, size: int = PAD_SIZE, pen: float = PEN_PX, supersample: int = 4) -> np.ndarray:
    """Strokes (lists of ``(x, y)`` pad pixels, y down) drawn like the web pad: uint8 ``(size, size)``.

    White on black, a round pen of diameter ``pen`` (round caps and joins: a disc at every point,
    which also covers what PIL's ``joint="curve"`` would add, at a fraction of its cost), antialiased
    by drawing ``supersample`` times larger and box-averaging down. The real-handwriting benchmark
    replays its samples through this same function, so what the generator imitates is exactly
    what is measured.
    """
    big = Image.new("L", (size * supersample, size * supersample), 0)
    draw, width = ImageDraw.Draw(big), max(1, round(pen * supersample))
    r = pen * supersample / 2
    for stroke in strokes:
        p = [(float(x) * supersample, float(y) * supersample) for x, y in stroke]
        if len(p) > 1:
            draw.line(p, fill=255, width=width)
        for x, y in p:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(big.resize((size, size), Image.BOX))


# ---- letterforms ------------------------------------------------------------------------------
# Each form is a list of strokes in the order a pen draws them. A stroke is a string of points
# "x,y" (y down; lower case: x-height 40, baseline 100, ascender 0, descender ~148; capitals 0-100).
# The curve passes smoothly through the points (Catmull-Rom); a point ending in "*" is a corner
# where the curve may turn sharply, so a run of two points is a straight line.
# fmt: off
FORMS: dict[str, list[list[str]]] = {
    "a": [["70,52 56,41 36,42 21,58 20,82 33,99 52,98 68,82* 70,40* 70,92 76,100"],  # single storey
          ["70,50 56,41 36,42 21,58 20,82 33,99 52,98 68,82*", "70,40 70,100"],
          ["20,50 34,40 54,40 66,50 68,64* 68,100", "68,64 40,66 22,76 22,92 36,100 56,96 68,84"],
          ["72,44 58,40 38,42 22,56 20,80 34,98 54,96 70,78*", "70,40 72,94 78,100"]],  # double
    "b": [["15,0 15,100* 15,64* 32,44 55,42 70,58 70,84 54,99 32,99 15,88"],
          ["15,0 15,100", "15,60 35,42 55,42 70,58 70,82 55,99 35,100 15,88"],
          ["30,70 42,40 46,16 40,0 30,8 24,40 22,100* 28,70 46,56 64,62 66,84 50,99 28,97"],
          ["15,0 15,100* 30,98 52,100 68,86 70,64 56,46 36,44 18,58"]],  # looped
    "c": [["70,48 55,40 35,41 20,56 18,80 32,97 52,100 70,92"],
          ["66,44 46,40 26,50 18,72 28,94 50,100 72,92"]],
    "d": [["68,52 52,41 32,42 18,60 18,82 32,98 52,98 68,84* 68,0* 68,100"],
          ["68,52 52,41 32,42 18,60 18,82 32,98 52,98 68,84*", "68,0 68,100"],
          ["68,52 52,41 32,42 18,60 18,82 32,98 52,98 68,84* 68,0* 68,92 76,100"],
          ["68,0 68,100", "68,56 52,42 32,42 18,60 18,82 32,98 52,98 68,86"]],
    "e": [["20,72 70,70* 68,55 56,42 38,41 22,52 18,72 26,92 45,100 62,97 72,88"],
          ["18,80 45,72 62,58 56,42 36,45 22,64 24,88 44,100 66,92"],
          ["22,70 66,66 64,50 50,40 32,42 20,58 20,80 32,96 52,100 70,92"]],
    "f": [["70,8 58,0 42,2 34,15 33,100", "15,42 58,42"],  # printed
          ["66,8 55,0 42,4 38,20 38,112 34,130 24,146 12,140", "18,42 60,42"],  # with a descender
          ["62,6 50,0 40,8 38,30 38,100", "20,44 56,40"],
          ["64,10 52,0 40,4 36,22 36,100 32,128 28,142 40,130 50,104", "20,44 58,42"]],
    "g": [["68,52 54,41 34,42 20,56 22,74 38,82 58,76 68,60* 68,40* 68,125 58,144 36,148 18,136"],
          ["68,52 54,41 34,42 20,56 22,74 38,82 58,76 68,60*", "68,40 68,128 56,146 34,148 18,136"],
          ["68,52 54,41 34,42 20,56 22,74 38,82 58,76 68,60* 68,40* 66,120 56,142 40,148 30,136 48,118 76,108"],
          ["52,42 36,40 24,52 28,68 42,74 56,66 58,50 50,42", "54,44 72,38",  # double storey
           "34,72 26,82 42,90 62,94 72,108 64,126 44,132 24,124 18,108 30,96 48,92"],
          ["66,52 52,41 34,42 20,56 22,74 38,82 58,76 68,60* 68,40* 68,126 50,148 30,140 40,124 72,110"]],
    "h": [["15,0 15,100* 15,62* 30,44 48,40 62,50 64,100"],
          ["15,0 15,100", "15,62 30,44 48,40 62,50 64,92 70,100"],
          ["28,70 42,40 46,16 40,0 30,8 24,40 20,100* 30,62 46,48 60,56 62,100"],
          ["15,0 15,100", "15,58 32,42 50,40 62,52 62,100"]],  # looped
    "i": [["45,40 45,100", "45,16"], ["42,40 42,92 50,100", "42,18"]],  # a dotless i is an l
    "j": [["55,40 55,125 48,144 32,148 20,138", "55,16"], ["55,40 55,130 44,148 30,140", "55,18"],
          ["55,40 56,126 44,148 28,142 34,124 60,110", "55,16"]],
    "k": [["15,0 15,100", "65,40 15,72* 65,100"],
          ["15,0 15,100", "62,40 16,72", "34,62 66,100"],
          ["15,0 15,100* 15,72 40,46 58,48 56,62 28,72* 64,100"],
          ["15,0 15,100", "15,70 62,40", "34,58 64,100"]],  # looped arm
    "l": [["45,0 45,100"], ["40,0 40,88 50,100 62,98"],
          ["20,86 44,58 60,28 58,6 46,2 38,20 36,60 40,90 52,100 66,96"]],  # looped
    "m": [["12,40 12,100* 12,58* 24,43 36,41 45,50 46,100* 46,58* 58,43 70,41 80,50 80,100"],
          ["12,40 12,100", "12,58 24,43 36,41 45,50 46,100", "46,58 58,43 70,41 80,50 80,100"],
          ["12,40 12,100* 12,60* 28,42 44,56 46,100* 46,60* 62,42 78,56 80,100"]],
    "n": [["15,40 15,100* 15,60* 30,43 48,40 62,50 64,100"],
          ["15,40 15,100", "15,60 30,43 48,40 62,50 64,92 70,100"],
          ["15,40 15,100* 15,62* 34,42 56,42 64,60 64,100"]],
    "o": [["50,40 30,43 17,60 17,80 30,97 50,100 68,92 78,72 72,50 55,40 42,44"],
          ["56,42 36,40 20,52 16,72 26,94 46,100 66,94 76,74 70,52 52,40"]],
    "p": [["15,40 15,148* 15,60* 32,43 52,41 68,56 68,80 52,98 30,99 15,86"],
          ["15,40 15,148", "15,60 32,43 52,41 68,56 68,80 52,98 30,99 15,86"],
          ["15,40 15,148", "15,54 40,40 62,46 68,64 58,84 36,92 15,86"]],
    "q": [["68,52 52,41 32,42 18,60 18,80 32,97 52,98 68,84*", "68,40 68,148"],
          ["68,52 52,41 32,42 18,60 18,80 32,97 52,98 68,84* 68,40* 68,145 80,134"],  # hooked
          ["68,52 52,41 32,42 18,60 18,80 32,97 52,98 68,84* 68,40* 68,140 74,148"],
          ["68,52 52,41 32,42 18,60 18,80 32,97 52,98 68,84* 68,40* 68,130 56,146 48,136 60,118 78,108"]],
    "r": [["18,40 18,100* 18,64* 30,47 46,40 62,44"], ["18,40 18,100", "18,58 34,44 56,42"],
          ["10,46 20,40 22,100* 22,62 36,46 52,40 64,46"],
          ["16,40 16,100* 16,70* 24,52 40,42 60,42"]],
    "s": [["68,48 55,40 35,40 22,48 24,62 45,70 64,78 68,90 55,100 34,100 18,92"],
          ["66,44 46,40 28,46 28,60 50,70 64,84 56,98 36,100 20,94"],
          ["64,44 44,40 30,48 36,62 58,74 60,92 40,100 18,96"]],
    "t": [["40,8 40,92 48,100 62,98", "20,40 62,40"], ["40,8 40,100", "18,40 62,40"],
          ["20,40 62,40", "42,8 40,100"],
          ["40,0 40,100", "22,36 60,36"]],
    "u": [["15,40 15,80 28,98 48,100 64,88* 66,40* 66,100"], ["15,40 15,80 28,98 48,100 64,88 68,40"],
          ["15,40 15,80 28,98 48,100 64,88*", "66,40 66,92 74,100"],
          ["15,40 15,82 26,98 44,100 58,90 66,70* 66,40* 66,100"]],
    "v": [["12,40 40,100* 68,40"], ["12,40 30,90 40,100 50,90 68,40"],
          ["12,40 38,100* 46,92 60,58 68,40 76,44"]],
    "w": [["8,40 26,100* 44,55* 62,100* 80,40"],
          ["8,40 18,92 26,100 36,90 44,58 52,90 62,100 70,92 80,40"],
          ["8,40 22,100* 44,48* 62,100* 82,40"]],
    "x": [["15,40 65,100", "65,40 15,100"], ["62,40 16,100", "14,40 66,100"]],
    "y": [["15,40 42,100", "68,40 40,105 28,135 18,146"],
          ["15,40 15,76 28,95 46,97 64,84* 66,40* 66,125 56,144 36,148 18,136"],
          ["15,40 40,96*", "66,40 40,100 30,130 22,148"],
          ["15,40 15,76 28,95 46,97 64,84* 66,40* 66,126 50,148 30,140 40,124 72,110"]],
    "z": [["15,40 68,40* 15,100* 70,100"], ["15,40 68,40* 15,100* 70,100", "28,70 56,70"],
          ["15,44 30,40 68,40* 15,100* 56,98 70,104"],
          ["15,40 68,40* 22,100* 40,96 70,104", "24,70 58,70"]],
    "A": [["10,100 40,0* 70,100", "22,62 58,62"], ["12,100 36,6 44,4 68,100", "22,64 58,62"],
          ["10,100 40,0* 70,100", "24,56 58,56"]],
    "B": [["15,0 15,100", "15,0* 48,2 64,12 64,36 48,48 15,48* 52,50 70,64 70,86 54,99 15,100"],
          ["15,100 15,0* 48,2 64,12 64,36 48,48 15,48* 52,50 70,64 70,86 54,99 15,100"],
          ["15,0 15,100", "15,2 46,0 60,10 58,36 40,48 15,48", "40,48 64,60 68,84 50,100 15,100"]],
    "C": [["78,15 62,2 40,0 20,14 10,42 12,70 26,92 48,100 66,96 80,84"],
          ["74,8 52,0 30,6 14,28 10,56 18,84 40,100 62,98 78,86"]],
    "D": [["15,0 15,100", "15,0* 45,3 66,20 74,50 66,80 45,98 15,100"],
          ["15,0 15,100* 45,98 66,80 74,50 66,20 45,3 12,2"],
          ["15,0 15,100", "15,2 52,4 70,28 72,62 60,88 36,100 15,100"]],
    "E": [["68,0 15,0* 15,100* 70,100", "15,48 58,48"], ["15,0 15,100", "15,0 66,0", "15,48 56,48", "15,100 68,100"],
          ["70,10 52,0 30,4 22,22 36,44 56,48* 30,52 14,70 18,90 40,100 70,94"]],  # round E
    "F": [["15,0 15,100", "15,0 68,0", "15,48 56,48"], ["68,0 15,0* 15,100", "15,48 56,48"]],
    "G": [["78,15 62,2 40,0 20,14 10,42 12,70 26,92 48,100 66,96 78,82* 78,55* 52,55"],
          ["78,15 62,2 40,0 20,14 10,42 12,70 26,92 48,100 66,96 78,80* 78,58", "56,58 90,58"],
          ["78,15 62,2 40,0 20,14 10,42 12,70 26,92 48,100 66,96 76,80 74,56* 52,58"]],
    "H": [["15,0 15,100", "65,0 65,100", "15,50 65,50"], ["15,0 15,100", "15,50 65,50", "65,0 65,100"]],
    "I": [["40,0 40,100"], ["40,0 40,100", "20,0 60,0", "20,100 60,100"],
          ["20,0 60,0", "40,0 40,100", "20,100 60,100"]],
    "J": [["60,0 60,70 52,92 35,100 18,92 12,75"], ["60,0 60,70 52,92 35,100 18,92 12,75", "36,0 82,0"],
          ["60,0 60,80 50,98 30,100 16,84"]],
    "K": [["15,0 15,100", "65,0 17,58", "35,42 68,100"], ["15,0 15,100", "65,0 15,55* 68,100"],
          ["15,0 15,100", "68,0 15,60", "15,60* 70,100"]],
    "L": [["15,0 15,100* 65,100"], ["15,0 15,100", "15,100 65,100"]],
    "M": [["10,100 14,0* 42,70* 70,0* 74,100"], ["10,100 10,0* 42,60* 74,0* 74,100"],
          ["10,100 10,0", "10,0 42,60* 74,0", "74,0 74,100"],
          ["10,100 14,0* 42,100* 70,0* 74,100"]],
    "N": [["15,100 15,0* 65,100* 65,0"], ["15,100 15,0", "15,0 65,100", "65,100 65,0"],
          ["15,100 15,0* 65,100* 65,0", "15,100 15,0"]],
    "O": [["45,0 22,8 10,35 12,70 28,95 50,100 72,88 82,55 75,20 58,3 42,2"],
          ["52,2 30,4 14,26 10,58 22,88 46,100 70,92 82,62 78,28 62,6 44,0"]],
    "P": [["15,0 15,100", "15,0* 48,2 66,12 66,40 48,52 15,52"], ["15,100 15,0* 48,2 66,12 66,40 48,52 15,52"],
          ["15,0 15,100", "15,2 46,0 64,10 66,30 50,46 15,50"]],
    "Q": [["45,0 22,8 10,35 12,70 28,95 50,100 72,88 82,55 75,20 58,3 42,2", "50,70 82,106"],
          ["45,0 22,8 10,35 12,70 28,95 50,100 72,88 82,55 75,20 58,3 42,2", "62,84 72,96 84,100"]],
    "R": [["15,0 15,100", "15,0* 48,2 66,12 66,40 48,52 15,52", "38,52 70,100"],
          ["15,100 15,0* 48,2 66,12 66,40 48,52 15,52* 70,100"],
          ["15,100 15,0* 48,2 66,12 66,40 48,52 15,52", "30,52 70,100"]],
    "S": [["72,12 58,1 36,0 18,10 16,30 38,46 62,56 74,74 68,92 48,100 24,98 10,86"],
          ["70,8 50,0 28,4 18,22 30,40 56,52 70,70 64,92 42,100 16,94"]],
    "T": [["10,0 70,0", "40,0 40,100"], ["40,0 40,100", "10,0 70,0"],
          ["8,4 40,0 72,2", "40,0 42,100"]],
    "U": [["15,0 15,70 28,95 45,100 62,95 74,70 75,0"], ["15,0 15,70 28,94 45,100 62,94 74,70 75,0* 75,100"],
          ["15,0 16,74 30,96 46,100 62,94 72,74 74,0"]],
    "V": [["10,0 40,100* 70,0"], ["10,0 34,90 40,100 46,90 70,0"]],
    "W": [["5,0 22,100* 40,30* 58,100* 75,0"], ["5,0 22,100* 40,4* 58,100* 75,0"],
          ["5,0 20,100* 40,40* 60,100* 75,0"]],
    "X": [["12,0 68,100", "68,0 12,100"], ["66,0 14,100", "14,0 68,100"]],
    "Y": [["10,0 40,48*", "70,0 40,48 40,100"], ["10,0 40,50* 70,0", "40,50 40,100"],
          ["10,0 40,48* 70,0* 40,100"]],
    "Z": [["12,0 68,0* 12,100* 70,100"], ["12,0 68,0* 12,100* 70,100", "25,50 55,50"]],
}
# fmt: on

# Hershey families whose strokes are pen-like: single-stroke sans and roman, two scripts, and the
# complex italic/roman (double lines that the pen merges into one thick stroke). Gothic is left out.
HERSHEY_FAMILIES = ("futural", "rowmans", "scripts", "cursive", "timesi", "scriptc", "futuram")
HERSHEY_CAPITALS = ("futural", "rowmans", "timesi", "futuram")  # script capitals are calligraphy, not handwriting
EXIT_TAIL_SHARE = 0.15  # of lower-case letters that end in an exit flick
HERSHEY_SHARE = 0.35  # of letters drawn from a Hershey font; the rest from the form table


def parse_stroke(spec: str, samples: int = 8) -> np.ndarray:
    """One stroke string of the form table → an ``(N, 2)`` polyline through its points."""
    points, corners = [], []
    for token in spec.split():
        corners.append(token.endswith("*"))
        points.append([float(v) for v in token.rstrip("*").split(",")])
    if len(points) == 1:
        return np.array(points)
    pieces, start = [], 0
    for i in range(1, len(points)):
        if corners[i] or i == len(points) - 1:
            pieces.append(catmull_rom(np.array(points[start : i + 1]), samples))
            start = i
    return np.concatenate([pieces[0]] + [p[1:] for p in pieces[1:]])


def catmull_rom(p: np.ndarray, samples: int) -> np.ndarray:
    """A smooth curve through the points ``p`` (a straight line for two), ``samples`` per segment."""
    if len(p) == 2:
        return p
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.concatenate([*out, p[-1:]])


@functools.cache
def table_forms(char: str) -> tuple[tuple[np.ndarray, ...], ...]:
    """The hand-written table's forms of ``char`` (capitals and lower case apart), as polylines."""
    return tuple(tuple(parse_stroke(s) for s in form) for form in FORMS[char])


@functools.cache
def hershey_font(family: str) -> dict[str, tuple[np.ndarray, ...]]:
    """A Hershey family's glyphs of a-z and A-Z as polylines (y down), loaded once per process."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    font.load_default_font(family)
    glyphs = {}
    for char in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        glyph = next(iter(font.glyphs_for_text(char)))
        strokes = tuple(np.array(s, dtype=float) for s in glyph.strokes if len(s))
        glyphs[char] = merge_touching(strokes)
    return glyphs


def merge_touching(strokes: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Join strokes that start where the previous one ended (Hershey splits a pen path at corners)."""
    merged: list[np.ndarray] = []
    for s in strokes:
        if merged and np.allclose(merged[-1][-1], s[0]):
            merged[-1] = np.concatenate([merged[-1], s[1:]])
        else:
            merged.append(s)
    return tuple(merged)


# ---- one writer's hand ------------------------------------------------------------------------


def resample(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along the polyline (ends kept), so bending bends straight lines too."""
    if len(stroke) < 2:
        return stroke
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    arc = np.concatenate([[0], np.cumsum(seg)])
    if arc[-1] == 0:
        return stroke[:1]
    n = max(2, math.ceil(arc[-1] / step) + 1)
    at = np.linspace(0, arc[-1], n)
    return np.stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])], axis=1)


def smooth_field(rng: np.random.Generator, amplitude: float, waves: int = 3):
    """A random smooth displacement field over the unit square: a sum of a few plane waves."""
    k = rng.normal(0, 1.0, (waves, 2, 2)) * 2 * math.pi * 0.6  # about half to one cycle across a glyph
    phase = rng.uniform(0, 2 * math.pi, (waves, 2))
    amp = rng.normal(0, amplitude / math.sqrt(waves), (waves, 2))

    def displace(p: np.ndarray) -> np.ndarray:
        out = np.zeros_like(p)
        for w in range(waves):
            for axis in range(2):
                out[:, axis] += amp[w, axis] * np.sin(p @ k[w, axis] + phase[w, axis])
        return out

    return displace


def vary_ends(stroke: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Over- or undershoot a stroke's ends a little, as a quick hand does."""
    if len(stroke) < 3:
        return stroke
    for end in (0, -1):
        if rng.random() < 0.35:
            amount = rng.uniform(-0.5, 1.0) * scale
            inner = stroke[1] if end == 0 else stroke[-2]
            direction = stroke[end] - inner
            norm = np.linalg.norm(direction)
            if amount > 0 and norm > 0:
                stroke = stroke.copy()
                stroke[end] = stroke[end] + direction / norm * amount
            elif amount < 0 and len(stroke) > 4:
                cut = min(len(stroke) // 4, max(1, int(-amount / max(norm, 1e-6))))
                stroke = stroke[cut:] if end == 0 else stroke[:-cut]
    return stroke


def choose_form(char: str, rng: np.random.Generator, hershey_share: float = HERSHEY_SHARE) -> tuple[str, list]:
    """A letterform of ``char`` and its name: ``"table/<i>"`` (the form table) or ``"hershey/<family>"``."""
    if rng.random() < hershey_share:
        families = HERSHEY_FAMILIES if char.islower() else HERSHEY_CAPITALS
        family = families[rng.integers(len(families))]
        return f"hershey/{family}", list(hershey_font(family)[char])
    forms = table_forms(char)
    i = int(rng.integers(len(forms)))
    return f"table/{i}", list(forms[i])


def letter_strokes(char: str, rng: np.random.Generator) -> list[np.ndarray]:
    """One writer's ``char``: a letterform, bent and slanted, as polylines in pad pixels (280 px pad)."""
    strokes = choose_form(char, rng)[1]
    low, high = np.min([s.min(0) for s in strokes], 0), np.max([s.max(0) for s in strokes], 0)
    unit = max(high - low)
    strokes = [(s - (low + high) / 2) / unit for s in strokes]  # centred, longer side 1
    if char.islower() and rng.random() < EXIT_TAIL_SHARE:  # the flick a joined-up hand ends a letter with
        last = strokes[-1]
        tail = last[-1] + np.array([rng.uniform(0.08, 0.2), -rng.uniform(0.0, 0.12)])
        strokes[-1] = np.concatenate([last, [last[-1] + np.array([0.03, 0.03]), tail]])
    strokes = [resample(s, 0.02) for s in strokes]
    strokes = [vary_ends(s, rng, 0.05) for s in strokes]

    aspect = math.exp(rng.normal(0, 0.25))  # narrow to wide hands
    slant = float(np.clip(rng.normal(0.12, 0.18), -0.35, 0.6))  # x shifts right going up: italic hands
    angle = math.radians(rng.normal(0, 5))
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.array([[aspect, -slant], [0, 1]])
    bend = smooth_field(rng, rng.uniform(0, 0.06))
    wobble_amp, wobble_freq = rng.uniform(0, 0.012), rng.uniform(8, 20)
    out = []
    for stroke in strokes:
        p = stroke @ linear.T
        p = p + bend(stroke)
        if len(p) > 1:
            arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
            phase = rng.uniform(0, 2 * math.pi, 2)
            p = p + wobble_amp * np.sin(wobble_freq * arc[:, None] + phase)
        out.append(p)
    low, high = np.min([p.min(0) for p in out], 0), np.max([p.max(0) for p in out], 0)
    side = rng.uniform(130, 215)  # pad pixels: people draw at many sizes; filling the 280 px pad is ~200
    scale = side / max(max(high - low), 1e-6)
    centre = np.array([PAD_SIZE / 2, PAD_SIZE / 2]) + rng.uniform(-15, 15, 2)
    out = [(p - (low + high) / 2) * scale + centre for p in out]
    if rng.random() < 0.25:  # a coarse 1990s tablet: polygonal curves
        step = rng.uniform(8, 22)
        out = [resample(p, step) for p in out]
    return out


def render_stroke_letter(char: str, rng: np.random.Generator, drawing: dict) -> np.ndarray:
    """One handwriting-like ``char``: uint8 ``(size, size)`` white on black, framed by ``frame_ink(**drawing)``.

    Drawn at half the pad's resolution (140 px pad, half the pen): ``frame_ink`` shrinks the ink to
    ~23 px anyway, and a quarter of the pixels makes a letter about a millisecond.
    """
    strokes = letter_strokes(char, rng)
    pen = rng.uniform(16, 24)
    half = [p / 2 for p in strokes]
    pad = pad_image(half, size=PAD_SIZE // 2, pen=pen / 2, supersample=2)
    return (frame_ink(pad, **drawing) * 255).round().astype(np.uint8)


def montage(rows: int = 8, seed: int = 0, drawing: dict | None = None) -> np.ndarray:
    """A grid of generated letters for the docs: 26 columns a-z, rows alternating capitals and lower case.

    Row ``r`` column ``c`` is the image ``make_raw_data`` renders as example ``r`` of letter ``c``
    for ``seed`` with ``generator="strokes"``: uint8 ``(32 * rows, 32 * 26)``.
    """
    import string

    from ascii_letter.config import AsciiLetterConfig

    drawing = drawing or AsciiLetterConfig().drawing
    grid = [
        [
            render_stroke_letter(c.upper() if r % 2 == 0 else c, np.random.default_rng([seed, i, r]), drawing)
            for i, c in enumerate(string.ascii_lowercase)
        ]
        for r in range(rows)
    ]
    return np.block(grid)
