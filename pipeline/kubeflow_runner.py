"""Compiles the same DAG for Kubeflow Pipelines v2, and submits it.

`make compile-kubeflow IMAGE=<registry>/mnist-tfx:<tag> PIPELINE_ROOT=gs://...
DATA_DIR=gs://...` writes `build/<pipeline name>.yaml` (KFP v2 IR) with TFX's
KubeflowV2DagRunner; compiling reads no cloud storage and needs no cluster,
and refuses settings a cluster cannot use (`check_cluster_settings`).
`make submit-kubeflow KFP_HOST=...` uploads that file and starts a run.

Every task runs in the image built from this repo's Dockerfile, through this
project's entrypoint (`pipeline.kubeflow_entrypoint`), so the same spec runs
on the open-source KFP 2.x backend and on Vertex AI Pipelines. The baseline
comes from `LatestPushedModel` (serving directory), not a TFX Resolver.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any, Dict, List, Optional

from components import storage
from components.evaluator import settings as gate_settings
from pipeline import config as config_lib
from pipeline import kubeflow_entrypoint

IMAGE_SCHEMAS_DIR = "/pipeline/schemas"  # where the Dockerfile puts schemas/
TRAINER_NODE_ID = "Trainer"
POD_DOWNLOAD_CACHE_DIR = "/tmp/mnist-tfx"  # used when DATA_DIR is not set
CLUSTER_SCHEMES = ("gs://", "s3://")  # what tf.io.gfile reads in the image
# Keys of KFP's MinIO secret (mlpipeline-minio-artifact) unless named.
DEFAULT_SECRET_KEYS = ("accesskey", "secretkey")
PLACEHOLDER_MARKS = ("YOUR-", "YOUR_", "<", ">")


def check_cluster_settings(config: config_lib.PipelineConfig,
                           kubeflow: config_lib.KubeflowConfig) -> None:
  """Raises ValueError, in one line naming the setting, for what would
  compile into a spec that cannot run on a cluster: a missing or placeholder
  image or pipeline root, or (without ALLOW_LOCAL_PATHS=1) a local path."""
  _check_image("IMAGE", kubeflow.image, "make image")
  if kubeflow.trainer_gpus:
    _check_image("GPU_IMAGE", kubeflow.gpu_image, "make image GPU=1",
                 why=f" (TRAINER_GPUS={kubeflow.trainer_gpus} needs the "
                 "CUDA variant of the image for the Trainer)")
  root = kubeflow.pipeline_root or ""
  if not root:
    raise ValueError("PIPELINE_ROOT is not set: where the cluster keeps "
                     "artifacts, e.g. PIPELINE_ROOT=gs://<bucket>/mnist-tfx "
                     "or s3://<bucket>/mnist-tfx")
  if any(mark in root for mark in PLACEHOLDER_MARKS):
    raise ValueError(f"PIPELINE_ROOT={root} is a placeholder: name your "
                     "bucket")
  paths = {"PIPELINE_ROOT": root, "DATA_DIR": config.ingestion.data_dir,
           "TFDS_DATA_DIR": config.ingestion.tfds_data_dir,
           "SERVING_DIR": config.serving_dir,
           "TUNE_FROM": config.tuner.tune_from}
  for setting, path in paths.items():
    if not path:
      continue
    if storage.is_remote(path):
      if not path.startswith(CLUSTER_SCHEMES):
        raise ValueError(
            f"{setting}={path}: the pods reach only "
            f"{' and '.join(CLUSTER_SCHEMES)} (for KFP's MinIO use s3://, "
            "see docs/storage.md)")
    elif not kubeflow.allow_local_paths:
      raise ValueError(
          f"{setting}={path} is a local path, which the cluster's pods cannot "
          f"read; use {' or '.join(CLUSTER_SCHEMES)}, or set "
          "ALLOW_LOCAL_PATHS=1 if a shared volume is mounted at that path in "
          "every pod")


def _check_image(setting: str, image: Optional[str], build: str,
                 why: str = "") -> None:
  if not image:
    raise ValueError(f"{setting} is not set{why}: build and push the image "
                     f"({build} IMAGE=<registry>/mnist-tfx:<tag>), then "
                     f"compile with {setting}= naming it")
  if any(mark in image for mark in PLACEHOLDER_MARKS):
    raise ValueError(f"{setting}={image} is a placeholder: name the image you "
                     "pushed")
  name_and_tag = image.rsplit("/", 1)[-1]
  if "@" not in name_and_tag and (":" not in name_and_tag or
                                  name_and_tag.endswith(":latest")):
    raise ValueError(f"{setting}={image} has no fixed tag: nodes keep "
                     "whatever ':latest' they pulled first; push and name a "
                     "version tag or a digest (<registry>/mnist-tfx:<tag>)")


def cluster_config(config: config_lib.PipelineConfig,
                   kubeflow: config_lib.KubeflowConfig
                   ) -> config_lib.PipelineConfig:
  """`config` with its outputs under the KFP pipeline root."""
  return dataclasses.replace(
      config, output_dir=kubeflow.pipeline_root,
      trainer=dataclasses.replace(config.trainer, gpus=kubeflow.trainer_gpus),
      ingestion=dataclasses.replace(config.ingestion,
                                    download_cache_dir=POD_DOWNLOAD_CACHE_DIR),
      serving_dir=config.serving_dir or kubeflow.pipeline_root.rstrip("/") +
      "/serving")


def build_pipeline(config: config_lib.PipelineConfig,
                   kubeflow: config_lib.KubeflowConfig):
  """The `create_pipeline` DAG with paths and resources of the cluster."""
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = cluster_config(config, kubeflow)
  dag = pipeline_lib.create_pipeline(
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
  check_cluster_settings(config, kubeflow)
  runner = kfp_v2.KubeflowV2DagRunner(
      config=kfp_v2.KubeflowV2DagRunnerConfig(
          default_image=kubeflow.image,
          # Schema 2.1 (`parameterType`), what the KFP 2.x backend expects.
          use_pipeline_spec_2_1=True))
  job = runner.run(build_pipeline(config, kubeflow), write_out=False)
  spec = job["pipelineSpec"]
  spec["defaultPipelineRoot"] = kubeflow.pipeline_root
  name_producer_tasks(spec)
  # Those never cached locally, and the baseline lookup: the model in
  # service changes between runs of one compiled spec.
  for node_id in (*pipeline_lib.UNCACHED_NODE_IDS,
                  pipeline_lib.BASELINE_NODE_ID):
    spec["root"]["dag"]["tasks"][node_id]["cachingOptions"] = {
        "enableCache": False}
  declare_kfp_types(spec)
  if kubeflow.trainer_gpus:
    spec["deploymentSpec"]["executors"][f"{TRAINER_NODE_ID}_executor"][
        "container"]["image"] = kubeflow.gpu_image
  for executor in spec["deploymentSpec"]["executors"].values():
    if "container" not in executor:  # the importer of TUNE_FROM
      continue
    command = executor["container"]["command"]
    assert command[-1] == kubeflow_entrypoint.TFX_ENTRYPOINT, command
    command[-1] = kubeflow_entrypoint.__name__
    env = s3_environment(kubeflow)
    if env:
      executor["container"]["env"] = env
  return spec


def name_producer_tasks(spec: Dict[str, Any]) -> None:
  """Points each task output parameter at its producer's task name. TFX
  1.16 writes `<node id>_task` there (its dynamic execution properties,
  here the data digest), but names the task `<node id>`, and KFP's driver
  fails with "cannot find producer task"."""
  tasks = spec["root"]["dag"]["tasks"]
  for task in tasks.values():
    for parameter in task.get("inputs", {}).get("parameters", {}).values():
      source = parameter.get("taskOutputParameter")
      if source and source["producerTask"] not in tasks:
        producer = source["producerTask"].removesuffix("_task")
        if producer not in tasks:
          raise ValueError(f"no task {source['producerTask']} in the spec")
        source["producerTask"] = producer
        if producer not in task.setdefault("dependentTasks", []):
          task["dependentTasks"].append(producer)


def declare_kfp_types(spec: Dict[str, Any]) -> None:
  """Declares our `system.*` artifacts (metrics, confusion matrix, HTML and
  Markdown report) by schema title, as the KFP SDK does, so the KFP UI and
  Vertex AI show them; TFX's compiler writes every custom type as an
  instance schema."""
  import yaml  # pylint: disable=g-import-not-at-top
  from components import artifact_types  # pylint: disable=g-import-not-at-top
  titles = {cls.TYPE_NAME for cls in artifact_types.KFP_TYPES}
  for component in spec["components"].values():
    for side in ("inputDefinitions", "outputDefinitions"):
      for definition in component.get(side, {}).get("artifacts", {}).values():
        artifact_type = definition["artifactType"]
        schema = artifact_type.get("instanceSchema")
        title = yaml.safe_load(schema).get("title") if schema else None
        if title in titles:
          definition["artifactType"] = {"schemaTitle": title,
                                        "schemaVersion": "0.0.1"}


def s3_environment(kubeflow: config_lib.KubeflowConfig) -> List[Dict[str, str]]:
  """Container environment for S3-compatible storage (none if unset)."""
  if not kubeflow.s3_endpoint_url:
    return []
  env = {"AWS_ENDPOINT_URL": kubeflow.s3_endpoint_url,
         "AWS_REGION": kubeflow.s3_region}
  return [{"name": k, "value": v} for k, v in env.items()]


def platform_spec(spec: Dict[str, Any], kubeflow: config_lib.KubeflowConfig
                  ) -> Optional[Dict[str, Any]]:
  """The Kubernetes platform spec (the YAML's second document) that puts the
  S3 credentials secret into every task's environment, or None."""
  if not kubeflow.s3_credentials_secret:
    return None
  name, *keys = kubeflow.s3_credentials_secret.split(":")
  if len(keys) not in (0, 2) or not name or not all(keys):
    raise ValueError(f"S3_CREDENTIALS_SECRET={kubeflow.s3_credentials_secret}"
                     ": use <secret name> or <secret name>:<access key key>:"
                     "<secret key key>")
  access, secret = keys or DEFAULT_SECRET_KEYS
  secret_as_env = [{"secretName": name, "keyToEnv": [
      {"secretKey": access, "envVar": "AWS_ACCESS_KEY_ID"},
      {"secretKey": secret, "envVar": "AWS_SECRET_ACCESS_KEY"}]}]
  return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
      label: {"secretAsEnv": secret_as_env}
      for label, executor in spec["deploymentSpec"]["executors"].items()
      if "container" in executor}}}}}


