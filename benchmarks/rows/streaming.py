"""Rows about streaming records: memory that stays flat as data grows, and the throughput it costs.

Peak memory is measured in fresh subprocesses, as each one's ``VmHWM`` (not ``ru_maxrss``, which
keeps the parent's high-water mark across fork and exec), so no measurement inherits another's.
The memory budget is stated, not enforced: the dataset is 1x and 10x that budget, and streaming
must stay flat while loading into memory grows with the data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench import Bench
from benchmarks.fastpath import batches, our_gather
from benchmarks.registry import Metric, NotAvailable, Target, row
from benchmarks.timing import median, time_once
from mlpipes.records import Records
from mlpipes.streaming import StreamingSource

BUDGET_BYTES = 64 << 20  # the stated memory budget for the dataset's images
IMAGE = (64, 64)  # uint8 pixels per synthetic image: 4 KiB

# Child processes: each prints one JSON line; peak RSS is the process's own high-water mark.
_RSS = """
def rss(key):  # bytes, from the kernel's accounting of this process alone
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
"""

_WRITE = (
    _RSS
    + """
import json, sys, numpy as np
from mlpipes.records import RecordsWriter
url, rows, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start_rss = rss("VmHWM")
rng = np.random.default_rng(0)
with RecordsWriter(url, name="synthetic", provenance={"rows": rows}, rows_per_shard=2048) as writer:
    for start in range(0, rows, 1000):  # chunks from a generator: the split never exists in memory
        n = min(1000, rows - start)
        image = rng.integers(0, 256, (n, h, w), dtype=np.uint8) & rng.integers(0, 2, (n, 1, w), dtype=np.uint8) * 255
        writer.write("train", {"image": image, "label": np.arange(start, start + n) % 10})
print(json.dumps({"peak_rss": rss("VmHWM"), "import_rss": start_rss}))
"""
)

_READ = (
    _RSS
    + """
import json, sys, time, torch
from mlpipes.records import Records
from mlpipes.streaming import StreamingSource
url, how = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
start_rss = rss("VmHWM")
t = time.perf_counter()
seen = 0
if how == "stream":
    source = StreamingSource(url, "train", batch_size=256, shuffle_buffer=4096, prefetch=1)
    for batch in source.batches(0):
        seen += len(batch["image"].float())
else:
    images = torch.from_numpy(Records.open(url).load("train")["image"])
    for i in range(0, len(images) - 255, 256):
        seen += len(images[i : i + 256].float())
