"""The same DAG compiles to a KFP v2 spec that runs, without a cluster."""
import json
import os
import re
import subprocess

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.pusher import versioning
from components.trainer import hparams
from pipeline import config as config_lib
from pipeline import kubeflow_runner
from tests import kfp_local

REPO = config_lib.REPO_ROOT
IMAGE = "registry.example/mnist-tfx:1"
# The DAG's edges: every task and the tasks it must wait for.
EXPECTED_UPSTREAM = {
    "MnistExampleGen": set(),
    "ImportSchemaGen": set(),
    "StatisticsGen": {"MnistExampleGen"},
    "ExampleValidator": {"StatisticsGen", "ImportSchemaGen"},
    "ValidationGate": {"ExampleValidator"},
    "Trainer": {"MnistExampleGen", "ImportSchemaGen", "ValidationGate"},
    "LatestPushedModel": {"Trainer"},
    "Evaluator": {"MnistExampleGen", "Trainer", "LatestPushedModel"},
    "Pusher": {"Trainer", "Evaluator"},
}


def _compile(tmp_path, config=None, **kubeflow):
  config = config or config_lib.PipelineConfig(
      dataset="fashion_mnist", data_dir="gs://bucket/fashion")
  kubeflow = config_lib.KubeflowConfig(
      **{"image": IMAGE, "pipeline_root": "gs://bucket/root", **kubeflow})
  path = kubeflow_runner.compile_pipeline(config, kubeflow,
                                          str(tmp_path / "pipeline.yaml"))
  with open(path) as f:
    spec = yaml.safe_load(f)
  proto = pipeline_spec_pb2.PipelineSpec()
  json_format.ParseDict(spec, proto)  # strict: unknown fields raise
  return spec, proto


def _upstream(task):
  deps = set(task.get("dependentTasks", []))
  for artifact in task.get("inputs", {}).get("artifacts", {}).values():
    deps.add(artifact["taskOutputArtifact"]["producerTask"])
  return deps