def compile_pipeline(config: config_lib.PipelineConfig,
                     kubeflow: config_lib.KubeflowConfig,
                     output_path: str) -> str:
  """Writes the pipeline spec as KFP IR YAML to `output_path`."""
  import yaml  # pylint: disable=g-import-not-at-top
  spec = compile_pipeline_spec(config, kubeflow)
  platform = platform_spec(spec, kubeflow)
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  tmp = output_path + ".tmp"
  with open(tmp, "w") as f:
    f.write(f"# {spec['pipelineInfo']['name']}: compiled from "
            "pipeline.pipeline.create_pipeline by pipeline.kubeflow_runner\n")
    yaml.safe_dump_all([spec] + ([platform] if platform else []), f,
                       sort_keys=True)
  os.replace(tmp, output_path)
  return output_path


def spec_path(config: config_lib.PipelineConfig) -> str:
  return os.path.join(config_lib.REPO_ROOT, "build",
                      f"{config.pipeline_name}.yaml")


def _load_spec(path: str) -> Dict[str, Any]:
  """The pipeline spec (the first YAML document) at `path`."""
  import yaml  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    return next(yaml.safe_load_all(f))


def compiled_root(path: str) -> str:
  """The pipeline root the spec at `path` was compiled with."""
  return _load_spec(path)["defaultPipelineRoot"]


