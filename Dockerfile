# Container image for the Kubeflow run of the pipeline (`make kubeflow`).
# Build: docker build -t <registry>/mnist-tfx:<tag> .
FROM python:3.10-slim
WORKDIR /pipeline
COPY requirements.lock setup.py ./
RUN pip install --no-cache-dir "uv==0.13.9" \
 && uv pip install --system --no-cache -r requirements.lock
COPY components ./components
COPY pipeline ./pipeline
COPY schemas ./schemas
RUN uv pip install --system --no-deps -e .
ENV TF_USE_LEGACY_KERAS=1 PYTHONUNBUFFERED=1
# TFX's KFP v2 launcher is the entrypoint the compiled spec calls.
ENTRYPOINT ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
