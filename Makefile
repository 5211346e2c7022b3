# One entry point for humans and CI. `make demo` runs the main job, `make test` the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
PACKAGES := -e ./mlpipes -e ./mnist-pipeline

# Offline machines: MNIST comes from a local mirror folder when one is beside the repo.
ifeq ($(origin MNIST_MIRROR), undefined)
ifneq ($(wildcard ../shared/data/mnist/SHA256SUMS),)
export MNIST_MIRROR := $(abspath ../shared/data/mnist)
endif
endif

.PHONY: venv demo test lint pretrained bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: constraints.txt requirements-dev.txt */pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) $(PACKAGES) -r requirements-dev.txt
	touch $@

## demo: set up, then save-datasets -> train-model -> evaluate (artifacts in ~/.mlpipes/mnist)
demo: venv
	$(BIN)/mnist save-datasets
	$(BIN)/mnist train-model
	$(BIN)/mnist evaluate --weights trained

## test: set up, then lint and run every test
test: venv lint
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .

## pretrained: retrain the weights bundled in the mnist package from its committed config
pretrained: venv
	rm -rf build/pretrained
	$(BIN)/mnist save-datasets --artifact-dir build/pretrained
	$(BIN)/mnist train-model --config mnist-pipeline/src/mnist/configs/pretrained.yml --artifact-dir build/pretrained
	cp build/pretrained/weights/mnist-* mnist-pipeline/src/mnist/pretrained/

## bench: the benchmark suite (not part of test): BENCH_QUICK=1 for fewer repeats, ROW="name ..." for some rows
bench: venv
	$(BIN)/python -m benchmarks $(ROW) $(if $(filter-out 0,$(BENCH_QUICK)),--quick)

clean:
	rm -rf build .pytest_cache .ruff_cache
