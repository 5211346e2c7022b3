"""``mlpipes new PATH [--parent PACKAGE]``: a new pipeline package that installs and passes its own tests.

The package is named after PATH's last part (``pipelines/fashion`` → distribution
``fashion-pipeline``, import ``fashion``, command ``fashion``) and has the seed's modules, so a
newcomer finds the model in ``model.py``, the recipe in ``train.py`` and the data in ``dataset.py``.
Until real data replaces it, ``dataset.py`` draws a small seeded synthetic dataset, so the
generated tests run offline in seconds.

With ``--parent``, the package is a child: its config subclasses the parent's (found among the
parent's public ``*Config`` names), it reuses the parent's model, record format and
preprocessing, and it starts from the parent's published feature weights, which its trained
manifests name as their ``parent``.

The templates are package data (``mlpipes/templates``, ``*.tmpl``): ``common`` files for every
package, then ``standalone`` or ``child`` ones; ``{{name}}`` marks a value filled in here, and a
``PACKAGE`` folder becomes the import name.
"""

from __future__ import annotations

import dataclasses
import importlib
import keyword
import re
import sys
from importlib import resources
from importlib.metadata import packages_distributions
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any

from mlpipes.errors import ConfigError, UserError

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
RECORD_KINDS = {"image_size": "images", "columns": "columns"}  # a parent config field → its record format
CHILD_LABELS = {"images": ("bar", "pillar", "frame"), "columns": ("amber", "cobalt", "jade")}  # synthetic classes
CHILD_ACCURACY = {"images": 0.8, "columns": 0.5}  # what one epoch on the synthetic data reaches at least (chance: 1/3)


@dataclasses.dataclass(frozen=True)
class Parent:
    """What a child needs to know of its parent pipeline."""

    package: str  # import name: "mnist"
    config: type  # MnistConfig
    distribution: str  # "mnist-pipeline"
    factory: str  # "mnist.model:mnist_classifier"
    kind: str  # record format: "images" or "columns"


def new(
    path: Annotated[str, "folder of the new package (must not exist, or be empty); its last part names it"],
    parent: Annotated[str, "an installed pipeline to transfer from: its import name, or module:ConfigClass"] = "",
) -> None:
    """Create a pipeline package in PATH (its last part names it); with --parent, a child of that pipeline.

    PATH must not exist or be empty. --parent is an installed pipeline's import name (``mnist``), or
    ``module:ConfigClass`` when its package exports more than one config.
    """
    target = Path(path).expanduser()
    names = package_names(target.resolve().name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target}: already exists and is not empty; pick a new folder")
    found = find_parent(parent) if parent else None
    values = {**names, **(parent_values(found) if found else {})}
    files = render(values, "child" if found else "standalone", found.kind if found else "")
    for relative, text in files.items():
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    kind = f"child of {found.package} ({found.config.__name__})" if found else "standalone pipeline"
    print(f"{target}: {names['distribution']} ({kind}), {len(files)} files")
    print(f"next: pip install -e {target} && pytest {target / 'tests'} && {names['command']} --help")


def package_names(folder: str) -> dict[str, str]:
    """A folder's names for its pipeline: import ``my_data``, command ``my-data``, ``my-data-pipeline``, ``MyData``."""
    package = folder.replace("-", "_")
    if not package.isascii() or not package.isidentifier() or keyword.iskeyword(package):
        raise ConfigError(
            f"'{folder}': a pipeline's folder name must be a Python identifier once '-' becomes '_' "
            "(letters, digits, '_' or '-', not starting with a digit); rename the folder"
        )
    spec = find_spec(package)
    if package in sys.stdlib_module_names or (spec is not None and spec.origin is not None):  # not a bare folder
        raise ConfigError(f"'{package}': a module of that name is already importable; pick another folder name")
    command = package.replace("_", "-")
    return {
        "package": package,
        "command": command,
        "distribution": f"{command}-pipeline",
        "Package": "".join(part[:1].upper() + part[1:] for part in package.split("_")) or package,
        "title": package.replace("_", " "),
    }


