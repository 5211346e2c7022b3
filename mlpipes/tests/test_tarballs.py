"""Image tarballs: budgets before work, hostile headers, truncation, and class checks."""

from __future__ import annotations

import gzip
import io
import logging
import tarfile

import numpy as np
import pytest
from PIL import Image

from mlpipes.errors import DataError
from mlpipes.tarballs import TarBudget, check_classes, read_image_tarball


def png(value: int = 255, size: tuple[int, int] = (8, 8), mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], format: int = tarfile.PAX_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=format) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def write(path, data: bytes, compress: bool = True):
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


GOOD = [("images/a/0.png", png(0)), ("images/b/0.png", png(255))]


def test_reads_sorted_and_resizes_on_the_way(tmp_path):
    path = write(tmp_path / "ok.tar.gz", tar_bytes(GOOD[::-1]))
    items = read_image_tarball(path)
    assert [(label, name, pixels.shape) for label, name, pixels in items] == [
        ("a", "images/a/0.png", (8, 8)),
        ("b", "images/b/0.png", (8, 8)),
    ]
    assert read_image_tarball(path, size=4)[1][2].shape == (4, 4)


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["gnu-long-name", "pax"])
def test_a_huge_extended_header_is_refused_from_its_size_field(tmp_path, kind):
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = kind, 1 << 30  # claims a 1 GiB name; tarfile would read it into one string
    data = header.tobuf(tarfile.USTAR_FORMAT) + b"a" * 4096 + tar_bytes(GOOD)
    path = write(tmp_path / "longname.tar.gz", data)
    with pytest.raises(
        DataError, match=r"longname\.tar\.gz: extended header .*: size 1,073,741,824 .*MLPIPES_MAX_TAR_NAME"
    ):
        read_image_tarball(path)


def test_long_names_are_refused_and_shortened_in_the_message(tmp_path):
    name = "images/a/" + "x" * 1500 + ".png"
    path = write(tmp_path / "names.tar.gz", tar_bytes([(name, png())]))  # pax carries the long name
    with pytest.raises(DataError, match=r"name length in bytes 1,513 is over the limit of 1,024") as caught:
        read_image_tarball(path)
    assert len(str(caught.value)) < 400 and "chars)" in str(caught.value)


def test_names_with_control_characters_stay_on_one_line(tmp_path):
    path = write(tmp_path / "nl.tar.gz", tar_bytes([("images/a/evil\nname.txt", b"x")]))
    with pytest.raises(DataError, match=r"evil\\nname\.txt") as caught:
        read_image_tarball(path)
    assert "\n" not in str(caught.value)


def test_pixel_bombs_are_refused_before_decoding(tmp_path):
    bomb = png(0, (8000, 8000), "1")  # a few KB that would decode to 64 M pixels
    path = write(tmp_path / "bomb.tar.gz", tar_bytes([("images/a/0.png", bomb), ("images/a/1.png", bomb)]))
    assert path.stat().st_size < 20_000
    with pytest.raises(DataError, match=r"member 'images/a/0\.png': image of 8000×8000 pixels"):
        read_image_tarball(path)


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("MLPIPES_MAX_TAR_MEMBERS", "1", "member count 2 is over the limit of 1"),
        ("MLPIPES_MAX_TAR_MEMBER_BYTES", "50", r"member 'images/a/0\.png': size in bytes"),
        ("MLPIPES_MAX_TAR_BYTES", "100", "total size of members in bytes"),
        ("MLPIPES_MAX_TAR_PIXELS", "100", "decoded pixels in all 128"),
    ],
)
def test_every_budget_has_an_environment_variable(tmp_path, monkeypatch, env, value, message):
    path = write(tmp_path / "t.tar.gz", tar_bytes(GOOD))
    read_image_tarball(path)
    monkeypatch.setenv(env, value)
    assert getattr(TarBudget.from_env(), {v: k for k, v in TarBudget.ENV.items()}[env]) == int(value)
    with pytest.raises(DataError, match=f"{message}.*{env}"):
        read_image_tarball(path)


def test_truncated_corrupt_and_foreign_files_are_one_line(tmp_path):
    whole = gzip.compress(tar_bytes(GOOD * 1 + [("images/c/0.png", png(7, (64, 64)))]), mtime=0)
    cases = {
        "half.tar.gz": whole[: len(whole) // 2],
        "crc.tar.gz": whole[:-8] + bytes([whole[-8] ^ 0xFF]) + whole[-7:],  # gzip's checksum of the data
        "noise.tar.gz": bytes(range(256)) * 8,
        "empty.tar.gz": b"",
        "no-end.tar.gz": gzip.compress(tar_bytes(GOOD)[: -2 * 512 * 10], mtime=0)[:],
    }
    for name, data in cases.items():
        path = write(tmp_path / name, data, compress=False)
        with pytest.raises(
            DataError, match=rf"/{name.replace('.', '[.]')}: .*(truncated|corrupt|not a readable|no images)"
        ):
            read_image_tarball(path)
    with pytest.raises(DataError, match="no such tarball"):
        read_image_tarball(tmp_path / "missing.tar.gz")
    with pytest.raises(DataError, match="is a folder"):
        read_image_tarball(tmp_path)


def test_a_member_twice_is_refused(tmp_path):
    path = write(tmp_path / "dup.tar.gz", tar_bytes(GOOD + GOOD[:1]))
    with pytest.raises(DataError, match=r"'images/a/0\.png' appears twice"):
        read_image_tarball(path)


def items(*entries):
    return [(label, name, np.full((4, 4), value, np.uint8)) for label, name, value in entries]


def test_classes_must_be_complete_known_and_consistent(caplog):
    labels = ("a", "b", "c")
    ok = items(("a", "images/a/0.png", 1), ("B", "images/B/0.png", 2), ("c", "images/c/0.png", 3))
    assert check_classes("t.tar.gz", ok, labels).tolist() == [0, 1, 2]
    with pytest.raises(DataError, match=r"t\.tar\.gz: no images for 2 of 3 classes \(b, c\)"):
        check_classes("t.tar.gz", ok[:1], labels)
    with pytest.raises(DataError, match=r"folder 'z' is not one of the labels a, b, c"):
        check_classes("t.tar.gz", [*ok, *items(("z", "images/z/0.png", 4))], labels)
    clash = [*ok, *items(("b", "images/b/1.png", 1))]
    with pytest.raises(DataError, match=r"'images/a/0\.png' \(a\) and 'images/b/1\.png' \(b\) hold the same image"):
        check_classes("t.tar.gz", clash, labels)
    with caplog.at_level(logging.WARNING):
        check_classes("t.tar.gz", [*ok, *items(("a", "images/a/1.png", 1))], labels)
    assert "1 images repeat within their class (e.g. 'images/a/0.png' and 'images/a/1.png')" in caplog.text
