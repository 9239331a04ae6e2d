"""The TFX wiring: component parameters (cache keys) and the DAG's shape."""
import dataclasses

import pytest

from components import fingerprint
from components.evaluator.settings import GateSettings
from components.ingestion import component as ingestion_component
from components.ingestion.settings import IngestionSettings
from components.pusher.component import AtomicPusher
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib


def test_ingestion_parameters_are_part_of_the_cache_key():
  gen = ingestion_component.MnistExampleGen(
      dataset="fashion_mnist", seed=7, train_fraction=0.8, max_examples=100,
      data_dir="/data", data_digest="abc")
  props = gen.exec_properties
  assert props["dataset"] == "fashion_mnist"
  assert (props["seed"], props["train_fraction"], props["max_examples"]) == (
      7, 0.8, 100)
  assert props["data_digest"] == "abc"
  assert props["code_fingerprint"] == fingerprint.code_fingerprint(
      "components.ingestion.executor")
  assert gen.outputs["examples"].type_name == "Examples"


def test_pipeline_gates_the_push_on_validation_and_evaluates_against_baseline(
    tmp_path):
  config = config_lib.PipelineConfig(output_dir=str(tmp_path))
  dag = pipeline_lib.create_pipeline(config, data_digest="d")
  nodes = {node.id: node for node in dag.components}
  assert set(nodes) == {
      "MnistExampleGen", "StatisticsGen", "ImportSchemaGen",
      "ExampleValidator", "ValidationGate", "Trainer",
      "LatestPushedModel", "Evaluator", "Pusher", "TestSplitScorer", "Report"}
  # The test split is scored once the gate has decided; the report is last.
  assert "Evaluator" in {n.id for n in nodes["TestSplitScorer"].upstream_nodes}
  assert {"Pusher", "TestSplitScorer"} <= {
      n.id for n in nodes["Report"].upstream_nodes}
  # The data checks run beside the Trainer; nothing is pushed unless they
  # passed.
  assert "ValidationGate" in {n.id for n in nodes["Pusher"].upstream_nodes}
  assert "ValidationGate" not in {
      n.id for n in nodes["Trainer"].upstream_nodes}
  assert nodes["Trainer"].exec_properties["run_fn"] == \
      "components.trainer.task.run_fn"
  evaluator_inputs = nodes["Evaluator"].inputs
  assert evaluator_inputs["baseline_model"].producer_component_id == \
      "LatestPushedModel"
  assert nodes["LatestPushedModel"].exec_properties["serving_model_dir"] == \
      config.serving_model_dir
  assert isinstance(nodes["Pusher"], AtomicPusher)
  assert dag.pipeline_info.pipeline_name == "mnist-tfx-mnist"
  assert config_lib.PipelineConfig(
      dataset="fashion_mnist", lineage="v2").pipeline_name == \
      "mnist-tfx-fashion-mnist-v2"
  # Quick runs and other split definitions get lineages (baselines, serving
  # models) of their own: they never replace a full run's model. A quick
  # run's eval set is its size's and its seed's: one lineage for each, so
  # the best-ever guard never compares accuracies on different sets.
  quick = config_lib.PipelineConfig(
      ingestion=IngestionSettings(max_examples=3000), output_dir="/o")
  assert (quick.pipeline_name, quick.serving_model_dir) == (
      "mnist-tfx-mnist-quick3000-seed42", "/o/serving/mnist_quick3000_seed42")
  assert config_lib.PipelineConfig(
      ingestion=IngestionSettings(max_examples=600), seed=7).model_name == \
      "mnist_quick600_seed7"
  other_split = config_lib.PipelineConfig(
      ingestion=IngestionSettings(train_fraction=0.8), lineage="v2")
  assert other_split.model_name == "mnist_v2_split80"
  assert config_lib.PipelineConfig(seed=7).model_name == "mnist"


@pytest.mark.parametrize("settings,loose", [
    ({}, ()), ({"min_accuracy": 0.95, "max_accuracy_drop": 0.001}, ()),
    ({"min_accuracy": 0.5}, ("MIN_ACCURACY", "MIN_CLASS_ACCURACY")),
    ({"min_accuracy": 0.95, "min_class_accuracy": 0.5},
     ("MIN_CLASS_ACCURACY",)),
    ({"max_accuracy_drop": 0.01}, ("MAX_ACCURACY_DROP",)),
    ({"max_class_accuracy_drop": 0.06}, ("MAX_CLASS_ACCURACY_DROP",)),
    ({"dataset": "fashion_mnist", "max_class_accuracy_drop": 0.2}, ()),
])
def test_a_gate_looser_than_the_defaults_is_a_lineage_of_its_own(settings,
                                                                 loose):
  """Only a stricter or default gate may push into a lineage; a looser one
  (`loose_gate_settings` names what) gets `-loose` unless allowed."""
  dataset = settings.pop("dataset", "mnist")
  config = config_lib.PipelineConfig(dataset=dataset,
                                     gate=GateSettings(**settings))
  assert config.loose_gate_settings == loose
  assert config.lineage_parts == (("loose",) if loose else ())
  allowed = dataclasses.replace(config, gate=dataclasses.replace(
      config.gate, allow_loose_gate=True))
  assert allowed.lineage_parts == ()


