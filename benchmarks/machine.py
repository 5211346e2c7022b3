"""A description of the machine a benchmark ran on, stored with its results.

Numbers mean little without it: the CPU, how many cores this process may use, the library
versions, and the load average, which shows whether other work was competing for the cores.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# Our packages' versions as their code says: an editable install's metadata keeps the version it
# was installed at, so after a bump it would name the wrong one.
OUR_PACKAGES = {
    "mlpipes": "mlpipes",
    "mnist-pipeline": "mnist",
    "ascii-letter-pipeline": "ascii_letter",
    "breast-cancer-pipeline": "breast_cancer",
}


def code_version(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except (ImportError, AttributeError):
        return None


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def git_commit(repo: Path) -> str | None:
    """HEAD of the repository, with "+dirty" when the working tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def describe_machine(repo: Path) -> dict[str, Any]:
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "memory_gib": memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            **{name: package_version(name) for name in ("torch", "onnxruntime", "numpy", "pyarrow")},
            **{name: code_version(module) for name, module in OUR_PACKAGES.items()},
        },
        "git_commit": git_commit(repo),
    }
