# MNIST / Fashion-MNIST TFX pipeline. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# GPU=1 (or a GPU that nvidia-smi sees): CUDA-enabled TensorFlow from the
# second lock; GPU=0 forces the CPU lock.
GPU     ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
LOCK    := $(if $(filter 1,$(GPU)),requirements-gpu.lock,requirements.lock)
STAMP   := $(VENV)/.installed-$(if $(filter 1,$(GPU)),gpu,cpu)
# Tests and the bench only (pytest, moto, selenium): never in the image.
DEV_LOCK := requirements-dev.lock
# The image is the CPU variant unless GPU=1 is given (`make image GPU=1`).
IMAGE_LOCK := $(if $(filter command line environment,$(origin GPU)),$(LOCK),requirements.lock)

# Settings of `run-local` (see README, "Settings") reach the runners as
# environment variables: make exports those given on its command line or in
# the environment; none is set here.

.PHONY: help install test test-fast browser run-local bench compile-kubeflow kubeflow image \
        submit-kubeflow models predict lock gpu-check clean

help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-17s %s\n", $$1, $$2}'
	@echo
	@echo "  e.g. make run-local DATASET=mnist DATA_DIR=/path/to/mnist-idx-files"
	@echo "       make models   (model presets and optimizers for MODEL= / OPTIMIZER=)"

install: $(STAMP)  ## create .venv (Python 3.10) from requirements.lock (GPU=1: requirements-gpu.lock) and requirements-dev.lock; idempotent

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# Python would otherwise recompile TensorFlow, TFX and Beam on every start
# (15 s instead of 6 s before a run's first line).

$(STAMP): $(LOCK) $(DEV_LOCK) setup.py
	@set -e; python310=$$(tools/find_python310.sh); \
	echo "using $$python310"; \
	[ -x $(PY) ] || $$python310 -m venv $(VENV); \
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) $(LOCK) $(DEV_LOCK); \
	$(UV) pip install --quiet --python $(PY) --no-deps -e .; \
	rm -f $(VENV)/.installed-*; touch $(STAMP); \
	echo "installed $(LOCK) and $(DEV_LOCK) into $(VENV)"

# Two lanes (pytest-xdist): tests that share a module-scoped fixture (a
# scenario's runs) stay together in one lane (tests/conftest.py), the rest go
# to whichever lane is free. TEST_LANES=1: one after the other, in process.
TEST_LANES ?= 2
PYTEST := $(PY) -m pytest $(if $(filter 1,$(TEST_LANES)),,-n $(TEST_LANES) --dist loadgroup)

test: install browser  ## run the test suite (what CI runs), in two lanes (TEST_LANES=)
	$(PYTEST) tests

test-fast: install  ## the tests marked neither e2e (whole DAG), slow nor browser (needs no Chromium): about 1 minute (make test runs all)
	$(PYTEST) -m "not e2e and not slow and not browser" tests

# The report's browser test drives Debian's Chromium through ChromeDriver.
browser:  ## install Debian's chromium and chromium-driver if missing (apt-get; root or sudo)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends chromium chromium-driver; }

run-local: install  ## run the whole DAG locally (DATASET=, DATA_DIR=, MODEL=, EPOCHS=, ...)
	$(PY) -m pipeline.local_runner

.PHONY: runs compare tensorboard
runs: install  ## the runs of OUTPUT_DIR, one row each (SORT=date|accuracy, JSON=1)
	@$(PY) -m mnist_tfx runs $(if $(SORT),--sort $(SORT)) $(if $(filter 1,$(JSON)),--json)

compare: install  ## train each of MODELS="a b ..." in turn, write OUTPUT_DIR/compare/compare.html (DATASET=, DATA_DIR=, ...)
	$(PY) -m mnist_tfx compare $(MODELS)

tensorboard: install  ## TensorBoard on OUTPUT_DIR: every run's curves, settings and results (HParams); TENSORBOARD_PORT=6006
	$(VENV)/bin/tensorboard --logdir "$(or $(OUTPUT_DIR),outputs)" --port $(or $(TENSORBOARD_PORT),6006)

models: install  ## list model presets and optimizers
	@$(PY) -m mnist_tfx models

predict: install  ## classify IMAGES="<idx file or PNGs>" with the pushed model (or MODEL_DIR=)
	@$(PY) -m mnist_tfx predict

compile-kubeflow: install  ## write build/<pipeline>.yaml, the KFP v2 spec (IMAGE=, PIPELINE_ROOT=, DATA_DIR=, TRAINER_GPUS=)
	$(PY) -m pipeline.kubeflow_runner

kubeflow: compile-kubeflow

image:  ## build the pipeline image with Docker (IMAGE=<registry>/mnist-tfx:<tag>; GPU=1: the CUDA variant)
	@[ -n "$(IMAGE)" ] || { echo "error: IMAGE is not set (make image IMAGE=<registry>/mnist-tfx:<tag>)"; exit 1; }
	@command -v docker >/dev/null || { echo "docker not found: build the image on a machine with Docker (docker build -t $(IMAGE) .)"; exit 1; }
	docker build -t $(IMAGE) --build-arg LOCK=$(IMAGE_LOCK) .

submit-kubeflow: install  ## start a run of the compiled spec, on the root it was compiled with (KFP_HOST=)
	$(PY) -m pipeline.kubeflow_runner submit

bench: install  ## ratios side by side: DAG vs plain Keras, reruns, 1x-8x scaling (BENCH_QUICK=1: smoke run)
	$(PY) -m tools.bench

lock: install  ## re-resolve requirements.in into requirements.lock; the GPU and dev locks with the same pins (needs PyPI)
	$(UV) pip compile requirements.in --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock
	$(UV) pip compile requirements-gpu.in -c requirements.lock \
	  --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
	  -o requirements-gpu.lock
	$(UV) pip compile requirements-dev.in -c requirements.lock \
	  --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
	  -o $(DEV_LOCK)

gpu-check: install  ## print the devices TensorFlow sees and a short CNN training throughput
	$(PY) -m components.trainer.gpu_check

clean:  ## remove outputs (pipeline roots, metadata, serving models) and .venv
	rm -rf outputs $(VENV) .pytest_cache