def compiled_gate(path: str) -> Dict[str, Any]:
  """The gate settings (`GateSettings`' fields) the spec at `path` was
  compiled with, from its Report's run settings."""
  spec = _load_spec(path)
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  parameter = spec["root"]["dag"]["tasks"][pipeline_lib.REPORT_NODE_ID][
      "inputs"]["parameters"]["run_settings"]["runtimeValue"]["constant"]
  settings = json.loads(parameter)["settings"]
  return {field.name: settings.get(field.name)
          for field in dataclasses.fields(gate_settings.GateSettings)}


def _gate_differences(compiled: Dict[str, Any],
                      gate: gate_settings.GateSettings) -> List[str]:
  names = dict(gate_settings.ENV_NAMES, allow_loose_gate="ALLOW_LOOSE_GATE")
  now = dataclasses.asdict(gate)
  def shown(value):
    return "the default" if value is None else repr(value)
  return [f"{names[field]}={shown(compiled[field])} (this submit: "
          f"{shown(now[field])})"
          for field in names if compiled.get(field) != now[field]]


def submit(path: str, kubeflow: config_lib.KubeflowConfig, client=None,
           gate: Optional[gate_settings.GateSettings] = None):
  """Starts a run of the compiled spec at `path` on `kubeflow.kfp_host`, with
  the pipeline root it was compiled with. Given `gate` (this submit's gate
  settings), refuses a spec compiled with other ones: a spec compiled with
  `ALLOW_LOOSE_GATE=1 MIN_ACCURACY=0` under the production name is not
  submitted by a plain `make submit-kubeflow`."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no compiled spec; run make "
                            "compile-kubeflow first")
  if gate is not None:
    differences = _gate_differences(compiled_gate(path), gate)
    if differences:
      raise ValueError(f"{path} was compiled with another gate: "
                       f"{', '.join(differences)}; submit with the settings "
                       "it was compiled with, or recompile with make "
                       "compile-kubeflow")
  root = compiled_root(path)
  if kubeflow.pipeline_root and kubeflow.pipeline_root != root:
    raise ValueError(f"PIPELINE_ROOT={kubeflow.pipeline_root} differs from "
                     f"the root {path} was compiled with ({root}); recompile "
                     "with make compile-kubeflow, or leave PIPELINE_ROOT unset")
  if client is None:
    if not kubeflow.kfp_host:
      raise ValueError("KFP_HOST is not set (e.g. KFP_HOST="
                       "http://localhost:8080 after port-forwarding ml-pipeline-ui)")
    import kfp  # pylint: disable=g-import-not-at-top
    client = kfp.Client(host=kubeflow.kfp_host)
  return client.create_run_from_pipeline_package(
      path, arguments={}, experiment_name=kubeflow.experiment,
      pipeline_root=root)


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    config = config_lib.PipelineConfig.from_env()
    kubeflow = config_lib.KubeflowConfig.from_env()
    path = spec_path(config)
    if argv[:1] == ["submit"]:
      try:
        run = submit(path, kubeflow, gate=config.gate)
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
          f"{kubeflow.gpu_resource} in {kubeflow.gpu_image}"
          if kubeflow.trainer_gpus else "")
  print(f"wrote {path} (image {kubeflow.image}, pipeline root "
        f"{kubeflow.pipeline_root}{gpus})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
