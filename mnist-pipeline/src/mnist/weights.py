"""Where a pipeline's pretrained weights come from: the files shipped in the package."""

from __future__ import annotations

from pathlib import Path

import torch

from mlpipes.errors import UserError
from mlpipes.weights import load_state_dict, manifest_filename, read_manifest
from mnist.config import MnistConfig


def bundled_manifest(config: MnistConfig) -> Path:
    """The manifest of the weights shipped with the config's package, for its model version."""
    path = config.bundled_weights / manifest_filename(config.pipeline, config.model_version)
    if not path.exists():
        raise UserError(
            f"{path}: no bundled weights for {config.pipeline} model version {config.model_version}; "
            "train them with train-model or pass pretrained=<manifest path>"
        )
    return path


def resolve_manifest(config: MnistConfig, source: bool | str) -> Path:
    """``True`` → the bundled manifest; a path → that manifest (or the folder holding it)."""
    if source is True:
        return bundled_manifest(config)
    path = Path(str(source)).expanduser()
    if path.is_dir():
        path = path / manifest_filename(config.pipeline, config.model_version)
    return path


def load_pretrained(config: MnistConfig, source: bool | str, role: str) -> dict[str, torch.Tensor]:
    """The verified state dict of ``role`` ("features" or "classifier") from ``source``."""
    return load_state_dict(resolve_manifest(config, source), role)


def pretrained_info(config: MnistConfig, source: bool | str = True) -> dict:
    """The manifest (metrics, config, lineage) of the weights ``source`` names."""
    return read_manifest(resolve_manifest(config, source))


def load_parent_features(config: MnistConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """MNIST's published feature weights named by ``config.pretrained_features``, and their lineage.

    ``True`` means the features bundled with the ``mnist`` package (whatever pipeline asks: the
    letter pipeline transfers them); a path names another MNIST manifest.
    """
    parent_config = MnistConfig()
    manifest_path = resolve_manifest(parent_config, config.pretrained_features)
    manifest = read_manifest(manifest_path)
    entry = manifest["files"]["features"]
    lineage = {
        "name": manifest["name"],
        "role": "features",
        "version": manifest["version"],
        "file": entry["file"],
        "sha256": entry["sha256"],
    }
    return load_state_dict(manifest_path, "features"), lineage
