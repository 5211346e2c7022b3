"""Rows about inference: ``predict()`` on PyTorch eager and on ONNX Runtime (issue 5's export)."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.bench import Bench
from benchmarks.registry import Metric, NotAvailable, Target, row
from benchmarks.timing import median, time_per_call
from mnist.dataset import load_split
from mnist.model import mnist_classifier


def test_images(bench: Bench, count: int) -> np.ndarray:
    """Real MNIST test digits as uint8 (N, 28, 28), the form a user passes to predict()."""
    images, _ = load_split(bench.config("inference-data"), "test", count)
    return images[:, 0].numpy()


def us(seconds: list[float]) -> list[float]:
    return [s * 1e6 for s in seconds]


def batch1_latency(bench: Bench, predict, image: np.ndarray) -> list[float]:
    """Seconds per batch-1 call (each sample: a block of 200 calls)."""
    return time_per_call(lambda: predict(image), calls=200, blocks=bench.repeats(full=15, quick=5))


def batch_throughput(bench: Bench, predict, batch: np.ndarray) -> list[float]:
    """Images per second of whole-batch calls (each sample: a block of 10 calls)."""
    per_call = time_per_call(lambda: predict(batch), calls=10, blocks=bench.repeats(full=9, quick=3), warmup=3)
    return [len(batch) / s for s in per_call]


@row("predict_eager", "predict(), PyTorch eager, bundled weights", "report")
def predict_eager(bench: Bench) -> list[Metric]:
    model = mnist_classifier(pretrained=True)
    images = test_images(bench, 256)
    latency = batch1_latency(bench, model.predict, images[0])
    throughput = batch_throughput(bench, model.predict, images)
    x = torch.from_numpy(images[:1]).float().div_(255)[:, None]
    with torch.inference_mode():
        forward = batch1_latency(bench, model, x)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a thread pool costs more than it saves on one small image, and suffers most from load
    try:
        one_thread = batch1_latency(bench, model.predict, images[0])
    finally:
        torch.set_num_threads(threads)
    bench.details["torch_threads"] = threads
    return [
        Metric("batch 1 latency, predict()", median(us(latency)), "us", None, us(latency)),
        Metric("batch 1 latency, predict(), 1 thread", median(us(one_thread)), "us", None, us(one_thread)),
        Metric("batch 1 latency, forward only", median(us(forward)), "us", None, us(forward)),
        Metric("batch 256 throughput, predict()", median(throughput), "img/s", None, throughput),
    ]


@row("predict_onnxruntime", "predict(), ONNX Runtime, bundled weights exported", "batch 1 <= 50 us; 256: >= 50k img/s")
def predict_onnxruntime(bench: Bench) -> list[Metric]:
    try:
        import onnxruntime

        from mlpipes.commands import export_onnx, onnx_classifier
    except ImportError as e:
        raise NotAvailable(f"ONNX export not importable ({e}); it comes with issue 5 (branch web)") from None
    config = bench.config("onnx")
    export_onnx(config, weights="pretrained")
    images = test_images(bench, 256)
    single_thread = onnx_classifier(config, threads=1)  # the export's choice for small batches
    all_threads = onnx_classifier(config, threads=0)
    latency = batch1_latency(bench, single_thread.predict, images[0])
    throughput = batch_throughput(bench, all_threads.predict, images)
    x = np.ascontiguousarray(images[:1, None], dtype=np.float32) / 255
    session = batch1_latency(bench, single_thread.logits, x)
    # Eager in the same run, so the speed-up is a ratio measured under the same load.
    eager_latency = batch1_latency(bench, mnist_classifier(pretrained=True).predict, images[0])
    bench.details["onnxruntime"] = onnxruntime.__version__
    return [
        Metric("batch 1 latency, predict()", median(us(latency)), "us", Target("<=", 50), us(latency)),
        Metric("batch 1 latency, session.run only", median(us(session)), "us", None, us(session)),
        Metric("batch 256 throughput, predict()", median(throughput), "img/s", Target(">=", 50_000), throughput),
        Metric("batch 1 speed-up over eager predict()", median(eager_latency) / median(latency), "x"),
    ]
