"""The same DAG compiles to a KFP v2 spec that runs, without a cluster."""
import dataclasses
import functools
import json
import os
import re
import subprocess

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.evaluator.settings import GateSettings
from components.ingestion.settings import IngestionSettings
from components.report import summary as report_lib
from components.trainer import hparams
from pipeline import config as config_lib
from pipeline import kubeflow_entrypoint
from pipeline import kubeflow_runner
from pipeline import local_runner
from serving import versions
from tests.components.report.test_hparams_session import read_hparams
from tools import kfp_emulator

REPO = config_lib.REPO_ROOT
IMAGE = "registry.example/mnist-tfx:1"
GPU_IMAGE = "registry.example/mnist-tfx:1-gpu"
# The DAG's edges: every task and the tasks it must wait for.
EXPECTED_UPSTREAM = {
    "DataFingerprint": set(),
    "MnistExampleGen": {"DataFingerprint"},
    "ImportSchemaGen": set(),
    "StatisticsGen": {"MnistExampleGen"},
    "ExampleValidator": {"StatisticsGen", "ImportSchemaGen"},
    "ValidationGate": {"ExampleValidator"},
    "Trainer": {"MnistExampleGen", "ImportSchemaGen"},
    "LatestPushedModel": {"Trainer"},
    "Evaluator": {"MnistExampleGen", "Trainer", "LatestPushedModel",
                  "ImportSchemaGen"},
    "Pusher": {"Trainer", "Evaluator", "ValidationGate"},
    "TestSplitScorer": {"MnistExampleGen", "Trainer", "LatestPushedModel",
                        "Evaluator"},
    "Report": {"MnistExampleGen", "Trainer", "Evaluator", "Pusher",
               "TestSplitScorer"},
}


def _compile(tmp_path, config=None, **kubeflow):
  config = config or config_lib.PipelineConfig(
      dataset="fashion_mnist",
      ingestion=IngestionSettings(data_dir="gs://bucket/fashion"))
  kubeflow = config_lib.KubeflowConfig(
      **{"image": IMAGE, "pipeline_root": "gs://bucket/root", **kubeflow})
  spec, proto, _ = _compile_file(tmp_path, config, kubeflow)
  return spec, proto


def _compile_file(tmp_path, config, kubeflow):
  """Compiles to YAML as `make compile-kubeflow` does; returns the pipeline
  spec (dict and strictly parsed proto) and the platform spec (or None)."""
  path = kubeflow_runner.compile_pipeline(config, kubeflow,
                                          str(tmp_path / "pipeline.yaml"))
  with open(path) as f:
    spec, *platform = yaml.safe_load_all(f)
  proto = pipeline_spec_pb2.PipelineSpec()
  json_format.ParseDict(spec, proto)  # strict: unknown fields raise
  for document in platform:  # what kfp's client reads as the PlatformSpec
    json_format.ParseDict(document, pipeline_spec_pb2.PlatformSpec())
  return spec, proto, platform[0] if platform else None


def _upstream(task):
  deps = set(task.get("dependentTasks", []))
  for artifact in task.get("inputs", {}).get("artifacts", {}).values():
    deps.add(artifact["taskOutputArtifact"]["producerTask"])
  for parameter in task.get("inputs", {}).get("parameters", {}).values():
    if "taskOutputParameter" in parameter:
      deps.add(parameter["taskOutputParameter"]["producerTask"])
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
    assert container["command"] == [
        "python", "-m", "pipeline.kubeflow_entrypoint"]
    assert "--json_serialized_inputs_spec_args" in container["args"]
    assert "resources" not in container  # no GPU unless asked for
  text = json.dumps(spec)
  assert "resolver" not in text.lower()
  # Settings reach the tasks as constants.
  constants = {(name, key): p["runtimeValue"]["constant"]
               for name, task in tasks.items()
               for key, p in task.get("inputs", {}).get("parameters",
                                                          {}).items()
               if "runtimeValue" in p}
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
  # The data's digest is read by each run, the ingestion keyed by it.
  assert constants["DataFingerprint", "data_dir"] == "gs://bucket/fashion"
  assert tasks["MnistExampleGen"]["inputs"]["parameters"]["data_digest"] == {
      "taskOutputParameter": {"producerTask": "DataFingerprint",
                              "outputParameterKey": "digest"}}
  # The data's digest, the baseline lookup, the push (checked against the
  # serving directory every run) and the report never come from cache; the
  # rest may.
  uncached = {"DataFingerprint", "LatestPushedModel", "Pusher", "Report"}
  for name, task in tasks.items():
    assert task["cachingOptions"] == {"enableCache": name not in uncached}
  # Metrics and the report as KFP's own types, which its UI displays.
  outputs = {(name, key): a["artifactType"]
             for name, c in spec["components"].items()
             for key, a in c.get("outputDefinitions", {}).get(
                 "artifacts", {}).items()}
  kfp_types = {("TestSplitScorer", "metrics"): "system.Metrics",
               ("TestSplitScorer", "confusion_matrix"):
                   "system.ClassificationMetrics",
               ("Report", "report_html"): "system.HTML",
               ("Report", "report_markdown"): "system.Markdown"}
  for (task, key), title in kfp_types.items():
    assert outputs[f"{task}", key] == {"schemaTitle": title,
                                       "schemaVersion": "0.0.1"}