def test_compiled_spec_has_the_dag_image_and_settings(tmp_path):
  spec, proto = _compile(tmp_path)
  assert proto.pipeline_info.name == "mnist-tfx-fashion-mnist"
  assert proto.schema_version == "2.1.0"
  assert proto.default_pipeline_root == "gs://bucket/root"
  tasks = spec["root"]["dag"]["tasks"]
  assert {name: _upstream(task) for name, task in tasks.items()} == \
      EXPECTED_UPSTREAM
  executors = spec["deploymentSpec"]["executors"]
  assert len(executors) == len(tasks)  # no resolver/importer tasks
  for executor in executors.values():
    container = executor["container"]
    assert container["image"] == IMAGE
    assert container["command"][-1] == (
        "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
    assert "resources" not in container  # no GPU unless asked for
  text = json.dumps(spec)
  assert "resolver" not in text.lower()
  # Settings reach the tasks as constants.
  constants = {(name, key): p["runtimeValue"]["constant"]
               for name, task in tasks.items()
               for key, p in task.get("inputs", {}).get("parameters",
                                                          {}).items()}
  assert constants["MnistExampleGen", "data_dir"] == "gs://bucket/fashion"
  assert constants["MnistExampleGen", "dataset"] == "fashion_mnist"
  assert constants["ImportSchemaGen", "schema_file"] == \
      "/pipeline/schemas/fashion_mnist/schema.pbtxt"
  assert constants["LatestPushedModel", "serving_model_dir"] == \
      "gs://bucket/root/serving/fashion_mnist"
  assert "gs://bucket/root/serving/fashion_mnist" in constants[
      "Pusher", "push_destination"]
  assert json.loads(constants["Trainer", "custom_config"])["model"] == \
      "dense_512"
  assert constants["Trainer", "run_fn"] == "components.trainer.task.run_fn"
  # The baseline lookup never comes from cache; everything else may.
  assert tasks["LatestPushedModel"]["cachingOptions"] == {"enableCache": False}
  assert all(t["cachingOptions"] == {"enableCache": True}
             for n, t in tasks.items() if n != "LatestPushedModel")


def test_gpu_request_is_on_the_trainer_only(tmp_path):
  spec, _ = _compile(tmp_path, trainer_gpus=2)
  executors = spec["deploymentSpec"]["executors"]
  assert executors["Trainer_executor"]["container"]["resources"] == {
      "accelerator": {"count": "2", "type": "nvidia.com/gpu"}}
  assert sum("resources" in e["container"] for e in executors.values()) == 1


def test_dockerfile_installs_the_locked_stack_and_the_package():
  dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
  assert re.search(r"^FROM python:3\.10", dockerfile, re.M)
  assert ("uv pip install --system --no-cache --compile-bytecode "
          "-r requirements.lock") in dockerfile
  assert "COPY schemas /pipeline/schemas" in dockerfile
  assert kubeflow_runner.IMAGE_SCHEMAS_DIR == "/pipeline/schemas"
  assert "TF_USE_LEGACY_KERAS=1" in dockerfile
  ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
  assert {".venv", "outputs", "build", ".git"} <= set(ignored)


def test_compile_kubeflow_command_and_submit(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(kubeflow_runner, "spec_path",
                      lambda config: str(tmp_path / "spec.yaml"))
  for name, value in {"DATASET": "mnist", "IMAGE": IMAGE,
                      "PIPELINE_ROOT": "s3://kfp/root", "TRAINER_GPUS": "1",
                      "KFP_HOST": "http://kfp.example"}.items():
    monkeypatch.setenv(name, value)
  assert kubeflow_runner.main([]) == 0
  assert "Trainer requests 1 x nvidia.com/gpu" in capsys.readouterr().out

  class FakeClient:
    def create_run_from_pipeline_package(self, path, **kwargs):
      self.call = (path, kwargs)
      return "run-1"
  client = FakeClient()
  kubeflow = config_lib.KubeflowConfig.from_env()
  assert kubeflow_runner.submit(str(tmp_path / "spec.yaml"), kubeflow,
                                client=client) == "run-1"
  assert client.call == (str(tmp_path / "spec.yaml"), {
      "arguments": {}, "experiment_name": "mnist-tfx",
      "pipeline_root": "s3://kfp/root"})
  monkeypatch.setenv("TRAINER_GPUS", "two")
  assert kubeflow_runner.main([]) == 1
  assert "TRAINER_GPUS='two' is not a valid int" in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_spec_runs_task_by_task_through_the_kfp_entrypoint(tmp_path):
  """Every task of the compiled spec runs through TFX's KFP v2 container
  entrypoint; a rerun of the tail finds the pushed model as baseline."""
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(
      dataset="mnist", data_dir=write_fake_dataset(tmp_path / "data"),
      min_accuracy=0.0,
      trainer=hparams.TrainerConfig(model="dense_100_relu", epochs=1))
  kubeflow = config_lib.KubeflowConfig(image=IMAGE,
                                       pipeline_root=str(tmp_path / "root"))
  spec = kubeflow_runner.compile_pipeline_spec(config, kubeflow)
  run = dict(path_map={kubeflow_runner.IMAGE_SCHEMAS_DIR:
                       os.path.join(REPO, "schemas")},
             env=dict(os.environ, TF_USE_LEGACY_KERAS="1"), log=lambda _: None)
  try:
    first = kfp_local.run_spec(spec, str(tmp_path / "run1"), **run)
  except subprocess.CalledProcessError as e:
    pytest.fail(e.stderr.decode()[-3000:])
  serving = str(tmp_path / "root" / "serving" / "mnist")
  assert first["LatestPushedModel"]["model"]["metadata"]["found"] == 0
  assert first["Evaluator"]["blessing"]["metadata"]["blessed"] == 1
  pushed = first["Pusher"]["pushed_model"]["metadata"]
  assert pushed["pushed"] == 1 and pushed["new_version"] == 1
  assert versioning.latest_version_dir(serving) == pushed["pushed_destination"]

  second = kfp_local.run_spec(
      spec, str(tmp_path / "run2"), **run, upstream=first,
      only=["LatestPushedModel", "Evaluator", "Pusher"])
  baseline = second["LatestPushedModel"]["model"]["metadata"]
  assert baseline["found"] == 1
  assert baseline["version_dir"] == pushed["pushed_destination"]
  assert baseline["source_model"] == first["Trainer"]["model"]["uri"]
  blessing = second["Evaluator"]["blessing"]["metadata"]
  assert blessing["blessed"] == 1  # the same model: no drop
  assert blessing["baseline_version_dir"] == pushed["pushed_destination"]
  assert second["Pusher"]["pushed_model"]["metadata"]["new_version"] == 0
  assert versioning.existing_versions(serving) == [
      int(pushed["pushed_version"])]
