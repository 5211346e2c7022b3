"""Which weights a command or ``pretrained=`` means: the ``--weights`` vocabulary, in one place.

- ``trained``: a version trained into this artifact directory (``--model-version`` picks one,
  else the newest);
- ``pretrained``: the version the package ships (offline), or for a version it does not ship,
  the configured registry;
- ``registry``: the configured registry (``--registry`` / ``$MLPIPES_REGISTRY``);
- a registry URL (``s3://bucket/models``, any fsspec URL, or a local registry folder): a verified
  pull into the sha256-keyed cache (no network once cached);
- any other path: a manifest, or the folder holding it.

The default (no ``--weights``) is ``trained`` if this artifact directory has any, else ``pretrained``.
Every load of what these return verifies the full sha256 (``mlpipes.weights``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipes import registry
from mlpipes.artifacts import sha256_file
from mlpipes.errors import UserError
from mlpipes.safety import redact_url
from mlpipes.weights import find_versions, fit_state_dict, load_state_dict, manifest_path, read_manifest

if TYPE_CHECKING:
    import torch

    from mlpipes.pipeline import PipelineConfig


@dataclass(frozen=True)
class Selected:
    """A manifest and, in words, where it came from (printed so a user knows which weights ran)."""

    manifest: Path
    origin: str

    def describe(self) -> str:
        manifest = read_manifest(self.manifest)
        return f"{manifest['name']} {manifest['version']} ({self.origin}: {self.manifest})"


def bundled(config: PipelineConfig, version: str | None = None) -> Path | None:
    """The package's manifest of ``version`` (default: the pinned one), or None if it does not ship it."""
    version = version or config.pretrained_version
    if config.bundled_weights is None:
        return None
    path = manifest_path(config.bundled_weights, config.pipeline, version)
    return path if path.exists() else None


def trained(config: PipelineConfig) -> Path | None:
    """This artifact directory's version ``config.model_version``, or its newest one; None if none."""
    if config.model_version:
        path = manifest_path(config.weights_dir, config.pipeline, config.model_version)
        return path if path.exists() else None
    versions = find_versions(config.weights_dir, config.pipeline)
    return versions[-1] if versions else None


def is_registry(source: str, config: PipelineConfig, version: str) -> bool:
    """A URL, or a local folder that is not a weights folder (it holds no manifest of ``version``)."""
    if registry.is_url(source):
        return True
    path = Path(source).expanduser()
    return path.is_dir() and not manifest_path(path, config.pipeline, version).exists()


def locate(config: PipelineConfig, source: bool | str, version: str | None = None) -> Selected:
    """The local manifest ``source`` (``True``, a registry URL or a path) names for ``version``."""
    version = version or config.pretrained_version
    if source is True:
        shipped = bundled(config, version)
        if shipped is not None:
            return Selected(shipped, "bundled")
        try:
            return Selected(registry.pull(config.registry_url, config.pipeline, version), "registry")
        except UserError as e:
            raise UserError(f"{config.pipeline} {version} is not bundled with the package, and {e}") from None
    source = str(source)
    if is_registry(source, config, version):
        return Selected(registry.pull(source, config.pipeline, version), "registry")
    path = Path(source).expanduser()
    if path.is_dir():
        path = manifest_path(path, config.pipeline, version)
    if not path.exists():
        raise UserError(f"{path}: no weights manifest here; pass a manifest, its folder or a registry URL")
    return Selected(path, "path")


def select(config: PipelineConfig, weights: str = "") -> Selected:
    """The manifest a ``--weights`` option names (see the module docstring)."""
    if weights in ("", "trained"):
        found = trained(config)
        if found is not None:
            return Selected(found, "trained")
        if weights == "trained":
            which = f"version {config.model_version}" if config.model_version else "weights"
            raise UserError(
                f"{config.weights_dir}: no trained {config.pipeline} {which}; run train-model first "
                "or use --weights pretrained"
            )
        weights = "pretrained"
    if weights == "pretrained":
        return locate(config, True, config.model_version or None)
    if weights == "registry":
        version = config.model_version or config.pretrained_version
        return Selected(registry.pull(config.registry_url, config.pipeline, version), "registry")
    return locate(config, weights, config.model_version or None)


def parent_weights(
    parent: PipelineConfig, source: bool | str, role: str = "features"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A parent pipeline's published ``role`` weights (verified) and the lineage a child's manifest keeps."""
    selected = locate(parent, source)
    manifest = read_manifest(selected.manifest)
    if role not in manifest["files"]:
        raise UserError(f"{selected.manifest}: no '{role}' weights to transfer (has: {', '.join(manifest['files'])})")
    entry = manifest["files"][role]
    lineage = {
        "name": manifest["name"],
        "role": role,
        "version": manifest["version"],
        "file": entry["file"],
        "sha256": entry["sha256"],
        "source": selected.origin if source is True else redact_url(str(source)),
        "manifest_sha256": sha256_file(selected.manifest),
    }
    return load_state_dict(selected.manifest, role), lineage


def fit_parent_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], lineage: dict[str, Any]) -> None:
    """Load what :func:`parent_weights` returned into ``module``; a misfit names the parent's version and file."""
    fit_state_dict(module, state, f"{lineage['name']} {lineage['version']} {lineage['role']} ({lineage['file']})")
