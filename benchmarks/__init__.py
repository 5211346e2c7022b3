"""Benchmarks of the mlpipes pipelines against their performance targets (``make bench``).

Each row is a small function in a registry (``benchmarks.registry``); ``python -m benchmarks``
runs them, prints a table and writes JSON. See docs/benchmarks.md.
"""
