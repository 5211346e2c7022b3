"""Row about retrained weights: are the bundled versions no slower than the versions they replaced?

Issue 11 asks that new weights cost users no time where they wait: batch-1 ``predict()`` on ONNX
Runtime and the page's time per drawing. The version a bundled one replaced is read from git
history (the newest older version that HEAD or an earlier commit held there), both are exported, and
they are timed in the same run, interleaved, with the order alternating each round: the ratio
new / old of each round cancels most of the machine's load, and the row reports their median.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, Target, row
from benchmarks.rows.web import REPO, WEB, browser_missing
from benchmarks.timing import median, time_per_call
from mlpipes.errors import UserError
from mlpipes.weights import find_versions, parse_manifest, read_manifest, version_key

# Letters 1.6.0 / 1.5.0, the same graph, read 0.986-1.00 in this row (docs/benchmarks.md): 2 % is its noise.
NO_SLOWER = 1.02


def git(repo: Path, *args: str) -> bytes:
    """What ``git -C repo ARGS`` prints; NotAvailable, naming the command, where git or the history is missing."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    except FileNotFoundError:
        raise NotAvailable("no git on PATH: this row reads the previous weights from git history") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        raise NotAvailable(f"git {args[0]} in {repo} failed ({why}): this row needs a git clone with history")
    return done.stdout


def previous_bundled(folder: Path, pipeline: str, into: Path, repo: Path = REPO) -> Path:
    """The newest version older than the one bundled in ``folder`` that git history held there, its
    manifest and weight files written under ``into``. HEAD is looked at first, so weights not yet
    committed are compared with the committed ones."""
    bundled = find_versions(folder, pipeline)
    if not bundled:
        raise NotAvailable(f"{folder}: no {pipeline} weights bundled")
    current = read_manifest(bundled[-1])["version"]
    top = Path(git(repo, "rev-parse", "--show-toplevel").decode().strip())
    try:
        relative = folder.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise NotAvailable(f"{folder} is not inside the git clone {top} (installed without pip -e?)") from None
    log = git(top, "log", "--topo-order", "--format=%H %P", "--", relative).decode().splitlines()
    trees = ["HEAD"] + [f"{line.split()[0]}^" for line in log if len(line.split()) > 1]  # what each commit changed
    for tree in trees:
        names = [n for n in git(top, "ls-tree", "-z", "--name-only", tree, f"{relative}/").decode().split("\0") if n]
        older = [(version_key(m["version"]), name, m) for name, m in manifests_in(top, tree, names, pipeline)
                 if version_key(m["version"]) < version_key(current)]  # fmt: skip
        if older:
            _, name, manifest = max(older, key=lambda found: found[0])
            for entry in manifest["files"].values():
                (into / entry["file"]).write_bytes(git(top, "show", f"{tree}:{relative}/{entry['file']}"))
            (into / Path(name).name).write_bytes(git(top, "show", f"{tree}:{name}"))
            return into / Path(name).name
    shallow = git(top, "rev-parse", "--is-shallow-repository").decode().strip() == "true"
    hint = ": a shallow clone (git fetch --unshallow)" if shallow else ""
    raise NotAvailable(f"no {pipeline} version older than {current} in the git history of {relative}{hint}")


def manifests_in(top: Path, tree: str, names: list[str], pipeline: str) -> list[tuple[str, dict]]:
    """The valid ``pipeline`` manifests among ``names`` in ``tree``, each with its path there."""
    found = []
    for name in names:
        if not (Path(name).name.startswith(f"{pipeline}-") and name.endswith(".json")):
            continue
        try:
            manifest = parse_manifest(git(top, "show", f"{tree}:{name}"), f"{tree}:{name}")
        except UserError:
            continue
        if manifest["name"] == pipeline:
            found.append((name, manifest))
    return found


