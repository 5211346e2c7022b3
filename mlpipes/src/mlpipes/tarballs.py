"""Read a tarball of labelled images (``images/<label>/<name>.png``) safely, without extracting it.

Members are read into memory one by one; nothing is written to disk, so no member can land
outside a folder. Anything that is not a plain image file in the expected layout is refused,
naming the member: absolute paths, ``..``, links, devices, sparse files, other files.

Budgets are checked before the work they bound, each with a default and an environment variable
to raise it (see :class:`TarBudget`): member count, name length, bytes per member and in all,
pixels per image (from the image header, before decoding) and in all. ``tarfile`` reads a GNU
long-name or pax header's whole payload into memory before returning the member, so a header
claiming a gigabyte is refused from its size field by :func:`_guarded_tarinfo`, before the read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar

import numpy as np

from mlpipes.budgets import budget, over_budget, shown
from mlpipes.errors import DataError
from mlpipes.images import DEFAULT_PIXELS, PIXELS_ENV, decode_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EXTENDED_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TarBudget:
    """Limits on what one tarball may make us read, decode and hold."""

    members: int = 100_000  # MLPIPES_MAX_TAR_MEMBERS
    name_bytes: int = 1024  # MLPIPES_MAX_TAR_NAME: longest member name (and extended header payload, plus 1 KiB)
    member_bytes: int = 8 << 20  # MLPIPES_MAX_TAR_MEMBER_BYTES
    total_bytes: int = 1 << 30  # MLPIPES_MAX_TAR_BYTES: sum of member sizes (uncompressed)
    image_pixels: int = DEFAULT_PIXELS  # MLPIPES_MAX_IMAGE_PIXELS: per image, shared with every image reader
    total_pixels: int = 1 << 28  # MLPIPES_MAX_TAR_PIXELS: decoded pixels in all

    ENV: ClassVar[dict[str, str]] = {
        "members": "MLPIPES_MAX_TAR_MEMBERS",
        "name_bytes": "MLPIPES_MAX_TAR_NAME",
        "member_bytes": "MLPIPES_MAX_TAR_MEMBER_BYTES",
        "total_bytes": "MLPIPES_MAX_TAR_BYTES",
        "image_pixels": PIXELS_ENV,
        "total_pixels": "MLPIPES_MAX_TAR_PIXELS",
    }

    @classmethod
    def from_env(cls) -> TarBudget:
        """The defaults, each overridden by its environment variable when set."""
        return cls(**{field: budget(env, getattr(cls, field)) for field, env in cls.ENV.items()})


def _guarded_tarinfo(culprit: str, limit: int, env: str) -> type[tarfile.TarInfo]:
    """A ``TarInfo`` class that refuses an extended header (long name, pax) larger than ``limit``
    from its size field, before ``tarfile`` reads its payload into one string."""

    class GuardedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type in EXTENDED_HEADERS and self.size > limit:
                what = f"extended header (long name or pax) at byte {self.offset:,}: size"
                raise over_budget(culprit, what, self.size, limit, env)
            return super()._proc_member(tarfile_)

    return GuardedTarInfo


def read_image_tarball(
    path: str | os.PathLike, root: str = "images", *, size: int | None = None, limits: TarBudget | None = None
) -> list[tuple[str, str, np.ndarray]]:
    """``(label, member name, grayscale uint8 image)`` for every image, sorted by member name.

    ``size``: resize each image to ``size``×``size`` as soon as it is decoded (Lanczos), so memory
    holds small images only. ``limits``: the budgets (default: :meth:`TarBudget.from_env`).
    """
    limits = limits or TarBudget.from_env()
    where = shown(path)
    tarinfo = _guarded_tarinfo(where, limits.name_bytes + 1024, TarBudget.ENV["name_bytes"])
    items: list[tuple[str, str, np.ndarray]] = []
    try:
        archive = tarfile.open(path, "r:*", tarinfo=tarinfo)  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise DataError(f"{where}: no such tarball") from None
    except IsADirectoryError:
        raise DataError(f"{where}: is a folder; pass a .tar.gz of {root}/<label>/<name>.png") from None
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, tarfile.TarError, RecursionError) as e:
        raise DataError(f"{where}: not a readable tarball ({type(e).__name__}: {shown(e, 120)})") from None
    try:
        with archive:
            _read_members(archive, where, root, size, limits, items)
            _check_end(archive, where)
    except (OSError, EOFError, zlib.error, tarfile.TarError, RecursionError) as e:
        raise DataError(f"{where}: truncated or corrupt tarball ({type(e).__name__}: {shown(e, 120)})") from None
    if not items:
        raise DataError(f"{where}: no images under {root}/<label>/")
    return sorted(items, key=lambda item: item[1])


def _read_members(
    archive: tarfile.TarFile,
    where: str,
    root: str,
    size: int | None,
    limits: TarBudget,
    items: list[tuple[str, str, np.ndarray]],
) -> None:
    env = TarBudget.ENV
    total_bytes = total_pixels = 0
    seen: set[str] = set()
    for count, member in enumerate(archive, start=1):
        name = member.name
        culprit = f"{where}: member '{shown(name)}'"
        if count > limits.members:
            raise over_budget(where, "member count", count, limits.members, env["members"])
        if len(name.encode("utf-8", "surrogateescape")) > limits.name_bytes:
            raise over_budget(culprit, "name length in bytes", len(name), limits.name_bytes, env["name_bytes"])
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or "\\" in name:
            raise DataError(f"{culprit} points outside the archive (absolute path, '..' or '\\')")
        if member.isdir():
            continue
        if member.issym() or member.islnk():
            raise DataError(f"{culprit} is a link; only regular image files are accepted")
        if not member.isfile() or member.issparse():
            raise DataError(f"{culprit} is a device, sparse or special file; only regular image files are accepted")
        if member.size < 0:
            raise DataError(f"{culprit} declares a negative size; the tarball is corrupt")
        if member.size > limits.member_bytes:
            raise over_budget(culprit, "size in bytes", member.size, limits.member_bytes, env["member_bytes"])
        total_bytes += member.size
        if total_bytes > limits.total_bytes:
            raise over_budget(
                where, "total size of members in bytes", total_bytes, limits.total_bytes, env["total_bytes"]
            )
        if len(parts) != 3 or parts[0] != root or not name.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"{culprit} is not {root}/<label>/<name>{{{','.join(IMAGE_SUFFIXES)}}}")
        if name in seen:
            raise DataError(f"{culprit} appears twice in the archive")
        seen.add(name)
        data = archive.extractfile(member).read(limits.member_bytes + 1)
        pixels = decode_image(data, culprit, max_pixels=limits.image_pixels, max_bytes=limits.member_bytes)
        total_pixels += pixels.size
        if total_pixels > limits.total_pixels:
            raise over_budget(where, "decoded pixels in all", total_pixels, limits.total_pixels, env["total_pixels"])
        if size and pixels.shape != (size, size):
            from PIL import Image

            pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS))
        items.append((parts[1], name, pixels))


def _check_end(archive: tarfile.TarFile, where: str) -> None:
    """A tarball cut at a member boundary reads as a shorter one; its end-of-archive block is what is missing.
    Reading on to the end of the stream also makes gzip verify its checksum (bounded: 1 MiB of padding)."""
    archive.fileobj.seek(archive.offset)
    if archive.fileobj.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
        raise DataError(f"{where}: truncated tarball (no end-of-archive block); download or create it again")
    archive.fileobj.read(1 << 20)


def check_classes(
    where: str | os.PathLike, items: Sequence[tuple[str, str, np.ndarray]], labels: Sequence[str], fold: bool = True
) -> np.ndarray:
    """The label index of every item, after checking the classes are complete and consistent.

    Refused, naming the culprits: a folder that is not a label, labels with no images (missing or
    empty folders), and the same pixels under two labels (one of them is wrong). The same pixels
    twice under one label are only warned about (a duplicate may land in both train and test).
    ``fold``: folder names are matched case-insensitively (``A/`` and ``a/`` are one class).
    """
    where = shown(where)
    index = {label: i for i, label in enumerate(labels)}
    result = np.empty(len(items), np.int64)
    for k, (folder, name, _) in enumerate(items):
        key = folder.lower() if fold else folder
        if key not in index:
            allowed = shown(", ".join(labels), 100)
            raise DataError(
                f"{where}: member '{shown(name)}': folder '{shown(folder, 40)}' is not one of the labels {allowed}"
            )
        result[k] = index[key]
    missing = [label for label, count in zip(labels, np.bincount(result, minlength=len(labels))) if not count]
    if missing:
        raise DataError(
            f"{where}: no images for {len(missing)} of {len(labels)} classes ({shown(', '.join(missing), 100)}); "
            "every class needs a folder of images"
        )
    first: dict[bytes, int] = {}
    repeats = []
    for k, (_, name, pixels) in enumerate(items):
        key = hashlib.sha256(repr(pixels.shape).encode() + np.ascontiguousarray(pixels).tobytes()).digest()
        earlier = first.setdefault(key, k)
        if earlier == k:
            continue
        if result[earlier] != result[k]:
            raise DataError(
                f"{where}: members '{shown(items[earlier][1], 80)}' ({labels[result[earlier]]}) and "
                f"'{shown(name, 80)}' ({labels[result[k]]}) hold the same image under two labels; remove the wrong one"
            )
        repeats.append((items[earlier][1], name))
    if repeats:
        a, b = repeats[0]
        log.warning(
            f"warning: {where}: {len(repeats)} images repeat within their class (e.g. '{shown(a, 80)}' and "
            f"'{shown(b, 80)}'); a repeat may land in both train and test"
        )
    return result
