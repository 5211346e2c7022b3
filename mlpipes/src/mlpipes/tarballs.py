"""Read a tarball of labelled images (``images/<label>/<name>.png``) safely, without extracting it.

Members are read into memory one by one; nothing is written to disk, so no member can land
outside a folder. Anything that is not a plain image file in the expected layout is refused,
naming the member: absolute paths, ``..``, links, devices, oversized members, other files.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import PurePosixPath

import numpy as np

from mlpipes.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image_tarball(
    path: str | os.PathLike,
    root: str = "images",
    max_member_bytes: int = 1 << 20,
    max_members: int = 100_000,
) -> list[tuple[str, str, np.ndarray]]:
    """``(label, member name, grayscale uint8 image)`` for every image, sorted by member name."""
    from PIL import Image, UnidentifiedImageError

    items = []
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below; open errors caught here
    except (OSError, tarfile.TarError) as e:
        raise DataError(f"{path}: not a readable tarball ({e})") from None
    with archive:
        for count, member in enumerate(archive, start=1):
            if count > max_members:
                raise DataError(f"{path}: more than {max_members} members; refusing to read further")
            name = member.name
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or ".." in parts:
                raise DataError(f"{path}: member '{name}' points outside the archive (absolute path or '..')")
            if member.isdir():
                continue
            if not member.isfile():
                kind = "link" if member.issym() or member.islnk() else "device or special file"
                raise DataError(f"{path}: member '{name}' is a {kind}; only regular image files are accepted")
            if member.size > max_member_bytes:
                raise DataError(f"{path}: member '{name}' is {member.size} bytes, over the {max_member_bytes} limit")
            if len(parts) != 3 or parts[0] != root or not name.lower().endswith(IMAGE_SUFFIXES):
                raise DataError(f"{path}: member '{name}' is not {root}/<label>/<name>{{{','.join(IMAGE_SUFFIXES)}}}")
            data = archive.extractfile(member).read()
            try:
                with Image.open(io.BytesIO(data)) as image:
                    pixels = np.asarray(image.convert("L"))
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(f"{path}: member '{name}' is not a readable image ({e})") from None
            items.append((parts[1], name, pixels))
    if not items:
        raise DataError(f"{path}: no images under {root}/<label>/")
    return sorted(items, key=lambda item: item[1])
