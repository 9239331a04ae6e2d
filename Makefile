# MNIST / Fashion-MNIST TFX pipeline. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
STAMP   := $(VENV)/.installed
UV_VERSION := 0.13.9

# Settings of `run-local` (see README "Configuration"); passed as environment.
export DATASET DATA_DIR TFDS_DATA_DIR DOWNLOAD_CACHE_DIR OUTPUT_DIR LINEAGE \
       RUNNER SEED TRAIN_FRACTION MAX_EXAMPLES MODEL OPTIMIZER LEARNING_RATE \
       EPOCHS BATCH_SIZE EARLY_STOPPING_PATIENCE REDUCE_LR_PATIENCE MIXED_PRECISION MIN_ACCURACY \
       MAX_ACCURACY_DROP STATS_SAMPLE_RATE ENABLE_CACHE VERBOSE \
       IMAGES MODEL_DIR IMAGE PIPELINE_ROOT

.PHONY: help install test run-local bench kubeflow models predict lock clean

help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "  e.g. make run-local DATASET=mnist DATA_DIR=/path/to/mnist-idx-files"
	@echo "       make models   (model presets and optimizers for MODEL= / OPTIMIZER=)"

install: $(STAMP)  ## create .venv (Python 3.10) from requirements.lock; idempotent

$(STAMP): requirements.lock setup.py
	@set -e; python310=$$(tools/find_python310.sh); \
	echo "using $$python310"; \
	[ -x $(PY) ] || $$python310 -m venv $(VENV); \
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	$(UV) pip sync --quiet --python $(PY) requirements.lock; \
	$(UV) pip install --quiet --python $(PY) --no-deps -e .; \
	touch $(STAMP); echo "installed into $(VENV)"

test: install  ## run the test suite (what CI runs)
	$(PY) -m pytest tests

run-local: install  ## run the whole DAG locally (DATASET=, DATA_DIR=, MODEL=, EPOCHS=, ...)
	$(PY) -m pipeline.local_runner

models: install  ## list model presets and optimizers
	@$(PY) -m pipeline.cli models

predict: install  ## classify IMAGES="<idx file or PNGs>" with the pushed model (or MODEL_DIR=)
	@$(PY) -m pipeline.cli predict

kubeflow: install  ## compile the Kubeflow Pipelines spec (IMAGE=, PIPELINE_ROOT=)
	$(PY) -m pipeline.kubeflow_runner

bench: install  ## benchmarks: ingestion, validation cost, trainer throughput
	$(PY) -m tests.bench

lock: install  ## re-resolve requirements.in into requirements.lock (needs uv, PyPI)
	$(UV) pip compile requirements.in --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:  ## remove outputs (pipeline roots, metadata, serving models) and .venv
	rm -rf outputs $(VENV) .pytest_cache
