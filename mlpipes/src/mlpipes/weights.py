"""Versioned safetensors weights with a JSON manifest: written whole or not at all, never changed.

A model version is a set of files (weights per role, e.g. ``features`` and ``classifier``, and
later an ONNX export) plus one manifest that records for each file its sha256 and size, and for
the version the resolved config (credentials redacted), metrics, the dataset's sha256, the code
version, the preprocessing contract and, for transferred weights, the parent's name, version
and sha256. Every load verifies the full sha256 and fails closed.

Layout (one flat folder holds many versions; bundled package folders look the same)::

    <dir>/<name>-<version>.json                          the manifest: the version's single commit point
    <dir>/<name>-<role>-<version>.<sha16>.safetensors     weights, named by (a prefix of) their sha256
    <dir>/<name>-<role>-<version>.<sha16>.onnx            files added later (:func:`add_file`), same rule
    <dir>/.weights.lock                                   flock held while a version in <dir> is written

How a version is published (one mechanism for :func:`save_version`, :func:`add_file` and
:func:`copy_version`): under the version's lock, every file is written to a temporary name,
fsynced and renamed to its content-addressed name (a name that can only ever hold those bytes,
so no file of an existing version is ever overwritten with other content); then the manifest is
written the same way, and its rename is the single atomic step that publishes the version.
A kill at any moment leaves the previous manifest with all its files intact, or the new one
with all of its files; at worst unreferenced files remain. Files only the replaced manifest
named are deleted after the commit.

Versions are immutable: saving the same content again is a no-op (the ``created`` time and file
names do not count); different content under an existing version is refused, naming the
differing file, unless ``force``. Weight files are deterministic: the same tensors and metadata
give the same bytes (the safetensors header is written in a canonical order), and the manifest's
``created`` time never enters them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlpipes.artifacts import atomic_write, fsync_dir, sha256_bytes
from mlpipes.errors import DataError, IntegrityError, UserError
from mlpipes.safety import redact_config, safe_name

FORMAT = "mlpipes.weights/1"
LOCK = ".weights.lock"
SHA_PREFIX = 16  # hex digits of the sha256 in a file name: 64 bits, ample for names within one version
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REQUIRED = {"format": str, "name": str, "version": str, "files": dict}
_OPTIONAL = {"meta": dict, "config": dict, "metrics": dict, "created": str, "code_version": str}


# ---- names ------------------------------------------------------------------------------------
def weights_filename(
    name: str, role: str, version: str, sha256: str | None = None, suffix: str = ".safetensors"
) -> str:
    """``<name>-<role>-<version>[.<sha16>]<suffix>``: with ``sha256``, the content-addressed name."""
    stem = f"{name}-{role}-{version}"
    return f"{stem}.{sha256[:SHA_PREFIX]}{suffix}" if sha256 else f"{stem}{suffix}"


def manifest_filename(name: str, version: str) -> str:
    return f"{name}-{version}.json"


def manifest_path(directory: str | os.PathLike, name: str, version: str) -> Path:
    """Where the manifest of ``name`` ``version`` lives in ``directory`` (names checked, nothing read)."""
    return Path(directory) / manifest_filename(safe_name(name, "pipeline name"), safe_name(version, "model version"))


def version_key(version: str) -> tuple:
    """Sort "1.10.0" after "1.9.0": numbers compare as numbers, the rest as text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+-]", version))


def find_versions(directory: str | os.PathLike, name: str) -> list[Path]:
    """Manifests of ``name`` in ``directory``, oldest first (by ``created``, then version).

    Only valid manifests whose file name matches their content count; a missing folder has none.
    """
    directory = Path(directory)
    safe_name(name, "pipeline name")
    found = []
    try:
        candidates = sorted(directory.glob(f"{name}-*.json"))
    except OSError:
        return []
    for path in candidates:
        try:
            manifest = read_manifest(path)
        except UserError:
            continue
        if manifest["name"] == name and path.name == manifest_filename(name, manifest["version"]):
            found.append((manifest.get("created") or "", version_key(manifest["version"]), path))
    return [path for *_, path in sorted(found)]