def find_parent(spec: str) -> Parent:
    """The parent pipeline ``spec`` names (``mnist`` or ``mnist:MnistConfig``), checked to be transferable."""
    from mlpipes.pipeline import PipelineConfig

    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(f"--parent {spec}: no importable package '{module_name}'; pip install it first") from None
    if class_name:
        candidates = [class_name]
    else:  # only *Config names: touching others could import torch through a lazy __getattr__
        public = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        candidates = [n for n in public if n.endswith("Config")]
    configs = [c for c in (getattr(module, n, None) for n in candidates) if _is_pipeline_config(c, PipelineConfig)]
    own = [c for c in configs if c.__module__.split(".")[0] == module_name.split(".")[0]]
    configs = own or configs
    if len(configs) != 1:
        found = ", ".join(c.__name__ for c in configs) or "none"
        raise ConfigError(
            f"--parent {spec}: expected one PipelineConfig subclass among its public *Config names, found {found}; "
            f"name it as {module_name}:ClassName"
        )
    config = configs[0]
    return Parent(module_name, config, _distribution(module_name), config.model_factory, _check_parent(spec, config))


def _is_pipeline_config(obj: Any, base: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, base) and obj is not base


def _distribution(package: str) -> str:
    top = package.split(".")[0]
    return (packages_distributions().get(top) or [top])[0]


def _check_parent(spec: str, config: type) -> str:
    """The parent's record format; refuses a parent a child could not start from, offline, as generated."""
    from mlpipes.resolve import bundled
    from mlpipes.weights import read_manifest

    fields = {f.name for f in dataclasses.fields(config)}
    kinds = [kind for field, kind in RECORD_KINDS.items() if field in fields]
    if not config.model_factory or not kinds:
        raise ConfigError(
            f"--parent {spec}: {config.__name__} needs a model_factory and an 'image_size' (image records) or "
            "'columns' (tabular records) field for a generated child; write the child by hand (docs/new-pipeline.md)"
        )
    manifest = bundled(config())
    if manifest is None or "features" not in read_manifest(manifest)["files"]:
        raise ConfigError(
            f"--parent {spec}: {config.__name__} ships no bundled weights with a 'features' part to start from "
            f"(bundled_weights = {config.bundled_weights}); train and bundle the parent's weights first"
        )
    return kinds[0]


def parent_values(parent: Parent) -> dict[str, str]:
    module, _, factory = parent.factory.partition(":")
    return {
        "parent": parent.package,
        "ParentConfig": parent.config.__name__,
        "parent_config_module": parent.config.__module__,
        "parent_distribution": parent.distribution,
        "parent_pipeline": parent.config.pipeline,
        "parent_factory_module": module,
        "parent_factory": factory,
        "labels": repr(CHILD_LABELS[parent.kind]).replace("'", '"'),
        "min_accuracy": str(CHILD_ACCURACY[parent.kind]),
        "trainable": (  # the parent's --freeze-features, where it has one, keeps working in the child
            "model.freeze_features() if config.freeze_features else model.parameters()"
            if "freeze_features" in {f.name for f in dataclasses.fields(parent.config)}
            else "model.parameters()"
        ),
    }


def render(values: dict[str, str], variant: str, kind: str = "") -> dict[str, str]:
    """Every file of the package, by its path in the package: ``common`` files, then the variant's.

    A child's ``dataset.py`` comes from ``dataset_<kind>.py.tmpl`` (the parent's record format).
    """
    root = resources.files("mlpipes") / "templates"
    files: dict[str, str] = {}
    for part in ("common", variant):
        for template in _walk(root / part):
            relative = template["path"].removesuffix(".tmpl").replace("PACKAGE", values["package"])
            name = relative.rsplit("/", 1)[-1]
            if name.startswith("dataset_"):
                if name != f"dataset_{kind}.py":
                    continue
                relative = relative.replace(name, "dataset.py")
            files[relative] = fill(template["text"], values, template["path"])
    return files


def _walk(folder: Any, prefix: str = "") -> list[dict[str, str]]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            found += _walk(entry, f"{path}/")
        elif entry.name.endswith(".tmpl"):
            found.append({"path": path, "text": entry.read_text(encoding="utf-8")})
    return found


def fill(text: str, values: dict[str, str], where: str = "template") -> str:
    """``text`` with every ``{{name}}`` replaced; an unknown name is a bug in the template, so it raises."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"{where}: no value for {{{{{match.group(1)}}}}}")
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, text)