def test_a_new_split_key_is_a_lineage_of_its_own(monkeypatch):
  """`split.py` says a new SPLIT_KEY is a new split definition: its models
  are never compared with models evaluated on the old split."""
  from components.ingestion import split  # pylint: disable=g-import-not-at-top
  assert config_lib.PipelineConfig().model_name == "mnist"
  monkeypatch.setattr(split, "SPLIT_KEY", b"mnist-tfx split v2")
  renamed = config_lib.PipelineConfig().model_name
  assert renamed.startswith("mnist_split70-k") and renamed != "mnist"
  assert config_lib.PipelineConfig(ingestion=IngestionSettings(
      train_fraction=0.8)).model_name.startswith(
      "mnist_split80-k")


def _caching(ir):
  return {n.pipeline_node.node_info.id:
          n.pipeline_node.execution_options.caching_options.enable_cache
          for n in ir.nodes}


def test_the_baseline_lookup_is_cached_only_while_the_model_in_service_is(
    tmp_path):
  """The compiled node is cached, and the serving directory's state is one
  of its parameters (part of its cache key): a push makes the next run look
  again. The data's digest is the ingestion's parameter likewise."""
  config = config_lib.PipelineConfig(output_dir=str(tmp_path))
  keys = []
  for state, digest in (('{"version_dir": null}', "d1"),
                        ('{"version_dir": "/s/1795647719"}', "d2")):
    ir = pipeline_lib.compile_for_local(pipeline_lib.create_pipeline(
        config, in_service=state, data_digest=digest))
    assert _caching(ir)["LatestPushedModel"] is True
    nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}
    assert "DataFingerprint" not in nodes  # read by the runner itself
    keys.append((nodes["LatestPushedModel"].parameters.parameters[
        "in_service"].field_value.string_value, nodes[
            "MnistExampleGen"].parameters.parameters[
                "data_digest"].field_value.string_value))
  assert keys == [('{"version_dir": null}', "d1"),
                  ('{"version_dir": "/s/1795647719"}', "d2")]


def test_rerun_from_recomputes_that_component_and_everything_after(tmp_path):
  dag = pipeline_lib.create_pipeline(
      config_lib.PipelineConfig(output_dir=str(tmp_path)), data_digest="d")
  # Everything may come from the cache but the push (its outcome is the
  # serving directory as it is now) and the report of the run itself.
  caching = _caching(pipeline_lib.compile_for_local(dag))
  assert {n for n, cached in caching.items() if not cached} == {"Pusher",
                                                                "Report"}
  caching = _caching(pipeline_lib.compile_for_local(dag, rerun_from="Trainer"))
  assert {n for n, cached in caching.items() if not cached} == {
      "Trainer", "LatestPushedModel", "Evaluator", "TestSplitScorer", "Pusher",
      "Report"}
  caching = _caching(pipeline_lib.compile_for_local(dag,
                                                    rerun_from="Evaluator"))
  assert {n for n, cached in caching.items() if not cached} == {
      "Evaluator", "TestSplitScorer", "Pusher", "Report"}
  with pytest.raises(ValueError, match="unknown component 'Trainr'; choose "
                     "one of"):
    pipeline_lib.compile_for_local(dag, rerun_from="Trainr")
  no_cache = config_lib.PipelineConfig.from_env({"NO_CACHE": "1"})
  assert not no_cache.enable_cache
  assert config_lib.PipelineConfig.from_env(
      {"RERUN_FROM": "Trainer"}).rerun_from == "Trainer"


def test_config_from_environment():
  config = config_lib.PipelineConfig.from_env({
      "DATASET": "fashion_mnist", "MODEL": "cnn", "EPOCHS": "3",
      "LEARNING_RATE": "0.01", "OPTIMIZER": "nesterov", "RUNNER": "local",
      "MAX_EXAMPLES": "", "ENABLE_CACHE": "false"})
  assert config.dataset == "fashion_mnist" and config.runner == "local"
  assert config.trainer.model == "cnn" and config.trainer.epochs == 3
  assert config.trainer.optimizer == "nesterov"
  assert config.ingestion.max_examples is None and not config.enable_cache
  assert config.gate.accuracy_threshold(config.dataset) == 0.80


def test_config_errors_are_one_line():
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="EPOCHS='five' is not a valid int"):
    config_lib.PipelineConfig.from_env({"EPOCHS": "five"})
  with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
    config_lib.PipelineConfig.from_env({"DATASET": "cifar"})
  with pytest.raises(ValueError, match="unknown runner"):
    config_lib.PipelineConfig.from_env({"RUNNER": "airflow"})
  # A LINEAGE that spells a derived one would write into its directory
  # (before: LINEAGE=loose pushed into `mnist_loose`, LINEAGE=x_loose into
  # LINEAGE=x's loosened one).
  for lineage in ("loose", "quick", "quick600", "split80", "seed7", "x_loose",
                  "x-loose", "V2"):
    with pytest.raises(ValueError, match=f"^LINEAGE='{lineage}' is not a "
                       "lineage name of its own"):
      config_lib.PipelineConfig.from_env({"LINEAGE": lineage})
  assert config_lib.PipelineConfig.from_env(
      {"LINEAGE": "v2"}).model_name == "mnist_v2"


