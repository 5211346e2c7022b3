"""The benchmark rows; importing this package registers them all, in the issue's table order."""

# isort: off
from benchmarks.rows import training, data, streaming, inference, web, previous, transfer, augment, handwriting  # noqa: F401