def test_gpu_request_is_on_the_trainer_only(tmp_path):
  """TRAINER_GPUS: the Trainer alone requests GPUs, runs in the CUDA image,
  and is told to fail rather than train on the CPU if it sees none."""
  spec, _ = _compile(tmp_path, trainer_gpus=2, gpu_image=GPU_IMAGE)
  executors = spec["deploymentSpec"]["executors"]
  trainer = executors["Trainer_executor"]["container"]
  assert trainer["resources"] == {
      "accelerator": {"count": "2", "type": "nvidia.com/gpu"}}
  assert trainer["image"] == GPU_IMAGE
  assert sum("resources" in e["container"] for e in executors.values()) == 1
  assert {e["container"]["image"] for name, e in executors.items()
          if name != "Trainer_executor"} == {IMAGE}
  constants = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
  assert json.loads(constants["custom_config"]["runtimeValue"]["constant"])[
      "gpus"] == 2


def test_dockerfile_installs_the_locked_stack_and_the_package():
  dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
  assert re.search(r"^FROM python:3\.10", dockerfile, re.M)
  assert ("uv pip install --system --no-cache --compile-bytecode "
          "-r requirements.lock") in dockerfile
  assert "COPY schemas /pipeline/schemas" in dockerfile
  assert kubeflow_runner.IMAGE_SCHEMAS_DIR == "/pipeline/schemas"
  assert "TF_USE_LEGACY_KERAS=1" in dockerfile
  assert ('ENTRYPOINT ["python", "-m", "pipeline.kubeflow_entrypoint"]'
          in dockerfile)
  ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
  assert {".venv", "outputs", "build", ".git"} <= set(ignored)


def test_compile_kubeflow_command_and_submit(tmp_path, monkeypatch, capsys):
  spec_file = str(tmp_path / "spec.yaml")
  monkeypatch.setattr(kubeflow_runner, "spec_path", lambda config: spec_file)
  for name, value in {"DATASET": "mnist", "IMAGE": IMAGE,
                      "PIPELINE_ROOT": "s3://kfp/root", "TRAINER_GPUS": "1",
                      "GPU_IMAGE": GPU_IMAGE,
                      "KFP_HOST": "http://kfp.example"}.items():
    monkeypatch.setenv(name, value)
  assert kubeflow_runner.main([]) == 0
  assert (f"Trainer requests 1 x nvidia.com/gpu in {GPU_IMAGE}"
          in capsys.readouterr().out)

  class FakeClient:
    def create_run_from_pipeline_package(self, path, **kwargs):
      self.call = (path, kwargs)
      return "run-1"
  client = FakeClient()
  # Submitted with the root it was compiled with, whatever is set now.
  monkeypatch.delenv("PIPELINE_ROOT")
  kubeflow = config_lib.KubeflowConfig.from_env()
  assert kubeflow_runner.submit(spec_file, kubeflow, client=client) == "run-1"
  assert client.call == (spec_file, {
      "arguments": {}, "experiment_name": "mnist-tfx",
      "pipeline_root": "s3://kfp/root"})
  monkeypatch.setenv("PIPELINE_ROOT", "s3://kfp/other")
  with pytest.raises(ValueError, match=r"PIPELINE_ROOT=s3://kfp/other "
                     r"differs from the root .* compiled with \(s3://kfp/root"):
    kubeflow_runner.submit(spec_file, config_lib.KubeflowConfig.from_env(),
                           client=client)
  monkeypatch.setenv("TRAINER_GPUS", "two")
  assert kubeflow_runner.main([]) == 1
  assert "TRAINER_GPUS='two' is not a valid int" in capsys.readouterr().err


