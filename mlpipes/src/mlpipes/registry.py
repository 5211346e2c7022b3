"""A model registry on plain object storage: versions appear whole or not at all, and never change.

Layout under any fsspec URL (a folder, ``s3://bucket/prefix``, ``gs://...``)::

    <registry>/<pipeline>/index.json                           every published version, for listing
    <registry>/<pipeline>/<version>/<pipeline>-<version>.json  the manifest: sha256 and size of each file
    <registry>/<pipeline>/<version>/<each file it names>       weights, ONNX model, ...

A version exists iff its manifest exists. Objects are immutable and, for versions written by
:mod:`mlpipes.weights`, content-addressed (a file's name embeds its sha256 prefix, so two
versions' files never share a name). :meth:`Registry.publish` uploads every file with a
create-only write (never over an object with other content), then the manifest with a
create-only write too: the manifest is the single commit point. Create-only is an S3
``If-None-Match: *`` PUT (s3fs ``mode="create"``), ``os.link`` of a finished temporary file on
a local folder, and check-before-write elsewhere; every manifest write is read back. Of two
concurrent deploys of one version, the second finds the first's manifest and falls into the
same rules as a later deploy (identical: unchanged; different: refused), so two deploys never
both report success with different content. The index is a cache for listing: a version
missing from it (two deploys racing on ``index.json``) is still listed from its manifest.
:func:`pull` downloads into a local cache keyed by sha256
and verifies every file (a missing hash is an error); a version already cached is used with no
network access. There is no protocol of ours: any S3 client reads the objects. Credentials come
only from the storage library's standard sources (for S3: the AWS environment variables, profiles
or instance roles); a URL carrying credentials is refused, so none reach a manifest or a log.
"""

from __future__ import annotations

import contextlib
import errno
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
from mlpipes.safety import has_credentials, redact_config, redact_text, safe_name
from mlpipes.weights import check_entry, differences, manifest_filename, parse_manifest, version_key

INDEX = "index.json"
INDEX_FORMAT = "mlpipes.registry/1"
# Stores where one PUT replaces an object atomically; elsewhere files go to a temporary name first.
S3_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}


