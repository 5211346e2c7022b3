"""Versioned safetensors weights with a JSON manifest; every load verifies the full sha256.

A model version is a set of weight files (e.g. ``features`` and ``classifier``) plus one
manifest, ``<name>-<version>.json``, that records for each file its sha256 and size, and for the
version the resolved config, metrics, the dataset's sha256, the code version, the preprocessing
contract and, for transferred weights, the parent weights' name, version and sha256.
The manifest is written last: a version whose manifest exists is complete.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from mlpipes.artifacts import atomic_path, atomic_write, sha256_bytes, write_json
from mlpipes.errors import DataError, IntegrityError

FORMAT = "mlpipes.weights/1"


def weights_filename(name: str, role: str, version: str) -> str:
    return f"{name}-{role}-{version}.safetensors"


def manifest_filename(name: str, version: str) -> str:
    return f"{name}-{version}.json"


def save_version(
    directory: str | os.PathLike,
    *,
    name: str,
    version: str,
    state_dicts: dict[str, dict[str, torch.Tensor]],
    config: dict[str, Any],
    metrics: dict[str, Any],
    dataset_sha256: str | None,
    code_version: str,
    meta: dict[str, Any] | None = None,
    parent: dict[str, Any] | None = None,
) -> Path:
    """Write each state dict as safetensors, then the manifest; return the manifest's path."""
    directory = Path(directory)
    files = {}
    for role, state in state_dicts.items():
        file = weights_filename(name, role, version)
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        data = save_safetensors(tensors, metadata={"name": name, "role": role, "version": version})
        atomic_write(directory / file, data)
        files[role] = {
            "file": file,
            "sha256": sha256_bytes(data),
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
        "meta": meta or {},
        "config": config,
        "metrics": metrics,
        "dataset_sha256": dataset_sha256,
        "code_version": code_version,
        "parent": parent,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return write_json(directory / manifest_filename(name, version), manifest)


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: weights manifest not found") from None
    except json.JSONDecodeError as e:
        raise IntegrityError(f"{path}: manifest is not valid JSON ({e})") from None
    if manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path}: unknown manifest format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def load_state_dict(manifest_path: str | os.PathLike, role: str) -> dict[str, torch.Tensor]:
    """Load one weight file named by a manifest, refusing it unless its sha256 matches."""
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    entry = manifest["files"].get(role)
    if entry is None:
        raise DataError(f"{manifest_path}: no '{role}' weights (has: {', '.join(manifest['files'])})")
    return load_verified(manifest_path.parent / entry["file"], entry.get("sha256"))


def load_verified(path: str | os.PathLike, sha256: str | None) -> dict[str, torch.Tensor]:
    """Load a safetensors file whose full sha256 must equal ``sha256`` (a missing hash fails)."""
    path = Path(path)
    if not sha256:
        raise IntegrityError(f"{path}: no sha256 to verify against; refusing to load unverified weights")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: weights file not found") from None
    got = sha256_bytes(data)
    if got != sha256:
        raise IntegrityError(
            f"{path}: sha256 {got} does not match the manifest ({sha256}); the file is corrupted or was "
            "tampered with. Delete it and fetch or retrain the weights."
        )
    return load_safetensors(data)


def manifest_path(directory: str | os.PathLike, name: str, version: str) -> Path:
    """Where the manifest of ``name`` ``version`` lives in a weights folder."""
    return Path(directory) / manifest_filename(name, version)


def find_versions(directory: str | os.PathLike, name: str) -> list[Path]:
    """The manifests of ``name`` in a weights folder, oldest first (by their creation time)."""
    found = []
    for path in Path(directory).glob(f"{name}-*.json"):
        try:
            manifest = read_manifest(path)
        except (DataError, IntegrityError):
            continue
        if manifest.get("name") == name:
            found.append((str(manifest.get("created", "")), path))
    return [path for _, path in sorted(found)]


def local_copy(manifest: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """A version's manifest inside ``directory``: one from elsewhere (the package, the cache) is copied in
    whole (files first, manifest last), never over a different version of the same name."""
    import shutil

    manifest, directory = Path(manifest), Path(directory)
    if manifest.parent.resolve() == directory.resolve():
        return manifest
    content = read_manifest(manifest)
    target = directory / manifest.name
    if target.exists():
        mine = read_manifest(target)
        theirs = {r: e["sha256"] for r, e in content["files"].items()}
        if {r: e["sha256"] for r, e in mine["files"].items() if r in theirs} != theirs:
            raise IntegrityError(f"{target}: a different {content['name']} {content['version']} is already here")
        return target
    for entry in content["files"].values():
        with atomic_path(directory / entry["file"]) as tmp:
            shutil.copyfile(manifest.parent / entry["file"], tmp)
    with atomic_path(target) as tmp:
        shutil.copyfile(manifest, tmp)
    return target