# ---- reading ----------------------------------------------------------------------------------
def parse_manifest(data: bytes, source: str) -> dict[str, Any]:
    """A manifest's content, validated: format, types, safe names, a sha256 for every file.

    Anything else is a one-line :class:`IntegrityError` naming ``source`` (a path or URL).
    """
    try:
        manifest = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError:
        raise IntegrityError(f"{source}: manifest is not UTF-8 text; the file is damaged") from None
    except json.JSONDecodeError as e:
        raise IntegrityError(f"{source}: manifest is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IntegrityError(f"{source}: unknown manifest format {found!r}, expected {FORMAT!r}")
    for key, kind in _REQUIRED.items():
        if key not in manifest:
            raise IntegrityError(f"{source}: manifest has no '{key}'")
        if not isinstance(manifest[key], kind):
            raise IntegrityError(f"{source}: manifest '{key}' is not a {kind.__name__}")
    for key, kind in _OPTIONAL.items():
        if manifest.get(key) is not None and not isinstance(manifest[key], kind):
            raise IntegrityError(f"{source}: manifest '{key}' is not a {kind.__name__}")
    for key in ("name", "version"):
        try:
            safe_name(manifest[key], f"manifest {key}")
        except UserError as e:
            raise IntegrityError(f"{source}: {e}") from None
    for role, entry in manifest["files"].items():
        check_entry(entry, role, source)
    return manifest


def check_entry(entry: Any, role: str, source: str) -> tuple[str, str, int | None]:
    """(file, sha256, bytes) of one manifest entry; refuses unsafe names and missing hashes (fail closed)."""
    try:
        safe_name(role, "file role")
    except UserError as e:
        raise IntegrityError(f"{source}: {e}") from None
    if not isinstance(entry, dict):
        raise IntegrityError(f"{source}: file entry '{role}' is not a mapping")
    file, sha256, size = entry.get("file"), entry.get("sha256"), entry.get("bytes")
    try:
        safe_name(file, f"file name of '{role}'")
    except UserError:
        raise IntegrityError(
            f"{source}: file entry '{role}' has an unsafe file name {file!r} (only plain names inside the "
            "manifest's folder are allowed)"
        ) from None
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise IntegrityError(f"{source}: no sha256 for '{file}' ({role}); refusing to load unverified files")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise IntegrityError(f"{source}: file '{file}' ({role}) has an invalid size {size!r}")
    return file, sha256, size


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A local manifest, validated (:func:`parse_manifest`); a one-line error if missing or malformed."""
    path = Path(path)
    return parse_manifest(_read_file(path, "weights manifest"), str(path))


def load_state_dict(manifest_path: str | os.PathLike, role: str) -> dict[str, Any]:
    """Load one weight file named by a manifest, refusing it unless its sha256 matches."""
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    entry = manifest["files"].get(role)
    if entry is None:
        raise DataError(f"{manifest_path}: no '{role}' weights (has: {', '.join(manifest['files']) or 'none'})")
    return load_verified(manifest_path.parent / entry["file"], entry["sha256"])


def load_weights(
    module: Any, manifest_path: str | os.PathLike, role: str, labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Load a manifest's ``role`` weights into ``module`` (an ``nn.Module``); returns the manifest.

    Weights for other ``labels`` (another pipeline's, or the same count in another order) are
    refused before anything loads: they would fit the tensors and answer with the wrong names.
    """
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    theirs = manifest.get("meta", {}).get("labels")
    if labels is not None and theirs is not None and list(theirs) != list(labels):
        raise DataError(
            f"{manifest_path}: weights of '{manifest['name']}' for {len(theirs)} labels ({_preview(theirs)}), "
            f"but this model reads {len(labels)} ({_preview(labels)}); pass weights trained for the same labels"
        )
    fit_state_dict(module, load_state_dict(manifest_path, role), f"{manifest_path} ({role})")
    return manifest


def fit_state_dict(module: Any, state: dict[str, Any], source: str) -> None:
    """``module.load_state_dict(state)``, refused in one line naming ``source`` and the first misfit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} is {tuple(state[k].shape)}, the model's {tuple(v.shape)}"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]  # fmt: skip
    first = shapes[:1] + [f"missing {k}" for k in missing[:1]] + [f"unexpected {k}" for k in unexpected[:1]]
    if first:
        counts = f"{len(shapes)} shapes differ, {len(missing)} missing, {len(unexpected)} unexpected"
        raise DataError(
            f"{source}: these weights do not fit the model ({'; '.join(first)}; {counts}): "
            "they were trained with another architecture (channels, layers or labels); pass weights of this config"
        )
    module.load_state_dict(state)


def _preview(labels: Sequence[str], shown: int = 5) -> str:
    head = ", ".join(map(str, list(labels)[:shown]))
    return head + (", ..." if len(labels) > shown else "")


def load_verified(path: str | os.PathLike, sha256: str | None) -> dict[str, Any]:
    """Load a safetensors file whose full sha256 must equal ``sha256`` (a missing hash fails)."""
    from safetensors.torch import load as load_safetensors

    path = Path(path)
    if not sha256:
        raise IntegrityError(f"{path}: no sha256 to verify against; refusing to load unverified weights")
    data = _read_file(path, "weights file")
    got = sha256_bytes(data)
    if got != sha256:
        raise IntegrityError(
            f"{path}: sha256 {got} does not match the manifest ({sha256}); the file is corrupted or was "
            "tampered with. Delete it and fetch or retrain the weights."
        )
    try:
        return load_safetensors(data)
    except Exception as e:  # safetensors raises its own error type for a malformed header
        raise IntegrityError(f"{path}: not a readable safetensors file ({type(e).__name__}: {str(e)[:200]})") from None


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: {what} is a folder") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied reading the {what}") from None


# ---- writing ----------------------------------------------------------------------------------
def safetensors_bytes(tensors: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """Deterministic safetensors: same tensors and metadata give the same bytes.

    The safetensors library writes ``__metadata__`` in hash-map order (it changes between
    processes); the header is re-written here with sorted metadata keys, same layout otherwise.
    """
    from safetensors.torch import save as save_safetensors

    raw = save_safetensors(tensors, metadata={str(k): str(v) for k, v in metadata.items()})
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned, as safetensors writes it
    return len(text).to_bytes(8, "little") + text + raw[8 + length :]


def save_version(
    directory: str | os.PathLike,
    *,
    name: str,
    version: str,
    state_dicts: dict[str, dict[str, Any]],
    config: dict[str, Any],
    metrics: dict[str, Any],
    dataset_sha256: str | None,
    code_version: str,
    meta: dict[str, Any] | None = None,
    parent: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Publish a version (every weight file, then the manifest as the one atomic step); return the manifest's path.

    The same content again is a no-op; different content under an existing version raises a
    :class:`UserError` naming the differing file unless ``force``. URLs in ``config`` lose their
    credentials. Names are checked before anything is written.
    """
    directory = Path(directory)
    target = manifest_path(directory, name, version)
    for role in state_dicts:
        safe_name(role, "weights role")
    payloads: dict[str, bytes] = {}
    files = {}
    for role, state in state_dicts.items():
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        data = safetensors_bytes(tensors, {"name": name, "role": role, "version": version})
        sha256 = sha256_bytes(data)
        file = weights_filename(name, role, version, sha256)
        payloads[file] = data
        files[role] = {
            "file": file,
            "sha256": sha256,
            "bytes": len(data),
            "parameters": int(
                sum(t.numel() for k, t in tensors.items() if "running_" not in k and "num_batches" not in k)
            ),
        }
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "files": files,
        "meta": redact_config(meta or {}),
        "config": redact_config(config),
        "metrics": metrics,
        "dataset_sha256": dataset_sha256,
        "code_version": code_version,
        "parent": parent,
        "created": _created(),
    }
    return _commit(target, manifest, payloads, force=force)


