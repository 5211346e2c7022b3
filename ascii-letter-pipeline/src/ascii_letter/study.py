"""Transfer study: how much do MNIST's features help when letters are scarce?"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np

from ascii_letter import dataset
from ascii_letter.config import AsciiLetterConfig
from mlpipes.artifacts import atomic_path, write_json
from mlpipes.weights import read_manifest
from mnist.train import train_model


def transfer_study(config: AsciiLetterConfig, per_class: tuple[int, ...] = (10, 25, 50, 100), seeds: int = 3) -> None:
    """MNIST features vs from scratch at several training-set sizes: a table, JSON and a PNG plot."""
    folder = config.artifacts / "transfer-study"
    rendered = config.replace(examples_per_class=max(per_class) + config.test_per_class)
    tarball = dataset.make_raw_data(rendered, folder / "images.tar.gz")
    parent = config.pretrained_features or True  # the MNIST features a run of the "mnist" start begins from
    rows = []
    for n in per_class:
        data = rendered.replace(dataset_url=str(folder / f"records-{n}"))
        dataset.save_datasets(data, tarball, train_per_class=n)  # same test split for every n
        for start in ("mnist", "scratch"):
            accuracies, seconds = [], []
            for seed in range(seeds):
                run = data.replace(artifact_dir=str(folder / f"{start}-{n}-{seed}"), seed=config.seed + seed,
                                   pretrained_features=parent if start == "mnist" else False,
                                   train_samples=n * len(config.labels),
                                   batch_size=min(config.batch_size, n * len(config.labels)))  # fmt: skip
                began = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    manifest = train_model(run)
                seconds.append(time.perf_counter() - began)
                accuracies.append(read_manifest(manifest)["metrics"]["test_accuracy"])
            rows.append({"per_class": n, "start": start, "accuracies": accuracies, "mean": float(np.mean(accuracies)),
                         "std": float(np.std(accuracies)), "seconds": float(np.mean(seconds))})  # fmt: skip
            print(f"{n:>4}/class  {start:<8} {100 * rows[-1]['mean']:6.2f} ± {100 * rows[-1]['std']:4.2f} %"
                  f"  {rows[-1]['seconds']:5.1f} s/run", flush=True)  # fmt: skip
    write_json(folder / "transfer_study.json", {"test_per_class": config.test_per_class, "seeds": seeds, "rows": rows})
    plot(rows, folder / "transfer_study.png")
    print(f"results: {folder / 'transfer_study.json'}, {folder / 'transfer_study.png'}")


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for start, label in (("mnist", "MNIST features"), ("scratch", "from scratch")):
        mine = [r for r in rows if r["start"] == start]
        ax.errorbar([r["per_class"] for r in mine], [100 * r["mean"] for r in mine],
                    yerr=[100 * r["std"] for r in mine], marker="o", capsize=3, label=label)  # fmt: skip
    ax.set(xscale="log", xlabel="training examples per letter", ylabel="test accuracy (%)", title="transfer study")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
