"""Compiles the same DAG for Kubeflow Pipelines v2, and submits it.

`make compile-kubeflow IMAGE=<registry>/mnist-tfx:<tag> PIPELINE_ROOT=gs://...
DATA_DIR=gs://...` writes `build/<pipeline name>.yaml` (KFP v2 IR) with TFX's
KubeflowV2DagRunner; compiling reads no cloud storage and needs no cluster.
`make submit-kubeflow KFP_HOST=...` uploads that file and starts a run.

Every task runs in the image built from this repo's Dockerfile, so the
components and the trainer's `run_fn` import inside the pods. The baseline
comes from `LatestPushedModel` (serving directory), not a TFX Resolver, so the
spec runs on the open-source KFP backend as well as on Vertex AI Pipelines.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Dict

from pipeline import config as config_lib

IMAGE_SCHEMAS_DIR = "/pipeline/schemas"  # where the Dockerfile puts schemas/
TRAINER_NODE_ID = "Trainer"
POD_DOWNLOAD_CACHE_DIR = "/tmp/mnist-tfx"  # used when DATA_DIR is not set


def cluster_config(config: config_lib.PipelineConfig,
                   kubeflow: config_lib.KubeflowConfig
                   ) -> config_lib.PipelineConfig:
  """`config` with its outputs under the KFP pipeline root."""
  return dataclasses.replace(
      config, output_dir=kubeflow.pipeline_root,
      download_cache_dir=POD_DOWNLOAD_CACHE_DIR,
      serving_dir=config.serving_dir or kubeflow.pipeline_root.rstrip("/") +
      "/serving")


def build_pipeline(config: config_lib.PipelineConfig,
                   kubeflow: config_lib.KubeflowConfig):
  """The `create_pipeline` DAG with paths and resources of the cluster."""
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = cluster_config(config, kubeflow)
  dag = pipeline_lib.create_pipeline_from_config(
      config, schema_path=os.path.join(IMAGE_SCHEMAS_DIR, config.dataset,
                                       "schema.pbtxt"))
  if kubeflow.trainer_gpus:
    resources = (pipeline_spec_pb2.PipelineDeploymentConfig
                 .PipelineContainerSpec.ResourceSpec)
    trainer = next(c for c in dag.components if c.id == TRAINER_NODE_ID)
    trainer.with_platform_config(resources(
        accelerator=resources.AcceleratorConfig(
            type=kubeflow.gpu_resource, count=kubeflow.trainer_gpus)))
  return dag


def compile_pipeline_spec(config: config_lib.PipelineConfig,
                          kubeflow: config_lib.KubeflowConfig
                          ) -> Dict[str, Any]:
  """The KFP v2 `PipelineSpec` of the DAG, as a dict."""
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfp_v2  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  runner = kfp_v2.KubeflowV2DagRunner(
      config=kfp_v2.KubeflowV2DagRunnerConfig(
          default_image=kubeflow.image,
          # Schema 2.1 (`parameterType`), what the KFP 2.x backend expects.
          use_pipeline_spec_2_1=True))
  job = runner.run(build_pipeline(config, kubeflow), write_out=False)
  spec = job["pipelineSpec"]
  spec["defaultPipelineRoot"] = kubeflow.pipeline_root
  # The model in service changes between runs of one compiled spec.
  spec["root"]["dag"]["tasks"][pipeline_lib.BASELINE_NODE_ID][
      "cachingOptions"] = {"enableCache": False}
  return spec


def compile_pipeline(config: config_lib.PipelineConfig,
                     kubeflow: config_lib.KubeflowConfig,
                     output_path: str) -> str:
  """Writes the pipeline spec as KFP IR YAML to `output_path`."""
  import yaml  # pylint: disable=g-import-not-at-top
  spec = compile_pipeline_spec(config, kubeflow)
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  tmp = output_path + ".tmp"
  with open(tmp, "w") as f:
    f.write(f"# {spec['pipelineInfo']['name']}: compiled from "
            "pipeline.pipeline.create_pipeline by pipeline.kubeflow_runner\n")
    yaml.safe_dump(spec, f, sort_keys=True)
  os.replace(tmp, output_path)
  return output_path


def spec_path(config: config_lib.PipelineConfig) -> str:
  return os.path.join(config_lib.REPO_ROOT, "build",
                      f"{config.pipeline_name}.yaml")


def submit(path: str, kubeflow: config_lib.KubeflowConfig, client=None):
  """Starts a run of the compiled spec at `path` on `kubeflow.kfp_host`."""
  if client is None:
    if not kubeflow.kfp_host:
      raise ValueError("KFP_HOST is not set (e.g. KFP_HOST="
                       "http://localhost:8080 after port-forwarding ml-pipeline-ui)")
    import kfp  # pylint: disable=g-import-not-at-top
    client = kfp.Client(host=kubeflow.kfp_host)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no compiled spec; run make "
                            "compile-kubeflow first")
  return client.create_run_from_pipeline_package(
      path, arguments={}, experiment_name=kubeflow.experiment,
      pipeline_root=kubeflow.pipeline_root)


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    config = config_lib.PipelineConfig.from_env()
    kubeflow = config_lib.KubeflowConfig.from_env()
    path = spec_path(config)
    if argv[:1] == ["submit"]:
      try:
        run = submit(path, kubeflow)
      except (ValueError, FileNotFoundError):
        raise
      except Exception as e:  # pylint: disable=broad-except
        print(f"error: submitting to KFP at {kubeflow.kfp_host} failed: "
              f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}",
              file=sys.stderr)
        return 1
      print(f"submitted {path} to {kubeflow.kfp_host}: run "
            f"{getattr(run, 'run_id', run)}")
      return 0
    compile_pipeline(config, kubeflow, path)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  gpus = (f", Trainer requests {kubeflow.trainer_gpus} x "
          f"{kubeflow.gpu_resource}" if kubeflow.trainer_gpus else "")
  print(f"wrote {path} (image {kubeflow.image}, pipeline root "
        f"{kubeflow.pipeline_root}{gpus})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
