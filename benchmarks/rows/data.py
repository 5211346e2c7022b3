"""Rows about data: writing the records, loading them into memory, feeding the training loop."""

from __future__ import annotations

import shutil

from benchmarks.bench import Bench
from benchmarks.fastpath import batches, our_gather, plain_gather
from benchmarks.registry import Metric, Target, row
from benchmarks.timing import median, time_once, time_repeats
from mlpipes.records import Records
from mnist import dataset
from mnist.config import MnistConfig


@row("save_datasets", "save-datasets from cached raw files", "<= 5 s")
def save_datasets(bench: Bench) -> list[Metric]:
    home = bench.fresh_dir("save-datasets")
    config = MnistConfig(artifact_dir=str(home / MnistConfig.pipeline))  # where the CLI puts it for this home
    shutil.copytree(bench.data_home / "raw", config.raw_dir)
    cli = [bench.run_cli(["save-datasets", "--force"], home) for _ in range(bench.repeats(full=3, quick=1))]
    in_process = time_repeats(lambda: dataset.save_datasets(config, force=True), bench.repeats(full=3, quick=1))
    bench.details["records_bytes"] = sum(p.stat().st_size for p in config.artifacts.joinpath("datasets").rglob("*"))
    return [
        Metric("CLI wall time (mnist save-datasets --force)", median(cli), "s", Target("<=", 5), cli),
        Metric("save_datasets() in-process", median(in_process), "s", None, in_process),
    ]


@row("records_to_memory", "records -> memory, 60k training images", "<= 0.5 s")
def records_to_memory(bench: Bench) -> list[Metric]:
    config = bench.config("records")
    repeats = bench.repeats(full=7, quick=3)
    tensors = time_repeats(lambda: dataset.load_split(config, "train"), repeats, warmup=1)
    arrays = time_repeats(lambda: Records.open(config.records_url).load("train"), repeats)
    images, _ = dataset.load_split(config, "train")
    bench.details["images"] = list(images.shape)
    return [
        Metric("load_split(train) -> uint8 tensors", median(tensors), "s", Target("<=", 0.5), tensors),
        Metric("Records.load(train) -> numpy", median(arrays), "s", None, arrays),
    ]


@row(
    "data_throughput",
    "training-loop data throughput: our batch gather vs a plain in-memory tensor gather",
    ">= 0.8x",
)
def data_throughput(bench: Bench) -> list[Metric]:
    config = bench.config("throughput")
    images, labels = dataset.load_split(config, "train")
    floats = images.float().div_(255)  # the baseline keeps every image as ready float32 (4x the memory)

    def ours(epoch: int) -> int:
        seen = 0
        for batch in batches(len(images), config.batch_size, epoch):
            x, _ = our_gather(images, labels, batch)
            seen += len(x)
        return seen

    def plain(epoch: int) -> int:
        seen = 0
        for batch in batches(len(images), config.batch_size, epoch):
            x, _ = plain_gather(floats, labels, batch)
            seen += len(x)
        return seen

    ours(0), plain(0)  # warm up the allocator
    ours_rate, plain_rate, ratios = [], [], []
    for epoch in range(bench.repeats(full=7, quick=3)):  # interleaved, so both see the same noise
        t_ours, n = time_once(lambda epoch=epoch: ours(epoch))
        t_plain, m = time_once(lambda epoch=epoch: plain(epoch))
        ours_rate.append(n / t_ours)
        plain_rate.append(m / t_plain)
        ratios.append(ours_rate[-1] / plain_rate[-1])
    bench.details["batch_size"] = config.batch_size
    return [
        Metric("ours (uint8 gather -> float, channels_last)", median(ours_rate), "img/s", None, ours_rate),
        Metric("plain float32 tensor gather", median(plain_rate), "img/s", None, plain_rate),
        Metric("ours / plain", median(ratios), "x", Target(">=", 0.8), ratios),
    ]
