import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from ascii_letter import AsciiLetterConfig, dataset
from ascii_letter.dataset import TYPEFACES, make_raw_data, render_example, save_datasets
from mlpipes.errors import DataError
from mlpipes.records import Records


def small(tmp_path, **overrides) -> AsciiLetterConfig:
    return AsciiLetterConfig(artifact_dir=str(tmp_path), examples_per_class=6, test_per_class=2, **overrides)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    first = make_raw_data(small(tmp_path), tmp_path / "a.tar.gz").read_bytes()
    again = make_raw_data(small(tmp_path), tmp_path / "b.tar.gz").read_bytes()
    other = make_raw_data(small(tmp_path, seed=1), tmp_path / "c.tar.gz").read_bytes()
    assert first == again and first != other


def test_tarball_layout_and_images(tmp_path):
    path = make_raw_data(small(tmp_path), tmp_path / "a.tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert len(names) == 26 * 6 and names[:2] == ["images/a/00.png", "images/a/01.png"]
        image = np.asarray(Image.open(io.BytesIO(tar.extractfile("images/q/03.png").read())))
    assert image.shape == (32, 32) and image.dtype == np.uint8
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert border.mean() < 40 and image.max() > 200  # white ink on black, like MNIST
    assert len(TYPEFACES) >= 6


def test_each_generator_draws_its_own_letters_and_mixed_draws_both(tmp_path, monkeypatch):
    strokes = make_raw_data(small(tmp_path), tmp_path / "s.tar.gz").read_bytes()
    fonts = make_raw_data(small(tmp_path, generator="fonts"), tmp_path / "f.tar.gz").read_bytes()
    assert strokes != fonts
    monkeypatch.setattr(dataset, "render_letter", lambda char, rng, size: "font")
    monkeypatch.setattr(dataset, "render_stroke_letter", lambda char, rng, drawing, fonts: "strokes")
    config = small(tmp_path, generator="mixed")
    drawn = [render_example("a", np.random.default_rng([0, 0, i]), config) for i in range(500)]
    assert 0.14 < drawn.count("font") / 500 < 0.26  # one in five


def test_more_than_a_hundred_per_class_keeps_names_sorted(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "render_stroke_letter", lambda char, rng, drawing, fonts: np.zeros((32, 32), np.uint8))
    config = AsciiLetterConfig(artifact_dir=str(tmp_path), examples_per_class=101)
    path = make_raw_data(config, tmp_path / "a.tar.gz")
    with tarfile.open(path) as tar:
        names = [n for n in tar.getnames() if n.startswith("images/a/")]
    assert names[:2] == ["images/a/000.png", "images/a/001.png"] and names == sorted(names) and len(names) == 101


def test_stratified_split_counts_are_exact(tmp_path):
    records = save_datasets(small(tmp_path))
    train, test = records.load("train")["label"], records.load("test")["label"]
    assert np.bincount(train, minlength=26).tolist() == [4] * 26
    assert np.bincount(test, minlength=26).tolist() == [2] * 26
    again = save_datasets(small(tmp_path / "again"))
    assert again.sha256 == records.sha256  # seeded: the same split on every machine


def write_tar(path, members):
    """members: (TarInfo, bytes or None)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def png(value=255, size=32) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), value).save(buffer, format="PNG")
    return buffer.getvalue()


def member(name, data=None, **attributes):
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


good = member("images/a/00.png", png())


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (member("images/../../etc/evil.png", png()), r"'images/../../etc/evil.png' points outside"),
        (member("/images/a/abs.png", png()), r"'/images/a/abs.png' points outside"),
        (member("images/a/link.png", type=tarfile.SYMTYPE, linkname="/etc/passwd"), r"'images/a/link.png' is a link"),
        (
            member("images/a/hard.png", type=tarfile.LNKTYPE, linkname="images/a/00.png"),
            r"'images/a/hard.png' is a link",
        ),
        (member("images/a/dev.png", type=tarfile.CHRTYPE), r"'images/a/dev.png' is a device"),
        (member("images/a/huge.png", b"\0" * (9 << 20)), r"'images/a/huge.png': size in bytes 9,437,184 is over"),
        (member("images/a/notes.txt", b"hello"), r"'images/a/notes.txt' is not images/<label>/"),
        (member("images/a/fake.png", b"not a png"), r"'images/a/fake.png': not a readable image"),
        (member("images/7/00.png", png()), r"'images/7/00.png': folder '7' is not one of the labels"),
    ],
    ids=["traversal", "absolute", "symlink", "hardlink", "device", "huge", "non-image", "fake-png", "bad-label"],
)
def test_malicious_or_malformed_tarballs_are_refused_naming_the_member(tmp_path, bad, message):
    tarball = write_tar(tmp_path / "bad.tar.gz", [good, bad])
    config = small(tmp_path, tarball=str(tarball))
    with pytest.raises(DataError, match=message):
        save_datasets(config)
    assert not (config.artifacts / "datasets").exists()  # nothing half-written


def test_a_user_tarball_of_dark_on_white_jpgs_of_any_size_is_accepted(tmp_path):
    members = []
    for k, letter in enumerate("abcdefghijklmnopqrstuvwxyz"):
        for i in range(3):
            image = Image.new("L", (64, 48), 255)
            image.paste(0, (20, 10, 40, 40))  # a dark block on white
            x, y = 44 + k % 13, 2 + i * 4 + k // 13 * 12
            image.paste(0, (x, y, x + 3, y + 3))  # a dot that makes each image unique (no duplicates)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG")
            members.append(member(f"images/{letter.upper() if i else letter}/{i}.jpg", buffer.getvalue()))
    tarball = write_tar(tmp_path / "user.tar.gz", members)
    config = AsciiLetterConfig(artifact_dir=str(tmp_path / "a"), tarball=str(tarball), test_per_class=1)
    records = save_datasets(config)
    images = records.load("train")["image"]
    assert images.shape == (52, 32, 32) and records.rows("test") == 26
    assert images[:, 0, 0].max() < 30 and images[:, 16, 16].min() > 220  # inverted to white on black
    assert Records.open(config.records_url).index["provenance"]["tarball"] == "user.tar.gz"


def test_a_mistyped_tarball_path_is_refused_not_rendered(tmp_path):
    typo = tmp_path / "typo" / "path.tar.gz"
    with pytest.raises(DataError, match=r"path\.tar\.gz: no such tarball file; check --tarball"):
        save_datasets(small(tmp_path, tarball=str(typo)))
    with pytest.raises(DataError, match="no such tarball file"):
        save_datasets(small(tmp_path), tarball=typo)
    assert not typo.exists() and not typo.parent.exists()
    with pytest.raises(DataError, match="no such tarball file"):
        save_datasets(small(tmp_path, tarball=str(tmp_path)))  # a folder is no tarball either


def distinct_png(k: int) -> bytes:
    pixels = np.zeros((32, 32), np.uint8)
    y, x = divmod(k, 28)
    pixels[y : y + 4, x : x + 4] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("letters", "message"),
    [
        ("ab", r"no images for 24 of 26 classes \(c, d, e, .*\)"),
        ("abcdefghijklmnopqrstuvwxy", r"1 of 26 classes \(z\)"),
    ],
    ids=["2-of-26", "one-missing"],
)
def test_missing_classes_are_refused_by_name(tmp_path, letters, message):
    members = [member(f"images/{c}/{i}.png", distinct_png(k * 3 + i)) for k, c in enumerate(letters) for i in range(3)]
    members.append((tarfile.TarInfo("images/z/"), None))  # an empty class folder counts as missing
    members[-1][0].type = tarfile.DIRTYPE
    tarball = write_tar(tmp_path / "some.tar.gz", members)
    with pytest.raises(DataError, match=message):
        save_datasets(small(tmp_path, tarball=str(tarball)))


def test_the_same_image_under_two_labels_is_refused_naming_both(tmp_path):
    members = [
        member(f"images/{c}/{i}.png", distinct_png(k * 3 + i)) for k, c in enumerate(string_letters) for i in range(3)
    ]
    members.append(member("images/q/dup.png", distinct_png(0)))  # images/a/0.png's bytes
    tarball = write_tar(tmp_path / "dup.tar.gz", members)
    with pytest.raises(DataError, match=r"'images/a/0\.png' \(a\) and 'images/q/dup\.png' \(q\) hold the same image"):
        save_datasets(small(tmp_path, tarball=str(tarball)))


string_letters = "abcdefghijklmnopqrstuvwxyz"
