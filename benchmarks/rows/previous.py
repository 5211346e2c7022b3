"""Row about retrained weights: are the bundled versions no slower than the versions they replaced?

Issue 11 asks that new weights cost users no time where they wait: batch-1 ``predict()`` on ONNX
Runtime and the page's time per drawing. The version a bundled one replaced is read from git
history (the last commit whose pretrained folder held another version), both are exported, and
they are timed in the same run, interleaved, with the order alternating each round: the ratio
new / old of each round cancels most of the machine's load, and the row reports their median.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, Target, row
from benchmarks.rows.web import REPO, WEB
from benchmarks.timing import median, time_per_call
from mlpipes.weights import find_versions, read_manifest

# Same-graph pairs measured this way read 0.995-1.008 (docs/benchmarks.md): no slower, within that noise.
NO_SLOWER = 1.02


def git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        raise NotAvailable(f"git {args[0]} in {repo} failed ({why}): this row needs a git clone with history")
    return done.stdout


def previous_bundled(folder: Path, pipeline: str, into: Path, repo: Path = REPO) -> Path:
    """The manifest, with its weight files, of the version bundled in ``folder`` before the current
    one: written under ``into`` from the git history of ``repo``."""
    current = find_versions(folder, pipeline)[-1].name
    relative = folder.resolve().relative_to(repo.resolve()).as_posix()
    for line in git(repo, "log", "--format=%H %P", "--", relative).decode().splitlines():
        commit, *parents = line.split()
        if not parents:  # the first commit: nothing before it
            break
        before = f"{commit}^"  # the tree this commit changed
        names = git(repo, "ls-tree", "--name-only", before, f"{relative}/").decode().split()
        manifests = [n for n in names if n.endswith(".json") and Path(n).name != current]
        if manifests:
            for name in names:
                (into / Path(name).name).write_bytes(git(repo, "show", f"{before}:{name}"))
            (manifest,) = find_versions(into, pipeline)  # checked like any manifest: name, version, format
            return manifest
    raise NotAvailable(f"no earlier version of {relative} in git history (a shallow clone?)")


def alternating(rounds: int, measure_old, measure_new) -> tuple[list[float], list[float]]:
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

    metrics = compare(bench, bench.config("onnx"), mnist)
    try:
        import ascii_letter
    except ImportError:
        return metrics
    return metrics + compare(bench, letter_config(bench), ascii_letter)


def compare(bench: Bench, config: Any, package: ModuleType) -> list[Metric]:
    """The version bundled in ``package`` against the one before it: ONNX Runtime, then the page."""
    from mlpipes.commands import onnx_classifier

    pipeline, folder = config.pipeline, Path(package.__file__).parent / "pretrained"
    current = find_versions(folder, pipeline)[-1]
    before = previous_bundled(folder, pipeline, bench.fresh_dir(f"{pipeline}-git"))
    old_config = exported(bench, config, before, f"{pipeline}-old")
    new_config = exported(bench, config, current, f"{pipeline}-new")
    old_model, new_model = onnx_classifier(old_config, threads=1), onnx_classifier(new_config, threads=1)
    size = config.image_size
    image = np.random.default_rng(0).integers(0, 256, (1, size, size), dtype=np.uint8)  # as a user passes one

    def microseconds(model: Any, warmup: int = 0) -> float:
        return time_per_call(lambda: model.predict(image), calls=200, blocks=1, warmup=warmup)[0] * 1e6

    microseconds(old_model, warmup=500)  # both sessions warm before the first round
    microseconds(new_model, warmup=500)
    old, new = alternating(bench.repeats(full=30, quick=8), lambda: microseconds(old_model),
                           lambda: microseconds(new_model))  # fmt: skip
    new_version = read_manifest(current)["version"]
    versions = f"{new_version} / {read_manifest(before)['version']}"
    details = bench.details.setdefault(pipeline, {"versions": versions, "onnx_us_old": old, "onnx_us_new": new})
    metrics = [
        Metric(f"{pipeline} {versions}: ONNX batch-1 predict()", median(ratios(old, new)), "x",
               Target("<=", NO_SLOWER), ratios(old, new)),
        Metric(f"{pipeline} {new_version}: ONNX batch-1 predict()", median(new), "us", None, new),
    ]  # fmt: skip
    page = page_ratios(bench, pipeline, old_config, new_config, details)
    if page is not None:
        metrics.append(Metric(f"{pipeline} {versions}: page, per drawing", median(page), "x",
                              Target("<=", NO_SLOWER), page))  # fmt: skip
    return metrics


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


def page_ratios(bench: Bench, pipeline: str, old_config: Any, new_config: Any, details: dict) -> list[float] | None:
    """Per-round new / old of the page's median time per drawing, or None without a browser."""
    try:
        from mlpipes.browser import chromium, chromium_path, open_app
        from mlpipes.serve import make_server, serve_in_thread
    except ImportError:
        return None
    if chromium_path() is None or not any((WEB / "vendor").glob("ort*.mjs")):
        details["page"] = "not measured: no Chromium, or ONNX Runtime Web not vendored (make web)"
        return None
    server = make_server(WEB, [old_config.weights_dir, new_config.weights_dir], port=0)
    serve_in_thread(server)
    try:
        with chromium() as context:
            page = open_app(context, f"http://127.0.0.1:{server.server_address[1]}/?threads=1")
            runs, rounds = bench.repeats(full=1000, quick=300), bench.repeats(full=10, quick=4)
            measured = page.evaluate(PAGE_ROUNDS, [pipeline, runs, rounds])
    finally:
        server.shutdown()
        server.server_close()
    details.update(page_versions=measured["versions"], page_ms_old=measured["old"], page_ms_new=measured["new"])
    return ratios(measured["old"], measured["new"])