def test_submit_refuses_a_spec_compiled_with_another_gate(
    tmp_path, monkeypatch, capsys):
  """A spec compiled with `ALLOW_LOOSE_GATE=1 MIN_ACCURACY=0` has the
  production name: a later plain `make submit-kubeflow` refuses it in one
  line (before: it submitted it, and the loosened gate pushed into the
  production lineage); with the same settings it is submitted."""
  spec_file = str(tmp_path / "spec.yaml")
  monkeypatch.setattr(kubeflow_runner, "spec_path", lambda config: spec_file)
  loose = {"DATASET": "mnist", "IMAGE": IMAGE,
           "PIPELINE_ROOT": "s3://kfp/root", "MIN_ACCURACY": "0",
           "ALLOW_LOOSE_GATE": "1"}
  for name, value in loose.items():
    monkeypatch.setenv(name, value)
  assert kubeflow_runner.main([]) == 0
  for name in ("MIN_ACCURACY", "ALLOW_LOOSE_GATE", "PIPELINE_ROOT"):
    monkeypatch.delenv(name)
  monkeypatch.setenv("KFP_HOST", "http://kfp.example")
  submitted = []

  class FakeClient:
    def create_run_from_pipeline_package(self, path, **kwargs):
      submitted.append(path)
      return "run-1"
  monkeypatch.setattr(kubeflow_runner, "submit", functools.partial(
      kubeflow_runner.submit, client=FakeClient()))
  capsys.readouterr()
  assert kubeflow_runner.main(["submit"]) == 1
  assert capsys.readouterr().err == (
      f"error: {spec_file} was compiled with another gate: MIN_ACCURACY=0.0 "
      "(this submit: the default), ALLOW_LOOSE_GATE=True (this submit: "
      "False); submit with the settings it was compiled with, or recompile "
      "with make compile-kubeflow\n")
  assert submitted == []
  monkeypatch.setenv("MIN_ACCURACY", "0")
  monkeypatch.setenv("ALLOW_LOOSE_GATE", "1")
  assert kubeflow_runner.main(["submit"]) == 0
  assert submitted == [spec_file]


@pytest.mark.parametrize("env, refusal", [
    ({"IMAGE": ""}, "IMAGE is not set"),
    ({"IMAGE": "mnist-tfx-pipeline:latest"}, "has no fixed tag"),
    ({"IMAGE": "registry.example/mnist-tfx"}, "has no fixed tag"),
    ({"IMAGE": "<registry>/mnist-tfx:<tag>"}, "IMAGE=<registry>/mnist-tfx:<tag> "
     "is a placeholder"),
    ({"PIPELINE_ROOT": ""}, "PIPELINE_ROOT is not set"),
    ({"PIPELINE_ROOT": "gs://YOUR-BUCKET/mnist-tfx"}, "is a placeholder"),
    ({"PIPELINE_ROOT": "/home/me/kfp"}, "PIPELINE_ROOT=/home/me/kfp is a local "
     "path"),
    ({"DATA_DIR": "/data/mnist"}, "DATA_DIR=/data/mnist is a local path"),
    ({"SERVING_DIR": "/srv/models"}, "SERVING_DIR=/srv/models is a local path"),
    ({"TFDS_DATA_DIR": "/tfds"}, "TFDS_DATA_DIR=/tfds is a local path"),
    ({"PIPELINE_ROOT": "minio://mlpipeline/x"}, "the pods reach only gs:// "
     "and s3://"),
    ({"TRAINER_GPUS": "1"}, "GPU_IMAGE is not set (TRAINER_GPUS=1 needs the "
     "CUDA variant"),
    ({"TRAINER_GPUS": "1", "GPU_IMAGE": "r/mnist-tfx:latest"},
     "GPU_IMAGE=r/mnist-tfx:latest has no fixed tag"),
])
def test_compile_refuses_what_a_cluster_cannot_use(tmp_path, monkeypatch,
                                                  capsys, env, refusal):
  spec_file = tmp_path / "spec.yaml"
  monkeypatch.setattr(kubeflow_runner, "spec_path",
                      lambda config: str(spec_file))
  settings = {"DATASET": "mnist", "IMAGE": IMAGE,
              "PIPELINE_ROOT": "gs://bucket/root", "DATA_DIR": "gs://b/mnist"}
  settings.update(env)
  for name, value in settings.items():
    monkeypatch.setenv(name, value)
  assert kubeflow_runner.main([]) == 1
  err = capsys.readouterr().err
  assert refusal in err and len(err.strip().splitlines()) == 1
  assert not spec_file.exists()
  if "local path" in refusal:  # the explicit opt-in for a shared volume
    monkeypatch.setenv("ALLOW_LOCAL_PATHS", "1")
    assert kubeflow_runner.main([]) == 0
    assert spec_file.exists()


@pytest.fixture(scope="session")
def installed_copy(tmp_path_factory):
  """This project installed non-editably, as in the image (once per test
  lane: the emulated runs spread over both)."""
  target = str(tmp_path_factory.mktemp("image"))
  kfp_emulator.install_package(REPO, target)
  return target


