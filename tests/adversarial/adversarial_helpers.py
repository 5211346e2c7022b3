"""Helpers of the adversarial suite (fixtures: conftest.py): run a command as a user would, check how it refuses.

Every hostile case asserts the same contract (DESIGN §7, issue 10): exit status ≠ 0, one error
line that names the culprit, no traceback, and every file that existed before in the artifact
home is byte-identical after. Most cases run the CLI in-process (its ``main``, with ``sys.argv``
set): the same code path as the console script, without a 3 s interpreter start per case; a few
run the real console script in a subprocess, with memory and time limits where the input is a bomb.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MNIST_MIRROR = next(
    (
        Path(candidate)
        for candidate in (
            os.environ.get("MNIST_MIRROR"),
            REPO.parent / "shared/data/mnist",
            REPO.parents[1] / "shared/data/mnist",
        )
        if candidate and (Path(candidate) / "t10k-images-idx3-ubyte.gz").exists()
    ),
    REPO.parent / "shared/data/mnist",
)
ENTRY_POINTS = {"mnist": "mnist.__main__", "ascii-letter": "ascii_letter.__main__", "mlpipes": "mlpipes.__main__"}


ERROR_LINE = re.compile(r"^[\w. -]+: error: ")  # "mnist: error: ...", argparse's "mnist predict: error: ..."


@dataclass
class Result:
    code: int
    out: str
    err: str

    def error_lines(self) -> list[str]:
        """stderr lines that are not warnings or progress bars."""
        return [line for line in self.err.splitlines() if line.strip() and not line.lower().startswith("warning")]


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def assert_refused(result: Result, *culprits: str, before: dict[str, str] | None = None, home: Path | None = None):
    """Exit ≠ 0, exactly one error line naming every culprit (regexes), no traceback, nothing changed."""
    assert result.err.strip(), "refused without a word on stderr"
    assert result.code != 0, f"accepted (exit 0): {result.out[-500:]}"
    assert "Traceback" not in result.err, result.err[-2000:]
    lines = [line for line in result.err.splitlines() if ERROR_LINE.match(line)]  # info lines may precede it
    assert len(lines) == 1, f"expected one error line, got {len(lines)}: {result.err[-1500:]}"
    assert len(lines[0]) < 1000, f"error line of {len(lines[0])} characters"
    for culprit in culprits:
        assert re.search(culprit, lines[0]), f"{culprit!r} not named in: {lines[0]}"
    if before is not None:
        after = snapshot(home)
        changed = [name for name, digest in before.items() if after.get(name) != digest]
        assert not changed, f"artifacts changed or lost: {changed}"


def run_console(
    prog: str, *args: str, home: Path, memory_gib: float = 4, cpu_seconds: int = 30, timeout: float = 120
) -> Result:
    """The real console script in a subprocess, with address-space and CPU-time limits (a bomb cannot
    take the shared machine; CPU time, unlike wall time, does not depend on how loaded it is)."""
    import resource

    def limit() -> None:
        size = int(memory_gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    env = {**os.environ, "MLPIPES_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("MLPIPES_DEBUG", None)
    module = ENTRY_POINTS[prog].removesuffix(".__main__")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{prog} {' '.join(map(str, args))[:200]}: still running after {timeout} s")
    return Result(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def unchanged(home: Path) -> Iterator[dict[str, str]]:
    before = snapshot(home)
    yield before
    after = snapshot(home)
    assert not [name for name, digest in before.items() if after.get(name) != digest], "artifacts changed"


def mnist_digit(index: int = 0) -> tuple[np.ndarray, int]:
    """One real MNIST test digit (white on black, uint8 28×28) and its label, from the offline mirror."""
    images, labels = MNIST_MIRROR / "t10k-images-idx3-ubyte.gz", MNIST_MIRROR / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        pytest.skip(f"real MNIST digits needed in {MNIST_MIRROR}")
    with gzip.open(images) as f:
        f.read(16 + index * 784)
        pixels = np.frombuffer(f.read(784), np.uint8).reshape(28, 28)
    with gzip.open(labels) as f:
        f.read(8 + index)
        label = f.read(1)[0]
    return pixels.copy(), int(label)


def png_bytes(image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def tiny_onnx(path: Path, labels: list[str], classes: int | None = None) -> Path:
    """A valid mlpipes-style ONNX file built by hand (no exporter: milliseconds, not seconds)."""
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    classes = classes or len(labels)
    weight = numpy_helper.from_array(np.ones((4, classes), np.float32), "w")
    nodes = [helper.make_node("Flatten", ["images"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, 2, 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    metadata = {"pipeline": "tiny", "model_version": "1.0.0", "labels": json.dumps(labels)}
    helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return path