peak = rss("VmHWM")
print(json.dumps({"peak_rss": peak, "import_rss": start_rss, "rows": seen, "seconds": time.perf_counter() - t}))
"""
)


def _child(code: str, *args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    if done.returncode != 0:
        raise RuntimeError(f"child exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@row(
    "stream_memory",
    "peak RSS streaming a synthetic image dataset at 1x and 10x a 64 MiB budget",
    "10x / 1x <= 1.2",
)
def stream_memory(bench: Bench) -> list[Metric]:
    rows_1x = BUDGET_BYTES // (IMAGE[0] * IMAGE[1])
    mib = 1 << 20
    results: dict[str, dict[str, Any]] = {}
    for scale in (1, 10):
        url = bench.fresh_dir(f"synthetic-{scale}x")
        results[f"write {scale}x"] = _child(_WRITE, url, rows_1x * scale, *IMAGE)
        results[f"stream {scale}x"] = _child(_READ, url, "stream")
        results[f"memory {scale}x"] = _child(_READ, url, "memory")
    bench.details.update(results, budget_mib=BUDGET_BYTES // mib, image=list(IMAGE), rows_1x=rows_1x)
    ratio = results["stream 10x"]["peak_rss"] / results["stream 1x"]["peak_rss"]
    base = results["stream 1x"]["import_rss"]
    return [
        Metric("streamed peak RSS, 1x budget", results["stream 1x"]["peak_rss"] / mib, "MiB"),
        Metric("streamed peak RSS, 10x budget", results["stream 10x"]["peak_rss"] / mib, "MiB"),
        Metric("streamed 10x / 1x", ratio, "x", Target("<=", 1.2)),
        Metric("writer peak RSS, 10x budget (incremental)", results["write 10x"]["peak_rss"] / mib, "MiB"),
        Metric("in-memory peak RSS, 1x budget", results["memory 1x"]["peak_rss"] / mib, "MiB"),
        Metric("in-memory peak RSS, 10x budget", results["memory 10x"]["peak_rss"] / mib, "MiB"),
        Metric("streamed peak over imports, 1x", (results["stream 1x"]["peak_rss"] - base) / mib, "MiB"),
        Metric("streamed peak over imports, 10x", (results["stream 10x"]["peak_rss"] - base) / mib, "MiB"),
        Metric("interpreter + imports RSS (reader)", base / mib, "MiB"),
    ]


def _stream_epoch(source: StreamingSource, epoch: int) -> int:
    seen = 0
    for batch in source.batches(epoch):
        x = batch["image"].unsqueeze(1).float().div_(255).contiguous(memory_format=torch.channels_last)
        seen += len(x)
    return seen


@row(
    "stream_throughput",
    "streaming from local records vs the in-memory gather, MNIST training batches",
    ">= 0.9x",
)
def stream_throughput(bench: Bench) -> list[Metric]:
    from mnist import dataset

    config = bench.config("stream-throughput")
    images, labels = dataset.load_split(config, "train")
    source = StreamingSource(config.records_url, "train", batch_size=config.batch_size, seed=config.seed)

    def memory(epoch: int) -> int:
        seen = 0
        for batch in batches(len(images), config.batch_size, epoch):
            x, _ = our_gather(images, labels, batch)
            seen += len(x)
        return seen

    memory(0), _stream_epoch(source, 0)  # warm up allocator and page cache
    mem_rate, stream_rate, ratios, waits = [], [], [], []
    for epoch in range(bench.repeats(full=5, quick=2)):  # interleaved, so both see the same noise
        t_mem, n = time_once(lambda epoch=epoch: memory(epoch))
        t_stream, m = time_once(lambda epoch=epoch: _stream_epoch(source, epoch))
        mem_rate.append(n / t_mem)
        stream_rate.append(m / t_stream)
        ratios.append(stream_rate[-1] / mem_rate[-1])
        waits.append(source.stats.wait_seconds / t_stream)
    bench.details["batch_size"] = config.batch_size
    return [
        Metric("in memory (uint8 gather -> float)", median(mem_rate), "img/s", None, mem_rate),
        Metric(
            "streamed from local shards (whole epoch, loading included)",
            median(stream_rate),
            "img/s",
            None,
            stream_rate,
        ),
        Metric("streamed / in memory", median(ratios), "x", Target(">=", 0.9), ratios),
        Metric("share of streamed time waiting for data", median(waits), "x", None, waits),
    ]


_S3_RANK = """
import json, sys, time, torch
from mlpipes.streaming import StreamingSource
url, rank, world, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
source = StreamingSource(url, "train", batch_size=batch, rank=rank, world=world, workers=2)
out = []
for epoch in range(2):  # epoch 0 downloads into an empty cache, epoch 1 reads it (and new shards)
    t = time.perf_counter()
    seen = sum(len(b["image"].float()) for b in source.batches(epoch))
    out.append({"rows": seen, "seconds": time.perf_counter() - t, "wait": source.stats.wait_seconds})
