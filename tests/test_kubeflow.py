"""The same DAG compiles to a Kubeflow Pipelines v2 spec."""
import json

from pipeline import config as config_lib
from pipeline import kubeflow_runner


def test_pipeline_compiles_for_kubeflow(tmp_path):
  config = config_lib.PipelineConfig(dataset="fashion_mnist",
                                     data_dir="gs://bucket/fashion")
  out = kubeflow_runner.compile_pipeline(
      config, image="registry.example/mnist-tfx:1",
      pipeline_root="gs://bucket/root", output_path=str(tmp_path / "p.json"))
  spec = json.loads(open(out).read())
  pipeline_spec = spec["pipelineSpec"]
  assert pipeline_spec["pipelineInfo"]["name"] == "mnist-tfx-fashion-mnist"
  executors = pipeline_spec["deploymentSpec"]["executors"]
  for node in ("MnistExampleGen", "StatisticsGen", "ExampleValidator",
               "ValidationGate", "Trainer", "Evaluator", "Pusher"):
    assert f"{node}_executor" in executors
  images = {e["container"]["image"] for e in executors.values()
            if "container" in e}
  assert images == {"registry.example/mnist-tfx:1"}
  text = json.dumps(spec)
  assert "components.trainer.task.run_fn" in text
  assert "components.ingestion.executor.Executor" in text
  assert "gs://bucket/fashion" in text
  assert "/pipeline/schemas/fashion_mnist/schema.pbtxt" in text
  assert spec["runtimeConfig"]["gcsOutputDirectory"].startswith(
      "gs://bucket/root")
