"""Raw files fetched from an ordered list of mirrors, verified by sha256, cached in the artifact directory.

A mirror is a folder or any fsspec URL (``https://…``, ``s3://…``). Files may be stored gzipped
(``name.gz``) or plain; the sha256 is of the decompressed bytes, so the check holds whatever gzip
made the archive. An offline machine points the list at a local folder.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from mlpipes.artifacts import atomic_write, sha256_bytes, sha256_file
from mlpipes.errors import DataError
from mlpipes.safety import redact_url

MAX_BYTES_ENV = "MLPIPES_MAX_DOWNLOAD_BYTES"


def fetch(name: str, sha256: str, mirrors: Sequence[str], cache: Path, hint: str = "") -> Path:
    """``cache/name``, verified; downloaded from the first mirror holding a matching copy if missing or bad."""
    path = Path(cache) / name
    if path.exists() and sha256_file(path) == sha256:
        return path
    return atomic_write(path, download(name, sha256, mirrors, hint))


def download(name: str, sha256: str, mirrors: Sequence[str], hint: str = "") -> bytes:
    """The decompressed bytes of ``name`` (tried as ``name.gz``, then ``name``) from the first mirror that
    has them with the right sha256; the error lists every URL tried and why."""
    import fsspec

    limit = int(os.environ.get(MAX_BYTES_ENV) or 1 << 30)
    tried = []
    for mirror in mirrors:
        base = mirror.rstrip("/")
        if "://" not in base and not Path(base).expanduser().is_dir():
            tried.append(f"{base} (no such folder)")
            continue
        for candidate in (f"{name}.gz", name):
            url = f"{base}/{candidate}"
            try:
                with fsspec.open(url if "://" in url else str(Path(url).expanduser()), "rb") as f:
                    data = f.read(limit + 1)
                if len(data) > limit:
                    raise ValueError(f"larger than {limit} bytes (raise ${MAX_BYTES_ENV})")
                if data[:2] == b"\x1f\x8b":
                    data = _gunzip(data, limit)
            except FileNotFoundError:
                # fsspec's HTTP filesystem says "not found" for an unreachable host too: say both.
                why = "not found, or the host is unreachable (offline?)" if "://" in url else "not found"
                tried.append(f"{redact_url(url)} ({why})")
                continue
            except (OSError, EOFError, ValueError, ImportError, zlib.error) as e:
                tried.append(f"{redact_url(url)} ({type(e).__name__}: {str(e)[:80]})")
                continue
            got = sha256_bytes(data)
            if got == sha256:
                return data
            tried.append(f"{redact_url(url)} (sha256 {got[:12]}…, expected {sha256[:12]}…)")
    raise DataError(
        f"could not fetch {name} from any mirror; tried: {'; '.join(tried) or 'no mirrors configured'}"
        + (f". {hint}" if hint else "")
    )


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress with a budget, so a small gzip bomb cannot fill memory."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out = f.read(limit + 1)
    if len(out) > limit:
        raise ValueError(f"decompresses to more than {limit} bytes (raise ${MAX_BYTES_ENV})")
    return out