def _emulate(spec, root, mode, installed_copy, cache=None, until=None):
  return kfp_emulator.run_spec(
      spec, root, mode=mode, install_dir=installed_copy,
      path_map={kubeflow_runner.IMAGE_SCHEMAS_DIR:
                os.path.join(installed_copy, "schemas")},
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cache=cache,
      log=lambda _: None, until=until)


def _fake_run_config(tmp_path, gz=True, **trainer):
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  return config_lib.PipelineConfig(
      dataset="mnist", ingestion=IngestionSettings(
          data_dir=write_fake_dataset(tmp_path / "data", gz=gz)),
      gate=GateSettings(min_accuracy=0.0), trainer=hparams.TrainerConfig(
          model="dense_100_relu", **{"epochs": 2, **trainer}))


def _fake_run_spec(tmp_path, **trainer):
  kubeflow = config_lib.KubeflowConfig(
      image=IMAGE, pipeline_root=str(tmp_path / "root"),
      allow_local_paths=True)
  return kubeflow_runner.compile_pipeline_spec(
      _fake_run_config(tmp_path, **trainer), kubeflow)


def test_installed_copy_is_what_tasks_import(installed_copy, tmp_path):
  """The emulator's tasks import the installed copy, not the checkout."""
  done = subprocess.run(
      [os.sys.executable, "-c", "import components, pipeline.kubeflow_entrypoint"
       " as e; print(components.__file__); print(e.__file__)"],
      env=dict(os.environ, PYTHONPATH=installed_copy), cwd=str(tmp_path),
      capture_output=True, text=True, check=True)
  for line in done.stdout.split():
    assert line.startswith(installed_copy), line


def test_restore_input_types_uses_the_declared_type():
  declared = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
  executor_input = {"inputs": {"artifacts": {
      "examples": {"artifacts": [
          {"name": "7", "uri": "s3://b/x", "metadata": {"split_names": "[]"},
           "type": {"schemaTitle": "system.Dataset"}},
          {"name": "8", "uri": "s3://b/y", "type": {"instanceSchema": ""}},
          {"name": "9", "uri": "s3://b/z"}]}}}}
  restored = kubeflow_entrypoint.restore_input_types(
      executor_input, {"artifacts": {"examples": {"artifactType": declared}}})
  artifacts = restored["inputs"]["artifacts"]["examples"]["artifacts"]
  assert [a["type"] for a in artifacts] == [declared] * 3
  assert [a["uri"] for a in artifacts] == ["s3://b/x", "s3://b/y", "s3://b/z"]
  assert artifacts[0]["metadata"] == {"split_names": "[]"}
  with pytest.raises(ValueError, match="'model' is not in the component's"):
    kubeflow_entrypoint.restore_input_types(
        {"inputs": {"artifacts": {"model": {"artifacts": [{}]}}}},
        {"artifacts": {}})


@pytest.mark.slow
@pytest.mark.e2e
def test_tfx_stock_entrypoint_fails_under_the_oss_handover(tmp_path,
                                                          installed_copy):
  """The emulator's oss mode reproduces the failure users meet on KFP 2.x:
  with TFX's own entrypoint, the first task with an input artifact fails."""
  spec = _fake_run_spec(tmp_path)
  for executor in spec["deploymentSpec"]["executors"].values():
    executor["container"]["command"][-1] = kubeflow_entrypoint.TFX_ENTRYPOINT
  with pytest.raises(kfp_emulator.TaskFailed,
                     match=r"(?s)Could not import system\.(Dataset|Artifact)"):
    _emulate(spec, str(tmp_path / "run"), "oss", installed_copy)