def alternating(
    rounds: int, measure_old: Callable[[], float], measure_new: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """``rounds`` measurements of each, the order swapped every round."""
    old, new = [], []
    for r in range(rounds):
        if r % 2:
            new.append(measure_new())
            old.append(measure_old())
        else:
            old.append(measure_old())
            new.append(measure_new())
    return old, new


def ratios(old: list[float], new: list[float]) -> list[float]:
    return [n / o for o, n in zip(old, new)]


def exported(bench: Bench, config: Any, manifest: Path, name: str) -> Any:
    """``config`` in a fresh artifact folder holding only ``manifest``'s version, exported to ONNX."""
    from mlpipes.commands import export_onnx

    config = config.replace(artifact_dir=str(bench.fresh_dir(name)))
    export_onnx(config, weights=str(manifest))
    return config


def letter_config(bench: Bench) -> Any:
    """The letter pipeline with a small test split, which the export's parity check reads."""
    from ascii_letter.config import AsciiLetterConfig
    from ascii_letter.dataset import save_datasets

    config = AsciiLetterConfig(artifact_dir=str(bench.fresh_dir("letters-data")), examples_per_class=25,
                               test_per_class=5)  # fmt: skip
    save_datasets(config)  # renders the letters first
    return config.replace(dataset_url=config.records_url)  # the exports' own folders hold no records


@row(
    "weights_vs_previous",
    "bundled weights vs the versions they replaced (git history), same run",
    f"new / old <= {NO_SLOWER:g}: ONNX batch-1 predict() and the page's time per drawing",
)
def weights_vs_previous(bench: Bench) -> list[Metric]:
    import mnist

    pairs = [(mnist, lambda: bench.config("onnx"))]
    try:
        import ascii_letter

        pairs.append((ascii_letter, lambda: letter_config(bench)))
    except ImportError:
        pass
    metrics = []
    for package, config in pairs:
        try:
            metrics += compare(bench, config(), package)
        except NotAvailable as why:  # one pipeline without history leaves the others measured
            bench.details[package.__name__] = f"not available: {why}"
    if not metrics:
        raise NotAvailable("; ".join(str(v) for v in bench.details.values()))
    return metrics


def compare(bench: Bench, config: Any, package: ModuleType) -> list[Metric]:
    """The version bundled in ``package`` against the one before it: ONNX Runtime, then the page."""
    pipeline, folder = config.pipeline, Path(package.__file__).parent / "pretrained"
    before = previous_bundled(folder, pipeline, bench.fresh_dir(f"{pipeline}-git"))
    current = find_versions(folder, pipeline)[-1]
    versions = [read_manifest(before)["version"], read_manifest(current)["version"]]
    name = f"{pipeline} {versions[1]} / {versions[0]}"
    old_config = exported(bench, config, before, f"{pipeline}-old")
    new_config = exported(bench, config, current, f"{pipeline}-new")
    old, new = onnx_microseconds(bench, old_config, new_config)
    details = bench.details[pipeline] = {"versions": versions, "onnx_us_old": old, "onnx_us_new": new}
    onnx = ratios(old, new)
    metrics = [
        Metric(f"{name}: ONNX batch-1 predict()", median(onnx), "x", Target("<=", NO_SLOWER), onnx),
        Metric(f"{pipeline} {versions[1]}: ONNX batch-1 predict()", median(new), "us", None, new),
    ]  # fmt: skip
    page = page_ratios(bench, pipeline, versions, old_config, new_config, details)
    if page is not None:
        metrics.append(Metric(f"{name}: page, per drawing", median(page), "x", Target("<=", NO_SLOWER), page))
    return metrics


def onnx_microseconds(bench: Bench, old_config: Any, new_config: Any) -> tuple[list[float], list[float]]:
    """Microseconds per batch-1 ``predict()`` of each export on a 1-thread session, rounds alternating."""
    from mlpipes.commands import onnx_classifier

    old_model, new_model = onnx_classifier(old_config, threads=1), onnx_classifier(new_config, threads=1)
    size = new_config.image_size
    image = np.random.default_rng(0).integers(0, 256, (1, size, size), dtype=np.uint8)  # as a user passes one

    def microseconds(model: Any, warmup: int = 0) -> float:
        return time_per_call(lambda: model.predict(image), calls=200, blocks=1, warmup=warmup)[0] * 1e6

    microseconds(old_model, warmup=500)  # both sessions warm before the first round
    microseconds(new_model, warmup=500)
    return alternating(bench.repeats(full=30, quick=8), lambda: microseconds(old_model),
                       lambda: microseconds(new_model))  # fmt: skip


# Both versions in one page, so they share the browser, the wasm runtime and its JIT; a fresh browser
# per version instead measured whichever went second up to 30 % slower, whatever the weights.
PAGE_ROUNDS = """async ([pipeline, runs, rounds]) => {
  const { Classifier, listModels } = await import("./classifier.js");
  const infos = (await listModels()).filter((m) => m.pipeline === pipeline);  // oldest version first
  if (infos.length !== 2) throw new Error(`${pipeline}: ${infos.length} versions served, expected 2`);
  const [old, fresh] = await Promise.all(infos.map((info) => Classifier.load(info)));
  for (const model of [old, fresh]) await model.benchmark({ runs });  // untimed: the page is still settling
  const times = { old: [], new: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [["new", fresh], ["old", old]] : [["old", old], ["new", fresh]];
    for (const [name, model] of order) times[name].push((await model.benchmark({ runs })).median_ms);
  }
  return { versions: infos.map((m) => m.model_version), ...times };
}"""


def page_ratios(
    bench: Bench, pipeline: str, versions: list[str], old_config: Any, new_config: Any, details: dict
) -> list[float] | None:
    """Per-round new / old of the page's median time per drawing, or None (the reason in ``details``)."""
    missing = browser_missing()
    if missing:
        details["page"] = f"not measured: {missing}"
        return None
    from mlpipes.browser import served_app

    runs, rounds = bench.repeats(full=1000, quick=300), bench.repeats(full=10, quick=4)
    with served_app(WEB, [old_config.weights_dir, new_config.weights_dir]) as page:
        measured = page.evaluate(PAGE_ROUNDS, [pipeline, runs, rounds])
    if measured["versions"] != versions:  # the page orders by version: old and new must be what we exported
        raise RuntimeError(f"{pipeline}: the page served versions {measured['versions']}, expected {versions}")
    details.update(page_ms_old=measured["old"], page_ms_new=measured["new"])
    return ratios(measured["old"], measured["new"])
