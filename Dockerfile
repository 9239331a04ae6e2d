# The image every Kubeflow task runs in (`make image`, then `make
# compile-kubeflow IMAGE=...`). It holds exactly the stack `make test` tests:
# Python 3.10 and requirements.lock, then this package (components/,
# pipeline/) and the schemas at /pipeline/schemas. A slim Python base is used
# rather than gcr.io/tfx-oss-public/tfx:1.16.0 (several GB, with its own
# dependency set); the lock already pins TFX 1.16.0 and its launcher.
FROM python:3.10-slim
WORKDIR /pipeline
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2
# LOCK=requirements-gpu.lock (`make image GPU=1`): the GPU variant, with
# CUDA-enabled TensorFlow and NVIDIA's CUDA/cuDNN wheels (GPU_IMAGE=).
ARG LOCK=requirements.lock
COPY ${LOCK} ./requirements.lock
RUN pip install --no-cache-dir "uv==0.13.9" \
 && uv pip install --system --no-cache --compile-bytecode -r requirements.lock
COPY setup.py ./
COPY components ./components
COPY pipeline ./pipeline
COPY serving ./serving
COPY mnist_tfx.py ./
COPY schemas /pipeline/schemas
RUN uv pip install --system --no-cache --no-deps . \
 && python -c "import components.trainer.task, pipeline.pipeline"
# Every compiled task runs `python -m pipeline.kubeflow_entrypoint` (TFX's KFP
# v2 executor entrypoint, made to accept the open-source KFP driver's
# artifact hand-over); `docker run IMAGE --executor_class_path ...` does too.
ENTRYPOINT ["python", "-m", "pipeline.kubeflow_entrypoint"]