@pytest.mark.slow
@pytest.mark.parametrize("mode", kfp_emulator.MODES)
@pytest.mark.e2e
def test_compiled_spec_runs_under_the_kfp_driver(tmp_path, installed_copy,
                                                 mode):
  """The whole compiled DAG runs task by task as the KFP backend in `mode`
  hands artifacts over; a second run of the spec takes the data and training
  tasks from KFP's cache, finds the pushed model as its baseline, and does not
  push it again."""
  spec = _fake_run_spec(tmp_path)
  cache = {}
  try:
    first = _emulate(spec, str(tmp_path / "run1"), mode, installed_copy, cache)
  except kfp_emulator.TaskFailed as e:
    pytest.fail(str(e))
  assert sorted(first.executed) == sorted(EXPECTED_UPSTREAM)
  assert first.cached == []
  for task, upstream in EXPECTED_UPSTREAM.items():  # after what it needs
    assert all(first.executed.index(u) < first.executed.index(task)
               for u in upstream), task
  if mode == "oss":  # every form of the open-source hand-over was met
    assert set(first.forms) == set(kfp_emulator.OSS_FORMS)
  out = first.outputs
  serving = str(tmp_path / "root" / "serving" / config_lib.PipelineConfig(
      gate=GateSettings(min_accuracy=0.0)).model_name)
  assert out["LatestPushedModel"]["model"]["metadata"]["found"] == 0
  assert out["Evaluator"]["blessing"]["metadata"]["blessed"] == 1
  pushed = out["Pusher"]["pushed_model"]["metadata"]
  assert pushed["pushed"] == 1 and pushed["new_version"] == 1
  assert versions.latest_version_dir(serving) == pushed["pushed_destination"]
  # Pod logs: one line per epoch, no carriage-return progress bars.
  with open(first.logs["Trainer"]) as f:
    trainer_log = f.read()
  assert "\r" not in trainer_log
  assert re.findall(r"^epoch (\d)/2 .*val_accuracy", trainer_log, re.M) == [
      "1", "2"]

  # The report, as the KFP UI shows it: metrics, confusion matrix, HTML.
  metrics = out["TestSplitScorer"]["metrics"]["metadata"]
  assert metrics["examples"] == 20
  matrix = out["TestSplitScorer"]["confusion_matrix"]["metadata"][
      "confusionMatrix"]
  assert sum(sum(r["row"]) for r in matrix["rows"]) == 20
  correct = sum(r["row"][i] for i, r in enumerate(matrix["rows"]))
  assert metrics["accuracy"] == pytest.approx(correct / 20)
  with open(out["Report"]["report_html"]["uri"]) as f:
    assert f.read().count('src="data:image/png;base64,') == 3  # curves,
    # confusion matrix, sample predictions
  with open(os.path.join(out["Report"]["report"]["uri"], "summary.json")) as f:
    kubeflow_summary = json.load(f)
  assert kubeflow_summary["test_accuracy"]["candidate"] == metrics["accuracy"]
  assert kubeflow_summary["verdict"].startswith(
      f"pushed to {pushed['pushed_destination']} (test accuracy ")
  if mode == "oss":
    # The same settings run by the local runner report the same.
    config = dataclasses.replace(_fake_run_config(tmp_path),
                                 output_dir=str(tmp_path / "local"))
    local = local_runner.run(config)
    for key in ("test_accuracy", "split_counts", "refusal", "blessed",
                "pushed", "model", "source_verified"):
      assert local[key] == kubeflow_summary[key], key
    # Eval metrics: accuracies equal, losses to float rounding.
    for part, values in kubeflow_summary["evaluation"].items():
      assert local["evaluation"][part] == pytest.approx(values, rel=1e-5)
    assert (local["evaluation"]["candidate"]["sparse_categorical_accuracy"] ==
            kubeflow_summary["evaluation"]["candidate"][
                "sparse_categorical_accuracy"])
    assert (report_lib.outcome(local) == report_lib.outcome(kubeflow_summary)
            == "pushed")
    assert local["components"]["Trainer"]["state"] == "COMPLETE"
    assert "components" not in kubeflow_summary  # the KFP UI shows them

  second = _emulate(spec, str(tmp_path / "run2"), mode, installed_copy, cache)
  assert sorted(second.executed) == ["DataFingerprint", "Evaluator",
                                     "LatestPushedModel", "Pusher", "Report",
                                     "TestSplitScorer"]
  baseline = second.outputs["LatestPushedModel"]["model"]["metadata"]
  assert baseline["found"] == 1
  assert baseline["version_dir"] == pushed["pushed_destination"]
  assert baseline["source_model"] == out["Trainer"]["model"]["uri"]
  blessing = second.outputs["Evaluator"]["blessing"]["metadata"]
  assert blessing["blessed"] == 1  # the same model: no drop
  assert blessing["baseline_version_dir"] == pushed["pushed_destination"]
  assert second.outputs["Pusher"]["pushed_model"]["metadata"][
      "new_version"] == 0
  assert versions.existing_versions(serving) == [
      int(pushed["pushed_version"])]
  # TensorBoard on the artifacts: one HParams session, the model's, in the
  # first run's Trainer output; the second run's Report rewrote it there
  # (its Trainer came from the cache) and added none of its own.
  sessions = read_hparams(str(tmp_path / "run1"))
  assert [os.path.join(str(tmp_path / "run1"), s) for s in sessions] == [
      out["Trainer"]["model_run"]["uri"]]
  assert read_hparams(str(tmp_path / "run2")) == {}
  [session] = sessions.values()
  assert session["metrics"]["test_accuracy"] == pytest.approx(
      metrics["accuracy"])
  assert session["hparams"]["model"] == "dense_100_relu"