print(json.dumps(out))
"""


@row("stream_s3", "streaming MNIST from a local S3 server (SeaweedFS), 1 and 2 ranks", "report")
def stream_s3(bench: Bench) -> list[Metric]:
    try:
        from mlpipes.testing import seaweedfs_s3, weed_binary

        weed_binary()
    except (ImportError, RuntimeError) as e:
        raise NotAvailable(f"no SeaweedFS ({e})") from None
    import fsspec

    config = bench.config("stream-s3")
    local = Path(config.records_url)
    metrics = []
    with seaweedfs_s3(bench.fresh_dir("seaweedfs")) as server:
        env = server.env()
        url = f"s3://{server.create_bucket()}/datasets/mnist"
        fs, _ = fsspec.core.url_to_fs(url, **server.storage_options)
        for file in Records.open(local).index["splits"]["train"]["shards"]:
            fs.put_file(str(local / file["file"]), f"{url}/{file['file']}")
        fs.put_file(str(local / "index.json"), f"{url}/index.json")
        batch = config.batch_size
        for world in (1, 2):
            cache = bench.fresh_dir(f"s3-cache-{world}")
            start = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", _S3_RANK, url, str(r), str(world), str(batch // world)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, **env, "MLPIPES_CACHE": str(cache), "OMP_NUM_THREADS": "1"},
                )
                for r in range(world)
            ]
            outs = [p.communicate() for p in procs]
            wall = time.perf_counter() - start
            if any(p.returncode for p in procs):
                raise RuntimeError(f"{world} rank(s) failed: {[o[1].strip().splitlines()[-1:] for o in outs]}")
            ranks = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
            bench.details[f"{world} rank(s)"] = {"ranks": ranks, "wall_seconds": wall}
            for epoch, label in ((0, "epoch 1, empty cache"), (1, "epoch 2, cache of epoch 1")):
                rows = sum(r[epoch]["rows"] for r in ranks)
                seconds = max(r[epoch]["seconds"] for r in ranks)
                metrics.append(Metric(f"S3, {world} rank(s), {label}: all ranks together", rows / seconds, "img/s"))
            metrics.append(
                Metric(
                    f"S3, {world} rank(s): waiting share, epoch 1",
                    max(r[1]["wait"] / r[1]["seconds"] for r in ranks),
                    "x",
                )
            )
    return metrics


def _newest_manifest(config: Any) -> Path:
    manifests = sorted(config.weights_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise RuntimeError(f"no weights manifest in {config.weights_dir}")
    return manifests[-1]


def _max_weight_difference(a: Path, b: Path) -> float:
    from mlpipes.weights import load_state_dict, read_manifest

    worst = 0.0
    for role in read_manifest(a)["files"]:
        mine, theirs = load_state_dict(a, role), load_state_dict(b, role)
        for key, tensor in mine.items():
            worst = max(worst, (tensor.float() - theirs[key].float()).abs().max().item())
    return worst


@row(
    "stream_training",
    "MNIST trained streamed vs in memory (1 epoch), and a streamed run killed mid-epoch then resumed",
    "accuracy within 0.3 points; resumed weights equal",
)
def stream_training(bench: Bench) -> list[Metric]:
    from mlpipes.weights import read_manifest
    from mnist.train import train_model

    epochs = 1
    size = {"train_samples": 12_000} if bench.quick else {}  # quick: a fifth of MNIST, for a busy machine
    every = 20 if bench.quick else 100  # checkpoint every this many steps; the run is killed after the second
    bench.details["train_samples"] = size.get("train_samples", "all")
    accuracy, rates = {}, {}
    for how, stream in (("in memory", False), ("streamed", True)):
        config = bench.config(f"train-{'stream' if stream else 'memory'}", epochs=epochs, stream=stream, **size)
        manifest = read_manifest(train_model(config))
        accuracy[how] = 100 * manifest["metrics"]["test_accuracy"]
        history = sorted(config.runs_dir.glob("*/history.json"))[-1]
        rates[how] = json.loads(history.read_text())[-1].get("samples_per_second", float("nan"))
        bench.details[how] = {"test_accuracy": accuracy[how], "history": json.loads(history.read_text())}

    # The same streamed run through the CLI, checkpointing every few steps: killed once a
    # mid-epoch checkpoint exists, then resumed; its weights must equal an uninterrupted run's.
    straight = bench.config("train-stream-straight", epochs=epochs, stream=True, checkpoint_every=every, **size)
    straight_manifest = train_model(straight)
    home = bench.fresh_dir("train-stream-killed")
    args = ["train-model", "--dataset-url", bench.records_url, "--stream", "--epochs", str(epochs)]
    args += ["--checkpoint-every", str(every)] + [f"--{k.replace('_', '-')}={v}" for k, v in size.items()]
    env = bench.cli_env(home)
    killed = subprocess.Popen(
        [sys.executable, "-m", "mnist", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    runs = home / "mnist" / "runs"
    step = 0
    while killed.poll() is None and step < 2 * every:
        time.sleep(0.5)
        found = sorted(runs.glob("*/checkpoint.pt")) if runs.exists() else []
        if found:
            try:
                step = torch.load(found[-1], map_location="cpu", weights_only=True).get("step", 0)
            except Exception:  # caught mid-rename: look again
                step = 0
    if killed.poll() is not None:
        raise RuntimeError(f"the run to kill ended first (exit {killed.returncode}): {killed.stderr.read()[-300:]!r}")
    killed.kill()
    killed.wait()
    bench.details["killed_after_step"] = step
    resumed = subprocess.run(
        [sys.executable, "-m", "mnist", *args, "--resume"], env=env, capture_output=True, text=True
    )
    if resumed.returncode != 0:
        raise RuntimeError(f"resume exited {resumed.returncode}: {resumed.stderr.strip().splitlines()[-1:]}")
    from mnist.config import MnistConfig

    resumed_manifest = _newest_manifest(MnistConfig(artifact_dir=str(home / "mnist")))
    difference = _max_weight_difference(straight_manifest, resumed_manifest)
    return [
        Metric("test accuracy, in memory", accuracy["in memory"], "%"),
        Metric("test accuracy, streamed", accuracy["streamed"], "%"),
        Metric(
            "|streamed - in memory|", abs(accuracy["streamed"] - accuracy["in memory"]), "points", Target("<=", 0.3)
        ),
        Metric("training samples/s, in memory", rates["in memory"], "samples/s"),
        Metric("training samples/s, streamed", rates["streamed"], "samples/s"),
        Metric("max |weight| difference, killed + resumed vs straight", difference, "", Target("<=", 1e-5)),
    ]