def _created() -> str:
    """The manifest's creation time (UTC, seconds); only the manifest carries it, never a weight file."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def add_file(
    manifest_path: str | os.PathLike, role: str, source_path: str | os.PathLike, **extra: Any
) -> dict[str, Any]:
    """Add ``source_path`` to a version under ``role`` (e.g. ``"onnx"``); return its manifest entry.

    The file is copied beside the manifest under a content-addressed name, then the updated
    manifest is committed atomically; the weight files are never touched. The same file again is
    a no-op (the existing entry is returned). A different file replaces the role's previous one
    only if that role is not a weights role (``.safetensors``): weights never change this way.
    ``extra`` (e.g. ``opset``, ``parity``) is stored in the entry.
    """
    manifest_path = Path(manifest_path)
    safe_name(role, "file role")
    source = Path(source_path)
    data = _read_file(source, "file to add")
    suffix = "".join(source.suffixes[-1:]) or ".bin"
    try:
        return _add_file(manifest_path, role, data, suffix, extra)
    except OSError as e:
        raise DataError(
            f"{manifest_path}: cannot add '{role}' ({e.strerror or e}); the version is unchanged. Free disk space "
            "or fix the folder's permissions (a bundled version is read-only: copy_version it first)"
        ) from None


def _add_file(manifest_path: Path, role: str, data: bytes, suffix: str, extra: dict[str, Any]) -> dict[str, Any]:
    refuse_package_folder(manifest_path.parent)
    with _version_lock(manifest_path):
        manifest = read_manifest(manifest_path)
        sha256 = sha256_bytes(data)
        current = manifest["files"].get(role)
        if current is not None:
            if current["sha256"] == sha256 and (manifest_path.parent / current["file"]).is_file():
                return current
            if str(current["file"]).endswith(".safetensors"):
                raise UserError(
                    f"{manifest_path}: '{role}' holds the weights {current['file']}; weights of a saved version "
                    "never change: save a new model version instead"
                )
        file = weights_filename(manifest["name"], role, manifest["version"], sha256, suffix)
        entry = {"file": file, "sha256": sha256, "bytes": len(data), **extra}
        updated = {**manifest, "files": {**manifest["files"], role: entry}}
        _commit(manifest_path, updated, {file: data}, force=True, locked=True, previous=manifest)
    return entry


def copy_version(manifest_path: str | os.PathLike, directory: str | os.PathLike, *, force: bool = False) -> Path:
    """A copy of a version (e.g. the bundled one) in ``directory``, every file verified; return its manifest.

    The copy keeps the source's file names, so its manifest is byte-identical (a deploy of either
    is the same version). The source is never modified. A version already in ``directory`` with the same content is
    used as it is (also when it gained files since, e.g. its ONNX export); a different one under
    the same name and version is refused (never overwritten) unless ``force``.
    """
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    target = manifest_path_for(directory, manifest)
    if target.resolve() == manifest_path.resolve():
        return manifest_path
    if not force and target.exists() and _holds(read_manifest(target), manifest):
        return target
    payloads, files = {}, {}
    for role, entry in manifest["files"].items():
        data = _read_file(manifest_path.parent / entry["file"], f"file '{role}' of {manifest_path.name}")
        got = sha256_bytes(data)
        if got != entry["sha256"]:
            raise IntegrityError(
                f"{manifest_path.parent / entry['file']}: sha256 {got} does not match {manifest_path.name} "
                f"({entry['sha256']}); not copying a corrupted version"
            )
        file = entry["file"]
        if force:  # replacing a version: new files get names no file of the old one can have
            suffix = Path(file).suffix or ".bin"
            file = weights_filename(manifest["name"], role, manifest["version"], got, suffix)
        payloads[file] = data
        files[role] = {**entry, "file": file}
    return _commit(target, {**manifest, "files": files}, payloads, force=force)


def local_copy(manifest: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """:func:`copy_version` without ``force`` (the name the toolkit's commands use)."""
    return copy_version(manifest, directory)


def _holds(local: dict[str, Any], source: dict[str, Any]) -> bool:
    """Whether ``local`` is ``source`` plus, at most, files added later (never other weights or fields)."""
    a, b = _content(local), _content(source)
    added = set(a["files"]) - set(b["files"])
    same_files = all(a["files"].get(role) == entry for role, entry in b["files"].items())
    weights_added = any(str(local["files"][r]["file"]).endswith(".safetensors") for r in added)
    return same_files and not weights_added and {**a, "files": {}} == {**b, "files": {}}


def manifest_path_for(directory: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    return manifest_path(directory, manifest["name"], manifest["version"])


def refuse_package_folder(folder: Path) -> None:
    """Bundled weights live in a package's folder (its parent has ``__init__.py``): they are never written."""
    if (folder.parent / "__init__.py").exists():
        raise UserError(
            f"{folder}: a folder of bundled weights inside a package is never modified; copy the version into "
            "the artifact directory first (copy_version), then export or save there"
        )


def _content(manifest: dict[str, Any]) -> dict[str, Any]:
    """What makes two manifests the same version: everything but ``created`` and file names."""
    files = {role: {k: v for k, v in e.items() if k != "file"} for role, e in manifest.get("files", {}).items()}
    return {**{k: v for k, v in manifest.items() if k != "created"}, "files": files}


def differences(before: dict[str, Any], after: dict[str, Any], manifest_file: str) -> list[str]:
    """What differs between two manifests of one version, file by file (for one-line refusals)."""
    out = []
    old, new = before.get("files", {}), after.get("files", {})
    for role in sorted(set(old) | set(new)):
        a, b = old.get(role), new.get(role)
        if a is None:
            out.append(f"{b.get('file')} is new ({role})")
        elif b is None:
            out.append(f"{a.get('file')} ({role}) exists but is not in the new version")
        elif a.get("sha256") != b.get("sha256"):
            out.append(
                f"{b.get('file')} differs ({role}: sha256 {str(b.get('sha256'))[:12]}… new, "
                f"{str(a.get('sha256'))[:12]}… existing)"
            )
    if not out:
        a, b = _content(before), _content(after)
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        out.append(f"{manifest_file} differs (fields: {', '.join(keys) or 'formatting only'})")
    return out


@contextlib.contextmanager
def _version_lock(target: Path) -> Iterator[None]:
    """An exclusive flock on the folder's ``.weights.lock`` (released on exit, even by ``kill -9``).

    The lock file stays: deleting a lock file others may have open would let two writers in.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / LOCK
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _commit(
    target: Path,
    manifest: dict[str, Any],
    payloads: dict[str, bytes],
    *,
    force: bool,
    locked: bool = False,
    previous: dict[str, Any] | None = None,
) -> Path:
    """Write ``payloads`` under their (content-addressed) names, then the manifest: its rename publishes."""
    if not locked:
        refuse_package_folder(target.parent)
        try:
            with _version_lock(target):
                return _commit(target, manifest, payloads, force=force, locked=True)
        except OSError as e:
            raise DataError(
                f"{target}: cannot write version {manifest['version']} ({e.strerror or e}); the existing files are "
                "unchanged. Free disk space or fix the folder's permissions, then retry"
            ) from None
    folder = target.parent
    if previous is None and target.exists():
        try:
            previous = read_manifest(target)
        except IntegrityError as e:
            if not force:
                raise UserError(f"{e}; pass --force to replace the damaged version") from None
            previous = None
    if previous is not None and _content(previous) == _content(manifest):
        # The same version: a no-op, except that a file deleted since is written again (same name, same bytes).
        bodies = {sha256_bytes(body): body for body in payloads.values()}
        for entry in previous["files"].values():
            path, body = folder / entry["file"], bodies.get(entry["sha256"])
            if body is not None and not path.is_file():
                atomic_write(path, body)
        return target
    if previous is not None and not force:
        raise UserError(
            f"{target}: version {manifest['version']} already exists with different content: "
            f"{'; '.join(differences(previous, manifest, target.name))}. Saved versions never change: use a new "
            "model version, or pass --force to replace it"
        )
    for file, body in payloads.items():
        path = folder / file
        if not (
            path.is_file()
            and path.stat().st_size == len(body)
            and sha256_bytes(path.read_bytes()) == sha256_bytes(body)
        ):
            atomic_write(path, body)
    atomic_write(target, json.dumps(manifest, indent=2) + "\n")  # the single commit point
    fsync_dir(folder)
    if previous is not None:
        # Files only the replaced manifest named, and only if their name says they belong to this version.
        own = re.compile(
            rf"{re.escape(manifest['name'])}-(?:.+-)?{re.escape(manifest['version'])}\.(?:[0-9a-f]{{{SHA_PREFIX}}}\.)?\w+"
        )
        keep = {e["file"] for e in manifest["files"].values()}
        for entry in previous["files"].values():
            if entry["file"] not in keep and own.fullmatch(entry["file"]):
                with contextlib.suppress(OSError):
                    (folder / entry["file"]).unlink()
    return target