@pytest.mark.slow
@pytest.mark.e2e
def test_compiled_spec_ingests_data_replaced_in_place_again(tmp_path,
                                                           installed_copy):
  """Each run of a compiled spec reads the data when it starts (the
  `DataFingerprint` task, never cached) and hands its digest to the
  ingestion as a parameter, which KFP's cache keys: unchanged data reuses
  the ingestion; a training image changed in place, size and time kept, is
  ingested again (before: the ingestion's key held the path only, and KFP's
  cache reused the old examples)."""
  from tests.pipeline.test_faults import _invert_first_image  # pylint: disable=g-import-not-at-top
  config = _fake_run_config(tmp_path, gz=False)
  spec = kubeflow_runner.compile_pipeline_spec(
      config, config_lib.KubeflowConfig(
          image=IMAGE, pipeline_root=str(tmp_path / "root"),
          allow_local_paths=True))
  cache = {}
  runs = []
  for name in ("run1", "run2", "run3"):
    if name == "run3":
      _invert_first_image(os.path.join(config.ingestion.data_dir,
                                       "train-images-idx3-ubyte"))
    runs.append(_emulate(spec, str(tmp_path / name), "oss", installed_copy,
                         cache, until="MnistExampleGen"))
  data_tasks = ("DataFingerprint", "MnistExampleGen")
  assert [([t for t in r.executed if t in data_tasks],
           [t for t in r.cached if t in data_tasks]) for r in runs] == [
      (["DataFingerprint", "MnistExampleGen"], []),
      (["DataFingerprint"], ["MnistExampleGen"]),
      (["DataFingerprint", "MnistExampleGen"], [])]
  digests = [r.outputs["MnistExampleGen"]["examples"]["metadata"][
      "data_digest"] for r in runs]
  assert digests[0] == digests[1] != digests[2]


@pytest.mark.slow
@pytest.mark.e2e
def test_compiled_spec_runs_on_s3_under_the_oss_driver(tmp_path, s3_server,
                                                       installed_copy):
  """Pipeline root and serving directory on s3:// (a real S3 server on
  localhost, as Kubeflow's MinIO): the oss-mode run pushes a model that loads
  from s3://."""
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(
      dataset="mnist", ingestion=IngestionSettings(
          data_dir=write_fake_dataset(tmp_path / "data")),
      gate=GateSettings(min_accuracy=0.0), serving_dir="s3://kfp/serving",
      trainer=hparams.TrainerConfig(model="dense_100_relu", epochs=1))
  # As for KFP's MinIO: the endpoint and the credentials secret compiled in.
  kubeflow = config_lib.KubeflowConfig(
      image=IMAGE, pipeline_root="s3://kfp/root", allow_local_paths=True,
      s3_endpoint_url=s3_server["AWS_ENDPOINT_URL"],
      s3_credentials_secret="mlpipeline-minio-artifact")
  spec, _, platform = _compile_file(tmp_path, config, kubeflow)
  pod_env = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_", "S3_"))}
  cache = {}

  def run(spec, name, log=lambda _: None):
    return kfp_emulator.run_spec(
        spec, f"s3://kfp/root/{name}", mode="oss", install_dir=installed_copy,
        local_dir=str(tmp_path / name),
        path_map={kubeflow_runner.IMAGE_SCHEMAS_DIR:
                  os.path.join(installed_copy, "schemas")},
        env=dict(pod_env, TF_CPP_MIN_LOG_LEVEL="2"), platform=platform,
        secrets={"mlpipeline-minio-artifact": {
            "accesskey": s3_server["AWS_ACCESS_KEY_ID"],
            "secretkey": s3_server["AWS_SECRET_ACCESS_KEY"]}},
        cache=cache, log=log)
  try:
    result = run(spec, "run1")
  except kfp_emulator.TaskFailed as e:
    pytest.fail(str(e))
  pushed = result.outputs["Pusher"]["pushed_model"]["metadata"]
  assert pushed["pushed"] == 1
  assert pushed["pushed_destination"].startswith(
      f"s3://kfp/serving/{config.model_name}/")
  assert result.outputs["Trainer"]["model"]["uri"].startswith("s3://kfp/root/")
  # The pushed model loads from s3:// and classifies.
  load = subprocess.run(
      [os.sys.executable, "-c",
       "import sys, numpy as np, components, tensorflow as tf;"
       "from components import storage; storage.enable_object_storage();"
       "m = tf.saved_model.load(sys.argv[1]);"
       "p = m.signatures['serving_images'](tf.constant(np.zeros((2, 784), "
       "np.float32)));"
       "print('shape', list(p.values())[0].shape);"
       "storage.exit_process(0)",
       pushed["pushed_destination"]],
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **s3_server),
      capture_output=True, text=True, check=False)
  assert load.returncode == 0, load.stderr[-2000:]
  assert "shape (2, 10)" in load.stdout
  # A second run (another model) is blessed against that version; another
  # run pushes a newer, better model just before this run's Pusher starts:
  # the Pusher refuses in one line and the newer model stays in service.
  retrained = dataclasses.replace(config, trainer=dataclasses.replace(
      config.trainer, epochs=2))
  spec2, _, _ = _compile_file(tmp_path / "spec2", retrained, kubeflow)
  first = pushed["pushed_destination"]
  serving = os.path.dirname(first)

  def another_run_pushes(line):
    if line.startswith("kfp task Pusher:"):
      done = subprocess.run(
          [os.sys.executable, "-c", PUSH_ANOTHER_MODEL, first, serving,
           str(tmp_path / "another")],
          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **s3_server),
          capture_output=True, text=True, check=False)
      assert done.returncode == 0, done.stderr[-2000:]
  with pytest.raises(kfp_emulator.TaskFailed) as failed:
    run(spec2, "run2", log=another_run_pushes)
  assert str(failed.value).startswith("task Pusher exited 1")
  versions_now = _s3_versions(serving, s3_server)
  assert versions_now[0] == int(os.path.basename(first))
  assert len(versions_now) == 2
  assert (f"ServingChangedError: {serving}: the model in service changed "
          f"since the Evaluator compared with it (version "
          f"{os.path.basename(first)} then, version {versions_now[1]} now)"
          ) in str(failed.value)


