"""Compiles the same DAG for Kubeflow Pipelines (v2 IR, via TFX's runner).

`make kubeflow IMAGE=<registry>/mnist-tfx:<tag> PIPELINE_ROOT=gs://...`
writes `build/<pipeline name>.json`; upload it to KFP (or Vertex Pipelines).
The image is built from this repo's Dockerfile, so the trainer module
(`components.trainer.task.run_fn`) and schemas are inside it. DATA_DIR must
be a path the cluster can read (gs://..., or a mounted volume).
"""
from __future__ import annotations

import dataclasses
import os
import sys

from pipeline import config as config_lib

DEFAULT_IMAGE = "mnist-tfx-pipeline:latest"
IMAGE_SCHEMAS_DIR = "/pipeline/schemas"  # where the Dockerfile puts schemas/


def compile_pipeline(config: config_lib.PipelineConfig, image: str,
                     pipeline_root: str, output_path: str) -> str:
  """Writes the KFP v2 pipeline spec JSON for `config`; returns its path."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top

  # Paths inside the container: outputs under the pipeline root.
  config = dataclasses.replace(config, output_dir=pipeline_root)
  dag = pipeline_lib.create_pipeline_from_config(
      config, schema_path=os.path.join(IMAGE_SCHEMAS_DIR, config.dataset,
                                       "schema.pbtxt"))
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image),
      output_dir=os.path.dirname(os.path.abspath(output_path)),
      output_filename=os.path.basename(output_path))
  runner.run(dag, write_out=True)
  return output_path


def main() -> int:
  config = config_lib.PipelineConfig.from_env()
  image = os.environ.get("IMAGE") or DEFAULT_IMAGE
  pipeline_root = os.environ.get("PIPELINE_ROOT") or "gs://YOUR-BUCKET/mnist-tfx"
  output = os.path.join(config_lib.REPO_ROOT, "build",
                        f"{config.pipeline_name}.json")
  compile_pipeline(config, image, pipeline_root, output)
  print(f"wrote {output} (image {image}, pipeline root {pipeline_root})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
