"""Where a pipeline's pretrained weights come from: the package, a weights folder or a registry.

``True`` means the weights shipped inside the package (offline), falling back to the configured
registry for a version the package does not ship; a registry URL (``s3://...``, any fsspec URL,
or a local registry folder) pulls the version into the sha256-keyed cache (no network once
cached); any other path names a manifest or the folder holding it. Every load verifies sha256.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mlpipes import registry
from mlpipes.artifacts import sha256_file
from mlpipes.errors import UserError
from mlpipes.weights import load_state_dict, manifest_filename, read_manifest
from mnist.config import MnistConfig


def bundled_manifest(config: MnistConfig, version: str | None = None) -> Path:
    """The manifest of the weights shipped with the config's package, for ``version`` (default: pinned)."""
    version = version or config.model_version
    path = config.bundled_weights / manifest_filename(config.pipeline, version)
    if not path.exists():
        raise UserError(
            f"{path}: no bundled weights for {config.pipeline} model version {version}; "
            "train them with train-model or pass pretrained=<manifest path or registry URL>"
        )
    return path


def is_registry(source: str, config: MnistConfig, version: str) -> bool:
    """A URL, or a local folder that is not a weights folder (it holds no ``<pipeline>-<version>.json``)."""
    if registry.is_url(source):
        return True
    path = Path(source).expanduser()
    return path.is_dir() and not (path / manifest_filename(config.pipeline, version)).exists()


def locate_manifest(config: MnistConfig, source: bool | str, version: str | None = None) -> tuple[Path, str]:
    """The local manifest ``source`` names for ``version`` (default: the pinned one), and where it came from."""
    version = version or config.model_version
    if source is True:
        bundled = config.bundled_weights / manifest_filename(config.pipeline, version)
        if bundled.exists():
            return bundled, "bundled"
        try:
            return registry.pull(config.registry_url, config.pipeline, version), config.registry_url
        except UserError as e:
            raise UserError(
                f"{config.pipeline} {version} is not bundled in {config.bundled_weights}, and {e}"
            ) from None
    source = str(source)
    if is_registry(source, config, version):
        return registry.pull(source, config.pipeline, version), registry.check_url(source)
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / manifest_filename(config.pipeline, version)
    return path, str(path)


def resolve_manifest(config: MnistConfig, source: bool | str, version: str | None = None) -> Path:
    """``True`` → bundled (else the configured registry); a registry URL → a cached pull; a path → that manifest."""
    return locate_manifest(config, source, version)[0]


def select_manifest(config: MnistConfig, weights: str = "") -> Path:
    """The manifest a ``--weights`` option names: 'trained' (this artifact dir), 'pretrained'
    (bundled), 'registry' (the configured one), a registry URL or a manifest path.
    Default: trained if present, else pretrained."""
    trained = config.weights_dir / manifest_filename(config.pipeline, config.model_version)
    if weights == "trained" or (not weights and trained.exists()):
        if not trained.exists():
            raise UserError(f"{trained}: no trained weights; run train-model first or use --weights pretrained")
        return trained
    if weights == "registry":
        return registry.pull(config.registry_url, config.pipeline, config.model_version)
    return resolve_manifest(config, True if weights in ("", "pretrained") else weights)


def load_pretrained(
    config: MnistConfig, source: bool | str, role: str, version: str | None = None
) -> dict[str, torch.Tensor]:
    """The verified state dict of ``role`` ("features" or "classifier") from ``source``."""
    return load_state_dict(resolve_manifest(config, source, version), role)


def pretrained_info(config: MnistConfig, source: bool | str = True, version: str | None = None) -> dict:
    """The manifest (metrics, config, lineage) of the weights ``source`` names."""
    return read_manifest(resolve_manifest(config, source, version))


def load_parent_features(config: MnistConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """MNIST's published feature weights named by ``config.pretrained_features``, and their lineage.

    ``True`` means the features bundled with the ``mnist`` package (whatever pipeline asks: the
    letter pipeline transfers them); a registry URL pulls MNIST's pinned model version from it;
    a path names another MNIST manifest. The lineage records where they came from.
    """
    parent_config = MnistConfig(registry=config.registry)
    manifest_path, source = locate_manifest(parent_config, config.pretrained_features)
    manifest = read_manifest(manifest_path)
    entry = manifest["files"]["features"]
    lineage = {
        "name": manifest["name"],
        "role": "features",
        "version": manifest["version"],
        "file": entry["file"],
        "sha256": entry["sha256"],
        "source": source,
        "manifest_sha256": sha256_file(manifest_path),
    }
    return load_state_dict(manifest_path, "features"), lineage