# Another run's push into an S3 serving directory: the model in service
# (argv[1]) plus an asset, recorded as better (0.99).
PUSH_ANOTHER_MODEL = r"""
import os, sys
from components import storage
storage.enable_object_storage()
import tensorflow as tf
from serving import versions
source, serving, local = sys.argv[1:4]
for root, _, files in tf.io.gfile.walk(source):
  for name in files:
    target = os.path.join(local, os.path.relpath(os.path.join(root, name),
                                                 source))
    tf.io.gfile.makedirs(os.path.dirname(target))
    tf.io.gfile.copy(os.path.join(root, name), target)
os.remove(os.path.join(local, versions.RECORD_FILE))
os.makedirs(os.path.join(local, "assets"), exist_ok=True)
with open(os.path.join(local, "assets", "note.txt"), "w") as f:
  f.write("another run's model")
versions.push(local, serving, {"accuracy": 0.99})
storage.exit_process(0)
"""


def _s3_versions(serving, s3_server):
  listing = subprocess.run(
      [os.sys.executable, "-c",
       "import sys; from components import storage;"
       "storage.enable_object_storage();"
       "from serving import versions;"
       "print(versions.existing_versions(sys.argv[1]));"
       "storage.exit_process(0)", serving],
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **s3_server),
      capture_output=True, text=True, check=False)
  assert listing.returncode == 0, listing.stderr[-2000:]
  return json.loads(listing.stdout.strip().splitlines()[-1])


def test_beam_pipeline_args_reach_statistics_and_evaluator(tmp_path):
  """BEAM_PIPELINE_ARGS replace the in-process DirectRunner of the Beam
  components (StatisticsGen, Evaluator), e.g. to run them on Dataflow."""
  dataflow = ("--runner=DataflowRunner --project=my-project "
              "--region=europe-west4 --temp_location=gs://bucket/tmp")
  config = config_lib.PipelineConfig.from_env(
      {"DATASET": "mnist", "DATA_DIR": "gs://bucket/mnist",
       "BEAM_PIPELINE_ARGS": dataflow})
  spec, _ = _compile(tmp_path, config=config)
  executors = spec["deploymentSpec"]["executors"]
  for task in ("StatisticsGen", "Evaluator"):
    args = executors[f"{task}_executor"]["container"]["args"]
    assert args[-4:] == dataflow.split(), task
    assert "--direct_running_mode=in_memory" not in args
  default, _ = _compile(tmp_path, config=config_lib.PipelineConfig(
      dataset="mnist",
      ingestion=IngestionSettings(data_dir="gs://bucket/mnist")))
  assert default["deploymentSpec"]["executors"]["Evaluator_executor"][
      "container"]["args"][-2:] == ["--direct_running_mode=in_memory",
                                     "--direct_num_workers=1"]