class RegistryError(UserError):
    """The storage behind a registry is unreachable, refuses access, or changed under a deploy."""


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
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*@", url) or has_credentials(url):
        raise ConfigError(
            "registry URL must not contain credentials (user:secret@ or secret query parameters); use the "
            "storage's standard sources instead, for S3 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    return url.rstrip("/") or url


def is_url(source: str) -> bool:
    return "://" in source


class Registry:
    """A registry root opened through fsspec (credentials from the environment, never from us)."""

    def __init__(self, url: str, **storage_options: Any):
        self.url = check_url(url)
        target = self.url if is_url(self.url) else str(Path(self.url).expanduser().absolute())
        if re.match(r"^s3a?://", self.url) and "config_kwargs" not in storage_options:
            storage_options["config_kwargs"] = S3_TIMEOUTS  # an unreachable endpoint fails in seconds, not minutes
        # A fresh filesystem object: fsspec's instance cache would keep a stale endpoint or listing.
        try:
            self.fs, self.root = fsspec.core.url_to_fs(target, skip_instance_cache=True, **storage_options)
        except (ValueError, ImportError) as e:
            raise ConfigError(
                f"{self.url}: cannot open this registry ({_short(e)}); use a folder or s3://bucket/prefix"
            ) from None
        self.root = self.root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.atomic_put = bool(_ATOMIC_PUT.intersection(protocols))
        self.s3 = bool({"s3", "s3a"}.intersection(protocols))

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
        readers see the old version, no version, or the new one, never a mix. A deploy that
        loses a race to another deploy of the same version behaves as if it came second.
        """
        started = time.perf_counter()
        manifest_path = Path(manifest_path)
        data, manifest = _read_local_manifest(manifest_path)
        name, version = _segment(manifest["name"], "name"), _segment(manifest["version"], "version")
        if redact_config(manifest) != manifest:
            raise UserError(
                f"{manifest_path}: the manifest contains a URL with credentials; refusing to publish a secret. "
                "Save the version again (save_version strips them) or remove them from the manifest"
            )
        payloads = _local_payloads(manifest_path, manifest)
        mfile = manifest_filename(name, version)
        remote_manifest = self.path(name, version, mfile)
        status = "published"
        published = self._cat(remote_manifest)
        if published is not None:
            outcome = self._compare(published, data, manifest, name, version, force)
            if outcome == "unchanged":
                damaged = {f: b for f, b in payloads.items() if self._size(self.path(name, version, f)) != len(b)}
                if not damaged:
                    self._refresh_index(name, version, sha256_bytes(data))
                    return Published("unchanged", self.where(name, version), (), 0, time.perf_counter() - started)
                for file, body in damaged.items():
                    self._put_object(self.path(name, version, file), body, replace=True)
                self._refresh_index(name, version, sha256_bytes(data))
                size = sum(len(b) for b in damaged.values())
                return Published(
                    "repaired", self.where(name, version), tuple(damaged), size, time.perf_counter() - started
                )
            self._storage(
                lambda: self.fs.rm_file(remote_manifest), "deleting", remote_manifest
            )  # old version gone first
            status = "replaced"
        elif self.local:
            Path(self.path(name, version)).mkdir(parents=True, exist_ok=True)
        for file, body in payloads.items():
            self._put_object(self.path(name, version, file), body, replace=force)
        if not self._create(remote_manifest, data):  # the single commit point
            winner = self._cat(remote_manifest)
            if winner is None or self._compare(winner, data, manifest, name, version, force=False) != "unchanged":
                raise RegistryError(f"{self.where(name, version)}: another deploy published this version meanwhile")
            status = "unchanged"
        self._refresh_index(name, version, sha256_bytes(data))
        size = sum(len(b) for b in payloads.values()) + len(data)
        return Published(status, self.where(name, version), (*payloads, mfile), size, time.perf_counter() - started)

    def _compare(
        self, published: bytes, data: bytes, manifest: dict[str, Any], name: str, version: str, force: bool
    ) -> str:
        """``unchanged`` if the published manifest is ours; ``replace`` if forced; else a one-line refusal."""
        if published == data:
            return "unchanged"
        mfile = manifest_filename(name, version)
        try:
            found = differences(parse_manifest(published, self.where(name, version, mfile)), manifest, mfile)
        except IntegrityError as e:
            found = [f"the published manifest is damaged ({e})"]
        if not force:
            raise UserError(
                f"{self.where(name, version)}: version {version} is already published with different "
                f"content: {'; '.join(found)}. Published versions are immutable: bump model_version "
                "and retrain, or pass --force to replace it"
            )
        return "replace"

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
        manifest = parse_manifest(data, self.where(pipeline, version, mfile))
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
        entries = [check_entry(entry, role, where) for role, entry in manifest["files"].items()]  # all, first
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
        """Published versions, oldest first: the index's entries plus any version it misses.

        The index is only a cache: one listing of the pipeline's folder finds versions a racing
        deploy left out of it (read from their manifests) and drops entries whose folder is gone.
        """
        pipeline = _segment(pipeline, "pipeline")
        try:
            listed = {v["version"]: v for v in self._read_index(pipeline) or [] if _index_entry(v)}
        except IntegrityError:
            listed = {}
        folders = self._version_folders(pipeline)
        found = [listed[v] if v in listed else self._describe(pipeline, v) for v in folders]
        return sorted((v for v in found if v is not None), key=lambda v: version_key(v["version"]))

    # ---- internals ----------------------------------------------------------------------------
    def _read_index(self, pipeline: str) -> list[dict[str, Any]] | None:
        data = self._cat(self.path(pipeline, INDEX))
        if data is None:
            return None
        try:
            versions = json.loads(data)["versions"]
            if not isinstance(versions, list):
                raise TypeError("'versions' is not a list")
            return versions
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise IntegrityError(f"{self.where(pipeline, INDEX)}: not a registry index ({e})") from None

    def _refresh_index(self, pipeline: str, version: str, manifest_sha256: str) -> None:
        """:meth:`_update_index` after a commit: the index is a cache, so failing to write it fails nothing."""
        with contextlib.suppress(UserError):
            self._update_index(pipeline, version, manifest_sha256)

    def _update_index(self, pipeline: str, version: str, manifest_sha256: str) -> None:
        """Rebuild the index from the manifests (the truth) unless it already lists this exact version.

        Two deploys racing may each write an index missing the other's version; :meth:`versions`
        lists such a version anyway, and the next deploy writes it back into the index.
        """
        try:
            listed = {v.get("version"): v.get("manifest_sha256") for v in self._read_index(pipeline) or []}
        except (IntegrityError, AttributeError):
            listed = {}
        if listed.get(version) == manifest_sha256:
            return
        index = {"format": INDEX_FORMAT, "pipeline": pipeline, "versions": self._scan(pipeline)}
        self._put(self.path(pipeline, INDEX), json.dumps(index, indent=2) + "\n")

    def _version_folders(self, pipeline: str) -> list[str]:
        self.fs.invalidate_cache(self.path(pipeline))
        try:
            entries = self._storage(
                lambda: self.fs.ls(self.path(pipeline), detail=True), "listing", self.path(pipeline)
            )
        except FileNotFoundError:
            return []
        names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"]
        return [n for n in names if _is_safe(n)]

    def _describe(self, pipeline: str, version: str) -> dict[str, Any] | None:
        """The index entry of one version, from its manifest; None for a folder without one."""
        mfile = manifest_filename(pipeline, version)
        data = self._cat(self.path(pipeline, version, mfile))
        if data is None:
            return None  # files of an interrupted deploy: not a version
        try:
            manifest = parse_manifest(data, self.where(pipeline, version, mfile))
        except IntegrityError as e:  # one damaged version must not hide the others: listed, marked, never loaded
            return {"version": version, "manifest": f"{version}/{mfile}", "files": {}, "metrics": {}, "damaged": str(e)}
        return {
            "version": version,
            "manifest": f"{version}/{mfile}",
            "manifest_sha256": sha256_bytes(data),
            "created": manifest.get("created"),
            "code_version": manifest.get("code_version"),
            "metrics": manifest.get("metrics", {}),
            "files": {
                role: {k: e.get(k) for k in ("file", "sha256", "bytes")} for role, e in manifest["files"].items()
            },
            "parent": manifest.get("parent"),
        }

    def _scan(self, pipeline: str) -> list[dict[str, Any]]:
        found = [self._describe(pipeline, v) for v in self._version_folders(pipeline)]
        return sorted((v for v in found if v is not None), key=lambda v: version_key(v["version"]))

    def _storage(self, action: Any, doing: str, path: str) -> Any:
        """Run one storage call; failures other than a missing object become one-line :class:`RegistryError`s."""
        try:
            return action()
        except (FileNotFoundError, FileExistsError, UserError):
            raise
        except OSError as e:
            if e.errno == errno.EINVAL and "precondition" in str(e).lower().replace("-", ""):  # S3 412: it exists
                raise FileExistsError(path) from None
            raise self._failure(e, doing, path) from None
        except Exception as e:  # network stacks raise many types (botocore, aiohttp, asyncio timeouts)
            raise self._failure(e, doing, path) from None

    def _failure(self, e: Exception, doing: str, path: str) -> RegistryError:
        if isinstance(e, PermissionError):
            return RegistryError(
                f"{self.url}: access denied {doing} {self._shown(path)} ({_short(e)}); check the storage credentials"
            )
        return RegistryError(
            f"{self.url}: storage error {doing} {self._shown(path)} ({type(e).__name__}: {_short(e)}); "
            "is the registry reachable (endpoint, network, bucket)?"
        )

    def _shown(self, path: str) -> str:
        return self.where(path[len(self.root) :].lstrip("/")) if path.startswith(self.root) else path

    def _cat(self, path: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        try:
            return self._storage(lambda: self.fs.cat_file(path), "reading", path)
        except FileNotFoundError:
            return None

    def _size(self, path: str) -> int | None:
        try:
            return int(self._storage(lambda: self.fs.info(path), "reading", path)["size"])
        except FileNotFoundError:
            return None

    def _create(self, path: str, data: bytes) -> bool:
        """Write ``path`` only if no object is there (False if one is); read back to catch stores that ignore it."""
        try:
            if self.local:
                self._write(lambda: _link_new(path, data), path)
            elif self.s3:
                self._write(lambda: self.fs.pipe_file(path, data, mode="create"), path)
            else:
                if self._size(path) is not None:
                    return False
                self._put(path, data)
        except FileExistsError:
            return False
        self.fs.invalidate_cache(path)
        return self._cat(path) == data

    def _put_object(self, path: str, body: bytes, replace: bool) -> None:
        """Upload one file as an immutable object: never over an object with other content unless ``replace``."""
        if replace:
            self._put(path, body)
            return
        if self._create(path, body):
            return
        existing = self._cat(path)
        if existing is not None and existing != body:
            raise RegistryError(
                f"{self._shown(path)}: an object with different content is already there (another deploy of this "
                "version, running or interrupted); retry, or pass --force to replace the version"
            )

    def _put(self, path: str, data: bytes | str) -> None:
        """Write one file so that no reader ever sees part of it under its final name."""
        body = data.encode() if isinstance(data, str) else data
        if self.local:
            self._write(lambda: atomic_write(path, body), path)
        elif self.atomic_put:
            self._write(lambda: self.fs.pipe_file(path, body), path)
        else:
            partial = f"{path}.partial-{uuid.uuid4().hex}"
            self._write(lambda: self.fs.pipe_file(partial, body), path)
            self._write(lambda: self.fs.mv(partial, path), path)

    def _write(self, action: Any, path: str) -> Any:
        try:
            return self._storage(action, "writing", path)
        except FileNotFoundError as e:
            raise RegistryError(
                f"{self.url}: cannot write {self._shown(path)} ({_short(e)}); does the bucket exist?"
            ) from None


def _short(error: BaseException) -> str:
    """An exception's message on one line, credentials redacted, at most 200 characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return redact_text(text)[:200]


def _link_new(path: str, data: bytes) -> None:
    """Create a local file only if it does not exist, whole: write a temporary file, then ``os.link`` it."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(temporary, target)  # fails with FileExistsError if another writer got there first
    finally:
        temporary.unlink(missing_ok=True)


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
        manifest = parse_manifest(path.read_bytes(), str(path))
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


# ---- manifests -------------------------------------------------------------------------------
def _segment(value: Any, what: str) -> str:
    """A pipeline name or version, which becomes one path segment (:func:`mlpipes.safety.safe_name`)."""
    return safe_name(value, what)


def _index_entry(entry: Any) -> bool:
    """An index entry with the fields listing relies on (anything else is re-read from its manifest)."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("version"), str)
        and isinstance(entry.get("files"), dict)
        and isinstance(entry.get("metrics", {}), dict)
    )


def _is_safe(name: str) -> bool:
    try:
        safe_name(name, "version")
    except UserError:
        return False
    return True


def _local_payloads(manifest_path: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every file the manifest lists, read and checked against its sha256 before anything is uploaded."""
    payloads = {}
    for role, entry in manifest["files"].items():
        file, sha256, _ = check_entry(entry, role, str(manifest_path))
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
    return data, parse_manifest(data, str(path))


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