def test_gate_defaults_are_the_documented_ones():
  """With no settings: MNIST needs 0.90 accuracy, Fashion-MNIST 0.80; a class
  may drop 0.05 (MNIST) or 0.2 (Fashion) against the baseline, the overall
  accuracy 0.002 (README, "Settings")."""
  mnist = config_lib.PipelineConfig.from_env({})
  fashion = config_lib.PipelineConfig.from_env({"DATASET": "fashion_mnist"})
  assert (mnist.gate.accuracy_threshold("mnist"),
          mnist.gate.class_drop_threshold("mnist")) == (0.9, 0.05)
  assert (fashion.gate.accuracy_threshold("fashion_mnist"),
          fashion.gate.class_drop_threshold("fashion_mnist")) == (0.8, 0.2)
  assert mnist.gate.max_accuracy_drop == fashion.gate.max_accuracy_drop == 0.002


def test_every_setting_has_one_table_row_and_one_readme_row():
  """`ENV_SETTINGS` is the one map from environment to config, and the
  README's settings table lists exactly those settings (plus the two
  console switches read where they print)."""
  import os  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  readme = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))), "README.md")
  with open(readme) as f:
    text = f.read()
  section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
  documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))
  names = [name for name, _, _ in config_lib.ENV_SETTINGS]
  assert len(names) == len(set(names))  # each variable is one row
  assert documented == set(names) | {"KERAS_PROGRESS", "VERBOSE"}
  # Each maps to a real field: an unknown one would fail here, not in a run.
  for name, path, _ in config_lib.ENV_SETTINGS:
    group, _, field = path.rpartition(".")
    config = config_lib.PipelineConfig()
    owner = getattr(config, group) if group else config
    assert dataclasses.is_dataclass(owner) and field in {
        f.name for f in dataclasses.fields(owner)}, (name, path)


def test_a_new_dataset_is_one_datasets_entry_and_its_schema(tmp_path,
                                                            monkeypatch):
  """README, "To change: a dataset": a `DatasetInfo` and a schema are all
  the DAG needs; its gate defaults, names and class names come from them."""
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from components.ingestion import datasets  # pylint: disable=g-import-not-at-top
  kmnist = dataclasses.replace(
      datasets.DATASETS["mnist"], name="kmnist",
      class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
      min_accuracy=0.85, max_class_accuracy_drop=0.1, digit_classes=False)
  monkeypatch.setitem(datasets.DATASETS, "kmnist", kmnist)
  schemas_dir = tmp_path / "schemas"
  shutil.copytree(config_lib.SCHEMAS_DIR, schemas_dir)
  shutil.copytree(schemas_dir / "mnist", schemas_dir / "kmnist")
  monkeypatch.setattr(config_lib, "SCHEMAS_DIR", str(schemas_dir))

  config = config_lib.PipelineConfig(dataset="kmnist",
                                     output_dir=str(tmp_path / "out"))
  assert (config.pipeline_name, config.model_name) == ("mnist-tfx-kmnist",
                                                       "kmnist")
  assert config.gate.accuracy_threshold("kmnist") == 0.85
  assert config.gate.class_drop_threshold("kmnist") == 0.1
  assert config.loose_gate_settings == ()
  assert config_lib.PipelineConfig(
      dataset="kmnist", gate=GateSettings(min_accuracy=0.84)).lineage_parts \
      == ("loose",)
  nodes = {node.id: node for node in pipeline_lib.create_pipeline(
      config, data_digest="d").components}
  assert nodes["MnistExampleGen"].exec_properties["dataset"] == "kmnist"
  assert nodes["TestSplitScorer"].exec_properties["class_names"] == \
      json.dumps(list(kmnist.class_names))
  eval_config = json.loads(nodes["Evaluator"].exec_properties["eval_config"])
  thresholds = {
      json.dumps(t["slicing_specs"]): t["threshold"]
      for spec in eval_config["metrics_specs"] for metric in spec["metrics"]
      if metric["class_name"] == "SparseCategoricalAccuracy"
      for t in metric["per_slice_thresholds"]}
  overall, per_class = thresholds["[{}]"], thresholds[
      '[{"feature_keys": ["label"]}]']
  assert overall["value_threshold"]["lower_bound"] == 0.85
  assert per_class["value_threshold"]["lower_bound"] == 0.55
  assert per_class["change_threshold"]["absolute"] == -0.1
  report_settings = json.loads(nodes["Report"].exec_properties["run_settings"])
  assert report_settings["min_accuracy"] == 0.85
