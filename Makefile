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
       MAX_ACCURACY_DROP STATS_SAMPLE_RATE ENABLE_CACHE NO_CACHE RERUN_FROM VERBOSE \
       TUNE TUNE_TRIALS TUNE_EPOCHS TUNE_ALGORITHM TUNE_FAMILIES TUNE_FROM \
       IMAGES MODEL_DIR SERVING_DIR \
       IMAGE PIPELINE_ROOT TRAINER_GPUS GPU_RESOURCE KFP_HOST KFP_EXPERIMENT \
       ALLOW_LOCAL_PATHS BEAM_PIPELINE_ARGS

.PHONY: help install test run-local bench compile-kubeflow kubeflow image \
        submit-kubeflow models predict lock clean

help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-17s %s\n", $$1, $$2}'
	@echo
	@echo "  e.g. make run-local DATASET=mnist DATA_DIR=/path/to/mnist-idx-files"
	@echo "       make models   (model presets and optimizers for MODEL= / OPTIMIZER=)"

install: $(STAMP)  ## create .venv (Python 3.10) from requirements.lock; idempotent

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# Python would otherwise recompile TensorFlow, TFX and Beam on every start
# (15 s instead of 6 s before a run's first line).

$(STAMP): requirements.lock setup.py
	@set -e; python310=$$(tools/find_python310.sh); \
	echo "using $$python310"; \
	[ -x $(PY) ] || $$python310 -m venv $(VENV); \
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) requirements.lock; \
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

compile-kubeflow: install  ## write build/<pipeline>.yaml, the KFP v2 spec (IMAGE=, PIPELINE_ROOT=, DATA_DIR=, TRAINER_GPUS=)
	$(PY) -m pipeline.kubeflow_runner

kubeflow: compile-kubeflow

image:  ## build the pipeline image with Docker (IMAGE=<registry>/mnist-tfx:<tag>)
	@[ -n "$(IMAGE)" ] || { echo "error: IMAGE is not set (make image IMAGE=<registry>/mnist-tfx:<tag>)"; exit 1; }
	@command -v docker >/dev/null || { echo "docker not found: build the image on a machine with Docker (docker build -t $(IMAGE) .)"; exit 1; }
	docker build -t $(IMAGE) .

submit-kubeflow: install  ## start a run of the compiled spec, on the root it was compiled with (KFP_HOST=)
	$(PY) -m pipeline.kubeflow_runner submit

bench: install  ## benchmarks: ingestion, validation cost, trainer throughput
	$(PY) -m tests.bench

lock: install  ## re-resolve requirements.in into requirements.lock (needs uv, PyPI)
	$(UV) pip compile requirements.in --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:  ## remove outputs (pipeline roots, metadata, serving models) and .venv
	rm -rf outputs $(VENV) .pytest_cache
