"""A model registry on plain object storage: versions appear whole or not at all, and never change.

Layout under any fsspec URL (a folder, ``s3://bucket/prefix``, ``gs://...``)::

    <registry>/<pipeline>/index.json                           every published version, for listing
    <registry>/<pipeline>/<version>/<pipeline>-<version>.json  the manifest: sha256 and size of each file
    <registry>/<pipeline>/<version>/<each file it names>       weights, ONNX model, ...

A version exists iff its manifest exists. :meth:`Registry.publish` uploads every file, then the
manifest, so an interrupted deploy leaves only files that no reader looks at; the index is
rebuilt from the manifests afterwards. :func:`pull` downloads into a local cache keyed by sha256
and verifies every file (a missing hash is an error); a version already cached is used with no
network access. There is no protocol of ours: any S3 client reads the objects. Credentials come
only from the storage library's standard sources (for S3: the AWS environment variables, profiles
or instance roles); a URL carrying credentials is refused, so none reach a manifest or a log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mlpipes.artifacts import atomic_write, sha256_bytes, sha256_file
from mlpipes.errors import ConfigError, DataError, IntegrityError, UserError
from mlpipes.records import CACHE_ENV
from mlpipes.weights import FORMAT, manifest_filename

INDEX = "index.json"
INDEX_FORMAT = "mlpipes.registry/1"
# Stores where one PUT replaces an object atomically; elsewhere files go to a temporary name first.
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Published:
    """What :meth:`Registry.publish` did: ``published``, ``unchanged``, ``repaired`` or ``replaced``."""

    status: str
    url: str
    files: tuple[str, ...]
    bytes: int
    seconds: float

    def __str__(self) -> str:
        if self.status == "unchanged":
            return f"{self.url}: already published with identical content; nothing to do"
        size = f"{len(self.files)} files, {self.bytes / 1e6:.2f} MB"
        return f"{self.status} {self.url} ({size}: {', '.join(self.files)}) in {self.seconds:.2f}s"


def check_url(url: str) -> str:
    """``url`` stripped of a trailing slash; refused if empty or if it embeds credentials."""
    url = str(url).strip()
    if not url:
        raise ConfigError("registry URL is empty; set --registry or $MLPIPES_REGISTRY")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*@", url):
        raise ConfigError(
            "registry URL must not contain credentials (user:secret@); use the storage's standard sources "
            "instead, for S3 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    return url.rstrip("/") or url


def is_url(source: str) -> bool:
    return "://" in source


class Registry:
    """A registry root opened through fsspec (credentials from the environment, never from us)."""

    def __init__(self, url: str, **storage_options: Any):
        self.url = check_url(url)
        target = self.url if is_url(self.url) else str(Path(self.url).expanduser().absolute())
        # A fresh filesystem object: fsspec's instance cache would keep a stale endpoint or listing.
        self.fs, self.root = fsspec.core.url_to_fs(target, skip_instance_cache=True, **storage_options)
        self.root = self.root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.atomic_put = bool(_ATOMIC_PUT.intersection(protocols))

    # ---- where things are ---------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def where(self, *parts: str) -> str:
        """A location as the user wrote the registry URL (for messages)."""
        return "/".join([self.url, *parts])

    # ---- publishing ---------------------------------------------------------------------------
    def publish(self, manifest_path: str | os.PathLike, force: bool = False) -> Published:
        """Upload a local version (every file its manifest lists, then the manifest) unless already there.

        The same content again is a no-op. Different content for a published version is refused,
        naming the differing file, unless ``force``: then the old manifest is deleted first, so
        readers see the old version, no version, or the new one, never a mix.
        """
        started = time.perf_counter()
        manifest_path = Path(manifest_path)
        data, manifest = _read_local_manifest(manifest_path)
        name, version = _segment(manifest["name"], "name"), _segment(manifest["version"], "version")
        payloads = _local_payloads(manifest_path, manifest)
        mfile = manifest_filename(name, version)
        remote_manifest = self.path(name, version, mfile)
        status = "published"
        published = self._cat(remote_manifest)
        if published is not None:
            if published == data:
                damaged = [f for f, body in payloads.items() if self._size(self.path(name, version, f)) != len(body)]
                if not damaged:
                    self._update_index(name, version, sha256_bytes(data))
                    return Published("unchanged", self.where(name, version), (), 0, time.perf_counter() - started)
                payloads, status = {f: payloads[f] for f in damaged}, "repaired"
            else:
                differences = _differences(
                    _parse_manifest(published, self.where(name, version, mfile)), manifest, mfile
                )
                if not force:
                    raise UserError(
                        f"{self.where(name, version)}: version {version} is already published with different "
                        f"content: {'; '.join(differences)}. Published versions are immutable: bump model_version "
                        "and retrain, or pass --force to replace it"
                    )
                self.fs.rm_file(remote_manifest)  # the old version disappears before any of its files change
                status = "replaced"
        elif self.local:
            Path(self.path(name, version)).mkdir(parents=True, exist_ok=True)
        for file, body in payloads.items():
            self._put(self.path(name, version, file), body)
        if status != "repaired":
            self._put(remote_manifest, data)  # last: from here on the version exists
        self._update_index(name, version, sha256_bytes(data))
        size = sum(len(b) for b in payloads.values()) + (len(data) if status != "repaired" else 0)
        shown = (*payloads, mfile) if status != "repaired" else tuple(payloads)
        return Published(status, self.where(name, version), shown, size, time.perf_counter() - started)

    # ---- reading ------------------------------------------------------------------------------
    def manifest(self, pipeline: str, version: str) -> tuple[bytes, dict[str, Any]]:
        """The published manifest's bytes and content; a clear error when the version does not exist."""
        mfile = manifest_filename(_segment(pipeline, "pipeline"), _segment(version, "version"))
        data = self._cat(self.path(pipeline, version, mfile))
        if data is None:
            known = [v["version"] for v in self.versions(pipeline)]
            raise DataError(
                f"{self.url}: no {pipeline} version {version} (published: {', '.join(known) or 'none'}); "
                f"deploy it first or pick a published version"
            )
        manifest = _parse_manifest(data, self.where(pipeline, version, mfile))
        if manifest.get("name") != pipeline or manifest.get("version") != version:
            raise IntegrityError(
                f"{self.where(pipeline, version, mfile)}: manifest names {manifest.get('name')} "
                f"{manifest.get('version')}, not {pipeline} {version}; the registry is damaged"
            )
        return data, manifest

    def fetch(self, pipeline: str, version: str) -> Path:
        """Download a version into the cache, verifying every file; return the cached manifest's path."""
        data, manifest = self.manifest(pipeline, version)
        folder = version_cache_dir(self.url, pipeline, version)
        folder.mkdir(parents=True, exist_ok=True)
        where = self.where(pipeline, version)
        entries = [_checked_entry(entry, role, where) for role, entry in manifest["files"].items()]  # all, first
        for file, sha256, size in entries:
            blob = blob_path(sha256)
            if not (blob.exists() and sha256_file(blob) == sha256):
                body = self._cat(self.path(pipeline, version, file))
                where = self.where(pipeline, version, file)
                if body is None:
                    raise IntegrityError(f"{where}: listed in the manifest but missing; the version is damaged")
                got = sha256_bytes(body)
                if got != sha256 or (size is not None and len(body) != size):
                    raise IntegrityError(
                        f"{where}: sha256 {got} ({len(body)} bytes) does not match the manifest ({sha256}); "
                        "the object is corrupted or was tampered with. Nothing of this version was cached"
                    )
                atomic_write(blob, body)
            _link(blob, folder / file)
        # Written last, like in the registry: a cached version whose manifest exists is complete.
        return atomic_write(folder / manifest_filename(pipeline, version), data)

    def versions(self, pipeline: str) -> list[dict[str, Any]]:
        """Published versions, oldest first: from the index, or by listing manifests if there is none."""
        listed = self._read_index(pipeline)
        return self._scan(pipeline) if listed is None else listed

    # ---- internals ----------------------------------------------------------------------------
    def _read_index(self, pipeline: str) -> list[dict[str, Any]] | None:
        data = self._cat(self.path(pipeline, INDEX))
        if data is None:
            return None
        try:
            return json.loads(data)["versions"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise IntegrityError(f"{self.where(pipeline, INDEX)}: not a registry index ({e})") from None

    def _update_index(self, pipeline: str, version: str, manifest_sha256: str) -> None:
        """Rebuild the index from the manifests (the truth) unless it already lists this exact version.

        Two deploys racing may each write an index missing the other's version; the next deploy
        of any version lists both again (a version exists by its manifest, not by the index).
        """
        try:
            listed = {v.get("version"): v.get("manifest_sha256") for v in self._read_index(pipeline) or []}
        except IntegrityError:
            listed = {}
        if listed.get(version) == manifest_sha256:
            return
        index = {"format": INDEX_FORMAT, "pipeline": pipeline, "versions": self._scan(pipeline)}
        self._put(self.path(pipeline, INDEX), json.dumps(index, indent=2) + "\n")

    def _scan(self, pipeline: str) -> list[dict[str, Any]]:
        self.fs.invalidate_cache(self.path(pipeline))
        try:
            entries = self.fs.ls(self.path(pipeline), detail=True)
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            if entry["type"] != "directory":
                continue
            version = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            mfile = manifest_filename(pipeline, version)
            data = self._cat(self.path(pipeline, version, mfile))
            if data is None:
                continue  # files of an interrupted deploy: not a version
            manifest = _parse_manifest(data, self.where(pipeline, version, mfile))
            found.append(
                {
                    "version": version,
                    "manifest": f"{version}/{mfile}",
                    "manifest_sha256": sha256_bytes(data),
                    "created": manifest.get("created"),
                    "code_version": manifest.get("code_version"),
                    "metrics": manifest.get("metrics", {}),
                    "files": {
                        role: {k: e.get(k) for k in ("file", "sha256", "bytes")}
                        for role, e in manifest.get("files", {}).items()
                    },
                    "parent": manifest.get("parent"),
                }
            )
        return sorted(found, key=lambda v: version_key(v["version"]))

    def _cat(self, path: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        except PermissionError as e:
            raise UserError(f"{self.url}: access denied reading {path} ({e}); check the storage credentials") from None

    def _size(self, path: str) -> int | None:
        try:
            return int(self.fs.info(path)["size"])
        except FileNotFoundError:
            return None

    def _put(self, path: str, data: bytes | str) -> None:
        """Write one file so that no reader ever sees part of it under its final name."""
        body = data.encode() if isinstance(data, str) else data
        try:
            if self.local:
                atomic_write(path, body)
            elif self.atomic_put:
                self.fs.pipe_file(path, body)
            else:
                partial = f"{path}.partial-{uuid.uuid4().hex}"
                self.fs.pipe_file(partial, body)
                self.fs.mv(partial, path)
        except PermissionError as e:
            raise UserError(f"{self.url}: access denied writing {path} ({e}); check the storage credentials") from None
        except FileNotFoundError as e:
            raise UserError(f"{self.url}: cannot write {path} ({e}); does the bucket exist?") from None


# ---- the local cache -------------------------------------------------------------------------
def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/mlpipes").expanduser() / "registry"


def blob_path(sha256: str) -> Path:
    """Where a file with this sha256 is cached (content-addressed: versions share identical files)."""
    return cache_root() / "blobs" / sha256


def version_cache_dir(url: str, pipeline: str, version: str) -> Path:
    """The cached copy of one version: its manifest beside its files (links to the blobs)."""
    url, pipeline, version = check_url(url), _segment(pipeline, "pipeline"), _segment(version, "version")
    key = url if is_url(url) else str(Path(url).expanduser().absolute())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")[-48:]
    return cache_root() / "versions" / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}" / pipeline / version


def cached_manifest(url: str, pipeline: str, version: str) -> Path | None:
    """The cached manifest of a version if it and all its files are present; no network access."""
    path = version_cache_dir(url, pipeline, version) / manifest_filename(pipeline, version)
    try:
        manifest = _parse_manifest(path.read_bytes(), str(path))
    except (OSError, IntegrityError):
        return None
    files = manifest.get("files", {})
    return path if all((path.parent / str(e.get("file"))).is_file() for e in files.values()) else None


def pull(url: str, pipeline: str, version: str, refresh: bool = False) -> Path:
    """A verified local copy of a published version: the cache if it has it, else a download.

    ``refresh`` always reads the registry's manifest (files already cached by sha256 are reused).
    """
    if not refresh:
        cached = cached_manifest(url, pipeline, version)
        if cached is not None:
            return cached
    return Registry(url).fetch(pipeline, version)


def version_key(version: str) -> tuple:
    """Sort "1.10.0" after "1.9.0": numbers compare as numbers, the rest as text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+-]", version))


# ---- manifests -------------------------------------------------------------------------------
def _segment(value: Any, what: str) -> str:
    """A pipeline name or version, which becomes one path segment: no slashes, no leading dot."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", value):
        raise UserError(f"{what} {value!r} is not usable in a registry path (letters, digits, '._+-' only)")
    return value