def test_s3_settings_compile_into_every_task(tmp_path):
  """S3_ENDPOINT_URL and S3_CREDENTIALS_SECRET reach every task: the endpoint
  as container environment, the secret's keys through KFP's Kubernetes
  platform spec (secretAsEnv)."""
  kubeflow = config_lib.KubeflowConfig(
      image=IMAGE, pipeline_root="s3://mlpipeline/mnist-tfx",
      s3_endpoint_url="http://minio-service.kubeflow:9000",
      s3_credentials_secret="mlpipeline-minio-artifact")
  spec, _, platform = _compile_file(
      tmp_path, config_lib.PipelineConfig(dataset="mnist",
                                          ingestion=IngestionSettings(
                                              data_dir="s3://mlpipeline/mnist")),
      kubeflow)
  executors = spec["deploymentSpec"]["executors"]
  secret_env = platform["platforms"]["kubernetes"]["deploymentSpec"][
      "executors"]
  assert set(secret_env) == set(executors)
  for label, executor in executors.items():
    assert executor["container"]["env"] == [
        {"name": "AWS_ENDPOINT_URL",
         "value": "http://minio-service.kubeflow:9000"},
        {"name": "AWS_REGION", "value": "us-east-1"}]
    assert secret_env[label] == {"secretAsEnv": [{
        "secretName": "mlpipeline-minio-artifact", "keyToEnv": [
            {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
            {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]}
  assert kubeflow_runner.compiled_root(str(tmp_path / "pipeline.yaml")) == \
      "s3://mlpipeline/mnist-tfx"
  # Without them (GCS, or AWS with workload identity) the spec has neither.
  plain, _, none = _compile_file(tmp_path, config_lib.PipelineConfig(
      dataset="mnist"), config_lib.KubeflowConfig(
          image=IMAGE, pipeline_root="gs://bucket/root"))
  assert none is None
  assert all("env" not in e["container"]
             for e in plain["deploymentSpec"]["executors"].values())


@pytest.mark.slow
@pytest.mark.e2e
def test_tuner_runs_under_the_oss_driver_and_its_result_can_be_frozen(
    tmp_path, installed_copy):
  """TUNE=1 compiles a Tuner task whose best hyperparameters the Trainer
  trains, under the open-source hand-over; TUNE_FROM= then imports that
  result (a KFP importer task) instead of searching again."""
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  data_dir = write_fake_dataset(tmp_path / "data")
  kubeflow = config_lib.KubeflowConfig(
      image=IMAGE, pipeline_root=str(tmp_path / "root"),
      allow_local_paths=True)
  settings = {"DATASET": "mnist", "DATA_DIR": data_dir, "MIN_ACCURACY": "0",
              "MAX_CLASS_ACCURACY_DROP": "1", "TUNE": "1", "TUNE_TRIALS": "2",
              "TUNE_EPOCHS": "1", "TUNE_FAMILIES": "dense", "EPOCHS": "1"}
  spec = kubeflow_runner.compile_pipeline_spec(
      config_lib.PipelineConfig.from_env(settings), kubeflow)
  assert "Tuner" in _upstream(spec["root"]["dag"]["tasks"]["Trainer"])
  # Both runs stop after the Trainer, the last task asserted on; the second
  # takes the data tasks from the first's cache (KFP's own caching).
  cache = {}
  try:
    tuned = _emulate(spec, str(tmp_path / "run1"), "oss", installed_copy,
                     cache, until="Trainer")
  except kfp_emulator.TaskFailed as e:
    pytest.fail(str(e))
  best = tuned.outputs["Tuner"]["best_hyperparameters"]["uri"]
  with open(tuned.logs["Trainer"]) as f:
    assert "training the Tuner's best hyperparameters" in f.read()
  frozen_settings = {k: v for k, v in settings.items() if k != "TUNE"}
  frozen = kubeflow_runner.compile_pipeline_spec(
      config_lib.PipelineConfig.from_env({**frozen_settings,
                                          "TUNE_FROM": best}), kubeflow)
  assert "Tuner" not in frozen["root"]["dag"]["tasks"]
  result = _emulate(frozen, str(tmp_path / "run2"), "oss", installed_copy,
                    cache, until="Trainer")
  # (The Trainer does not wait for the data checks: only the ingestion is
  # upstream of it here.)
  assert "MnistExampleGen" in result.cached
  assert {"TunedHyperparameters", "Trainer"} <= set(result.executed)
  with open(result.logs["Trainer"]) as f:
    assert "training the Tuner's best hyperparameters" in f.read()
  # Both Trainers trained exactly the search's best values.
  with open(os.path.join(best, "best_hyperparameters.txt")) as f:
    best_values = json.load(f)
  best_values = best_values.get("values", best_values)
  assert best_values and "family" in best_values
  for run in (tuned, result):
    with open(os.path.join(run.outputs["Trainer"]["model_run"]["uri"],
                           "trainer_config.json")) as f:
      assert json.load(f)["hyperparameters"] == best_values
