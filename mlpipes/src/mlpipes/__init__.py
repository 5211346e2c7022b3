"""mlpipes: the plumbing every ML pipeline needs, so a new pipeline is its model and its data.

Names are imported on first use (PEP 562), so ``import mlpipes`` and a pipeline's ``--help`` stay
fast: torch, numpy and pyarrow load only when a name that needs them is touched.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlpipes import errors
from mlpipes.errors import ConfigError, DataError, IntegrityError, UserError

__version__ = "0.1.0"

# public name -> the module that defines it (a module's own name maps to the module itself)
_LAZY = {
    "Config": "mlpipes.config",
    "param": "mlpipes.config",
    "read_yaml": "mlpipes.config",
    "run_cli": "mlpipes.cli",
    "PipelineConfig": "mlpipes.pipeline",
    "Trainer": "mlpipes.training",
    "Records": "mlpipes.records",
    "write_records": "mlpipes.records",
    "save_version": "mlpipes.weights",
    "read_manifest": "mlpipes.weights",
    "load_state_dict": "mlpipes.weights",
    "Registry": "mlpipes.registry",
    "pull": "mlpipes.registry",
    "export_onnx": "mlpipes.onnx",
    "OnnxClassifier": "mlpipes.onnx",
    "commands": "mlpipes.commands",
}

__all__ = [
    "ConfigError",
    "DataError",
    "IntegrityError",
    "UserError",
    "__version__",
    "errors",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlpipes' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"mlpipes.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
