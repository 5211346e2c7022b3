"""Hostile and malformed letter tarballs given to ``ascii-letter save-datasets --tarball``.

Each is refused in one line naming the tarball (and the member, where one is to blame), and the
records saved before from a good tarball are byte-identical after.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from adversarial_helpers import assert_refused, png_bytes, snapshot
from PIL import Image

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_png(k: int) -> bytes:
    """A distinct 32×32 image per k (a square at its own place): no accidental duplicates."""
    pixels = np.zeros((32, 32), np.uint8)
    y, x = divmod(k, 28)
    pixels[y : y + 4, x : x + 4] = 255
    return png_bytes(Image.fromarray(pixels))


def good_members(letters: str = LETTERS, per_class: int = 3) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [
        member(f"images/{c}/{i}.png", letter_png(k * per_class + i))
        for k, c in enumerate(letters)
        for i in range(per_class)
    ]


def member(name: str, data: bytes | None = None, **attributes) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


def tar_gz(members, format: int = tarfile.PAX_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=format, errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def huge_header(kind: bytes) -> bytes:
    """An extended header (GNU long name or pax) that claims 1 GiB, followed by a little data."""
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = kind, 1 << 30
    return gzip.compress(header.tobuf(tarfile.USTAR_FORMAT) + b"n" * 65536, mtime=0)


def many_members(count: int) -> bytes:
    folder = tarfile.TarInfo("images/a/")
    folder.type = tarfile.DIRTYPE
    return gzip.compress(folder.tobuf(tarfile.USTAR_FORMAT) * count, mtime=1)


BOMB = png_bytes(Image.new("1", (8000, 8000)))  # ~8 KB that decodes to 64 M pixels
GOOD = tar_gz(good_members())
ALL_BUT_Z = good_members(LETTERS[:-1])
Z_FOLDER = member("images/z/", type=tarfile.DIRTYPE)

CASES = {
    # id: (tarball bytes, culprits named in the error line)
    "traversal": (
        tar_gz([*good_members(), member("images/../../evil.png", letter_png(900))]),
        [r"images/\.\./\.\./evil"],
    ),
    "absolute": (tar_gz([member("/images/a/abs.png", letter_png(1))]), ["/images/a/abs.png"]),
    "symlink": (
        tar_gz([member("images/a/s.png", type=tarfile.SYMTYPE, linkname="/etc/passwd")]),
        ["images/a/s.png", "link"],
    ),
    "hardlink": (
        tar_gz([member("images/a/h.png", type=tarfile.LNKTYPE, linkname="images/a/0.png")]),
        ["h.png", "link"],
    ),
    "device": (tar_gz([member("images/a/d.png", type=tarfile.CHRTYPE)]), ["images/a/d.png"]),
    "fifo": (tar_gz([member("images/a/f.png", type=tarfile.FIFOTYPE)]), ["images/a/f.png"]),
    "gnu-long-name-1GiB": (huge_header(tarfile.GNUTYPE_LONGNAME), ["extended header", "MLPIPES_MAX_TAR_NAME"]),
    "pax-header-1GiB": (huge_header(tarfile.XHDTYPE), ["extended header", "MLPIPES_MAX_TAR_NAME"]),
    "gnu-long-name-100KB": (
        tar_gz([member("images/a/" + "x" * 100_000 + ".png", letter_png(2))], format=tarfile.GNU_FORMAT),
        ["MLPIPES_MAX_TAR_NAME"],
    ),
    "pixel-bombs": (
        tar_gz([member(f"images/a/{i}.png", BOMB) for i in range(3)]),
        [r"images/a/0\.png", "8000×8000", "MLPIPES_MAX_IMAGE_PIXELS"],
    ),
    "too-many-members": (many_members(5001), ["member count 5,001", "MLPIPES_MAX_TAR_MEMBERS"]),  # budget lowered below
    "huge-member": (
        tar_gz([member("images/a/big.png", b"\0" * (9 << 20))]),
        [r"images/a/big\.png", "MLPIPES_MAX_TAR_MEMBER_BYTES"],
    ),
    "truncated": (GOOD[: len(GOOD) // 2], ["truncated or corrupt"]),
    "bad-gzip-checksum": (GOOD[:-8] + bytes([GOOD[-8] ^ 0xFF]) + GOOD[-7:], ["corrupt"]),
    "not-gzip": (b"PK\x03\x04" + bytes(range(256)) * 4, ["not a readable tarball"]),
    "empty-file": (b"", ["not a readable tarball|no images"]),
    "not-an-image": (tar_gz([*good_members(), member("images/a/notes.txt", b"hello")]), [r"images/a/notes\.txt"]),
    "fake-png": (
        tar_gz([*good_members(), member("images/a/fake.png", b"\x89PNG\r\n\x1a\nnope")]),
        [r"images/a/fake\.png"],
    ),
    "truncated-png": (
        tar_gz([*good_members(), member("images/a/cut.png", letter_png(700)[:-30])]),
        [r"images/a/cut\.png"],
    ),
    "same-image-two-labels": (
        tar_gz([*good_members(), member("images/q/copy.png", letter_png(0))]),
        [r"images/a/0\.png", r"images/q/copy\.png", "two labels"],
    ),
    "2-of-26-classes": (tar_gz(good_members("ab")), ["24 of 26 classes", "c, d, e"]),
    "one-class-missing": (tar_gz(ALL_BUT_Z), [r"1 of 26 classes \(z\)"]),
    "empty-class-folder": (tar_gz([*ALL_BUT_Z, Z_FOLDER]), [r"1 of 26 classes \(z\)"]),
    "label-not-a-letter": (tar_gz([*good_members(), member("images/7/0.png", letter_png(800))]), ["folder '7'"]),
    "member-twice": (tar_gz([*good_members(), good_members()[0]]), [r"images/a/0\.png", "twice"]),
    "non-utf8-newline-name": (
        tar_gz([*good_members(), member("images/\udcff\n/x.png", letter_png(801))]),
        [r"\\udcff\\n"],
    ),
}


@pytest.fixture(scope="module")
def saved_letters(tmp_path_factory) -> Path:
    """An artifact home whose letter records were saved from a good tarball."""
    from ascii_letter import AsciiLetterConfig
    from ascii_letter.dataset import save_datasets

    root = tmp_path_factory.mktemp("letters-home")
    good = root / "good.tar.gz"
    good.write_bytes(GOOD)
    save_datasets(AsciiLetterConfig(artifact_dir=str(root / "ascii_letter"), tarball=str(good), test_per_class=1))
    return root


@pytest.fixture
def letters_home(home: Path, saved_letters: Path) -> Path:
    shutil.copytree(saved_letters, home, dirs_exist_ok=True)
    return home


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_tarball_is_refused_and_nothing_saved_changes(cli, letters_home, tmp_path, monkeypatch, case):
    data, culprits = CASES[case]
    monkeypatch.setenv("MLPIPES_MAX_TAR_MEMBERS", "5000")  # the default, 100 000, takes ~5 s of CPU to reach
    tarball = tmp_path / "bad.tar.gz"
    tarball.write_bytes(data)
    before = snapshot(letters_home)
    assert any(name.endswith("index.json") for name in before)
    result = cli("ascii-letter", "save-datasets", "--tarball", tarball, "--test-per-class", "1")
    assert_refused(result, r"bad\.tar\.gz", *culprits, before=before, home=letters_home)
    assert not (tmp_path / "evil.png").exists() and not Path("/images").exists()


def test_a_mistyped_tarball_path_is_not_rendered(cli, letters_home, tmp_path):
    typo = tmp_path / "typo" / "path.tar.gz"
    before = snapshot(letters_home)
    result = cli("ascii-letter", "save-datasets", "--tarball", typo)
    assert_refused(result, r"typo/path\.tar\.gz", "no such tarball", before=before, home=letters_home)
    assert not typo.parent.exists()
    result = cli("ascii-letter", "save-datasets", "--tarball", tmp_path)  # a folder
    assert_refused(result, "no such tarball file", before=before, home=letters_home)


def test_the_good_tarball_still_saves(cli, home, tmp_path):
    tarball = tmp_path / "good.tar.gz"
    tarball.write_bytes(GOOD)
    result = cli("ascii-letter", "save-datasets", "--tarball", tarball, "--test-per-class", "1")
    assert result.code == 0, result.err
    assert "train 52, test 26" in result.out


def test_the_console_script_exits_non_zero_with_one_line(home, tmp_path):
    """The same contract through the installed command, not only its main function."""
    from adversarial_helpers import run_console

    tarball = tmp_path / "bad.tar.gz"
    tarball.write_bytes(CASES["gnu-long-name-1GiB"][0])
    result = run_console("ascii-letter", "save-datasets", "--tarball", tarball, home=home, memory_gib=3)
    assert_refused(result, r"bad\.tar\.gz", "extended header")
