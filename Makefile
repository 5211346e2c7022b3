# One entry point for humans and CI. `make demo` runs the main job, `make test` the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
PACKAGES := -e ./mlpipes -e ./mnist-pipeline -e ./ascii-letter-pipeline -e ./breast-cancer-pipeline

# Offline machines: MNIST comes from a local mirror folder when one is beside the repo.
ifeq ($(origin MNIST_MIRROR), undefined)
ifneq ($(wildcard ../shared/data/mnist/SHA256SUMS),)
export MNIST_MIRROR := $(abspath ../shared/data/mnist)
endif
endif

.PHONY: venv demo test lint pretrained pretrained-letters pretrained-breast-cancer bench clean web serve scaffold-check

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
test: venv lint web scaffold-check
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .

## scaffold-check: `mlpipes new` a standalone and a child (of mnist) package, install both, run their own tests
SCAFFOLD := build/scaffold
SCAFFOLDED := scaffold-demo-pipeline scaffold-child-pipeline
scaffold-check: venv
	$(BIN)/pip uninstall -y -q $(SCAFFOLDED) 2>/dev/null || true
	rm -rf $(SCAFFOLD)
	$(BIN)/mlpipes new $(SCAFFOLD)/scaffold-demo
	$(BIN)/mlpipes new $(SCAFFOLD)/scaffold-child --parent mnist
	$(PIP) --no-deps -e $(SCAFFOLD)/scaffold-demo -e $(SCAFFOLD)/scaffold-child
	$(BIN)/ruff check -q $(SCAFFOLD)
	status=0; for pkg in scaffold-demo scaffold-child; do \
	  $(BIN)/pytest -q -p no:cacheprovider $(SCAFFOLD)/$$pkg/tests || status=1; \
	done; $(BIN)/pip uninstall -y -q $(SCAFFOLDED); exit $$status

## pretrained: retrain the weights bundled in every pipeline package from its committed config
## (--force: the committed config names the bundled version, which this rebuilds on purpose)
pretrained: venv
	rm -rf build/pretrained
	$(BIN)/mnist save-datasets --config mnist-pipeline/src/mnist/configs/pretrained.yml --artifact-dir build/pretrained
	$(BIN)/mnist train-model --config mnist-pipeline/src/mnist/configs/pretrained.yml --artifact-dir build/pretrained --force
	rm -f mnist-pipeline/src/mnist/pretrained/mnist-*
	cp build/pretrained/weights/mnist-* mnist-pipeline/src/mnist/pretrained/
	$(MAKE) pretrained-letters
	$(MAKE) pretrained-breast-cancer

## pretrained-letters: retrain the letter weights (on the bundled MNIST features) from their committed config
## (its generator draws handwriting fonts from Debian: apt-get install $(cat mnist-pipeline/handwriting-fonts.txt))
## (four teachers, each on its own seeded draw of letters, then the bundled model distilled from them: ~12 min)
## (teachers 0-2 read the letter through one global average, teacher 3 through 4x4 cells: SEED:HEAD_GRID;
## the config's `teachers` lists build/pretrained-letters/teacher-SEED for these seeds: a test keeps the two in step)
LETTERS_CONFIG := ascii-letter-pipeline/src/ascii_letter/configs/pretrained.yml
LETTER_TEACHERS := 0:1 1:1 2:1 3:4
pretrained-letters: venv
	rm -rf build/pretrained-letters
	for teacher in $(LETTER_TEACHERS); do seed=$${teacher%:*}; grid=$${teacher#*:}; \
	  $(BIN)/ascii-letter save-datasets --config $(LETTERS_CONFIG) --seed $$seed \
	    --artifact-dir build/pretrained-letters/teacher-$$seed && \
	  $(BIN)/ascii-letter train-model --config $(LETTERS_CONFIG) --seed $$seed --teachers [] --augment false \
	    --epochs 8 --head-grid $$grid --model-version teacher --artifact-dir build/pretrained-letters/teacher-$$seed \
	    || exit 1; \
	done
	$(BIN)/ascii-letter save-datasets --config $(LETTERS_CONFIG) --artifact-dir build/pretrained-letters
	$(BIN)/ascii-letter train-model --config $(LETTERS_CONFIG) --artifact-dir build/pretrained-letters --force
	rm -f ascii-letter-pipeline/src/ascii_letter/pretrained/ascii_letter-*
	cp build/pretrained-letters/weights/ascii_letter-* ascii-letter-pipeline/src/ascii_letter/pretrained/

## pretrained-breast-cancer: retrain the breast-cancer weights (version 1.0.0, replacing the bundled ones) from their committed config
BC_BUILD := build/pretrained-breast-cancer
BC_PRETRAINED := breast-cancer-pipeline/src/breast_cancer/pretrained
pretrained-breast-cancer: venv
	rm -rf $(BC_BUILD) && rm -f $(BC_PRETRAINED)/breast_cancer-*
	$(BIN)/breast-cancer save-datasets --artifact-dir $(BC_BUILD)
	$(BIN)/breast-cancer train-model --config breast-cancer-pipeline/src/breast_cancer/configs/pretrained.yml \
	  --artifact-dir $(BC_BUILD) --model-version 1.0.0
	cp $(BC_BUILD)/weights/breast_cancer-* $(BC_PRETRAINED)/

## bench: the benchmark suite (not part of test): BENCH_QUICK=1 for fewer repeats, ROW="name ..." for some rows
bench: venv
	$(BIN)/python -m benchmarks $(ROW) $(if $(filter-out 0,$(BENCH_QUICK)),--quick)

clean:
	rm -rf build .pytest_cache .ruff_cache

## web: vendor ONNX Runtime Web from npm into web/vendor, export the bundled models into web/models.
## Each step reruns only when its inputs changed (the lock file, the bundled weights, the installed code).
ORT_WEB := web/node_modules/onnxruntime-web/dist
BUNDLED := $(wildcard */src/*/pretrained/*.json)
web: web/vendor/.vendored web/models/.exported

web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

web/vendor/.vendored: web/node_modules/.installed
	mkdir -p web/vendor
	cp $(ORT_WEB)/ort.wasm.min.mjs $(ORT_WEB)/ort-wasm-simd-threaded.mjs $(ORT_WEB)/ort-wasm-simd-threaded.wasm web/vendor/
	touch $@

web/models/.exported: $(VENV)/.installed $(BUNDLED)
	mkdir -p web/models && rm -f web/models/*.onnx && rm -rf build/web
	for pipeline in mnist ascii-letter; do \
	  dir=build/web/$$pipeline; \
	  if [ -x $(BIN)/$$pipeline ]; then \
	    $(BIN)/$$pipeline save-datasets --artifact-dir $$dir && \
	    $(BIN)/$$pipeline export-onnx --weights pretrained --artifact-dir $$dir && \
	    cp $$dir/weights/*.onnx web/models/ || exit 1; \
	  fi; \
	done
	touch $@

## serve: the web app and its models on http://127.0.0.1:8000/
serve: web
	$(BIN)/mlpipes serve --root web