def _local_payloads(manifest_path: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every file the manifest lists, read and checked against its sha256 before anything is uploaded."""
    payloads = {}
    for role, entry in manifest["files"].items():
        file, sha256, _ = _checked_entry(entry, role, str(manifest_path))
        local = manifest_path.parent / file
        if not local.exists():
            raise DataError(f"{local}: file '{role}' of {manifest_path.name} is missing; nothing was deployed")
        payloads[file] = local.read_bytes()
        got = sha256_bytes(payloads[file])
        if got != sha256:
            raise IntegrityError(
                f"{local}: sha256 {got} differs from its manifest ({sha256}); refusing to deploy a corrupted file"
            )
    return payloads


def _read_local_manifest(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: weights manifest not found") from None
    return data, _parse_manifest(data, str(path))


def _parse_manifest(data: bytes, source: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IntegrityError(f"{source}: manifest is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IntegrityError(f"{source}: unknown manifest format {found!r}, expected {FORMAT!r}")
    for key in ("name", "version", "files"):
        if key not in manifest:
            raise IntegrityError(f"{source}: manifest has no '{key}'")
    if not isinstance(manifest["files"], dict):
        raise IntegrityError(f"{source}: manifest 'files' is not a mapping of role to file")
    return manifest


def _checked_entry(entry: Any, role: str, source: str) -> tuple[str, str, int | None]:
    """(file, sha256, bytes) of a manifest entry; refuses unsafe names and missing hashes (fail closed)."""
    if not isinstance(entry, dict):
        raise IntegrityError(f"{source}: file entry '{role}' is not a mapping")
    file, sha256, size = entry.get("file"), entry.get("sha256"), entry.get("bytes")
    if not isinstance(file, str) or not file or "/" in file or "\\" in file or file in (".", "..") or file[0] == ".":
        raise IntegrityError(f"{source}: file entry '{role}' has an unsafe file name {file!r}")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise IntegrityError(f"{source}: file '{file}' ({role}) has no valid sha256; refusing unverifiable files")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise IntegrityError(f"{source}: file '{file}' ({role}) has an invalid size {size!r}")
    return file, sha256, size


def _differences(published: dict[str, Any], local: dict[str, Any], manifest_file: str) -> list[str]:
    """What differs between two manifests of one version, file by file."""
    out = []
    remote_files, local_files = published.get("files", {}), local.get("files", {})
    for role in sorted(set(remote_files) | set(local_files)):
        before, after = remote_files.get(role), local_files.get(role)
        if before is None:
            out.append(f"{after.get('file')} is new ({role}; not in the published version)")
        elif after is None:
            out.append(f"{before.get('file')} ({role}) is published but not in the local manifest")
        elif before.get("sha256") != after.get("sha256") or before.get("file") != after.get("file"):
            out.append(
                f"{after.get('file')} differs ({role}: sha256 {str(after.get('sha256'))[:12]}… here, "
                f"{str(before.get('sha256'))[:12]}… published)"
            )
    if not out:
        keys = sorted(k for k in set(published) | set(local) if k != "files" and published.get(k) != local.get(k))
        out.append(f"{manifest_file} differs (fields: {', '.join(keys) or 'formatting only'})")
    return out


def _link(blob: Path, target: Path) -> None:
    """Make ``target`` the blob's content: a hard link where possible, else a copy; atomic either way."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        try:
            os.link(blob, temporary)
        except OSError:
            shutil.copyfile(blob, temporary)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
