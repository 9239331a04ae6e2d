"""The StatisticsGen executor: writes what TFX's writes, in process unless
the Beam pipeline arguments name a runner elsewhere; the component."""
import os

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.statistics_gen import executor as tfx_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.ingestion import examples_io
from components.statistics import component
from components.statistics import executor
from pipeline import config as config_lib
from tests.components.statistics import compare

IN_PROCESS_ARGS = config_lib.PipelineConfig().beam_pipeline_args
DATAFLOW_ARGS = ["--runner=DataflowRunner", "--project=my-project",
                 "--region=europe-west4", "--temp_location=gs://bucket/tmp",
                 "--sdk_container_image=gcr.io/my-project/mnist-tfx"]
OPTIONS = tfdv.StatsOptions(sample_rate=1.0, use_sketch_based_topk_uniques=True)


@pytest.mark.parametrize("args,in_process", [
    ([], True),
    (IN_PROCESS_ARGS, True),
    (["--runner=DirectRunner", "--direct_num_workers=2",
      "--direct_running_mode=multi_processing"], True),
    (["--runner", "direct"], True),
    (["--runner=SwitchingDirectRunner"], True),
    (DATAFLOW_ARGS, False),
    (["--runner=apache_beam.runners.dataflow.dataflow_runner."
      "DataflowRunner"], False),
    (["--runner=FlinkRunner", "--flink_master=flink:8081"], False),
    (["--runner=SparkRunner"], False),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], False),
    (["--runner=PrismRunner"], False),
])
def test_a_runner_elsewhere_takes_the_beam_path(args, in_process):
  here, why = executor.choose_path(args, OPTIONS)
  assert here == in_process, why
  if not in_process:
    assert why.startswith("on the Beam runner ")


def test_what_only_beam_does_takes_the_beam_path():
  assert executor.choose_path(IN_PROCESS_ARGS, OPTIONS) == (
      True, "in process (TFDV generators, no Beam; Beam runner none named)")
  for kwargs in ({"sharded_output": True},
                 {"examples_are_tf_example": False},
                 {"custom_beam_pipeline": True}):
    here, why = executor.choose_path(IN_PROCESS_ARGS, OPTIONS, **kwargs)
    assert not here and why.startswith("on Beam (DirectRunner): "), kwargs
  here, why = executor.choose_path(IN_PROCESS_ARGS, tfdv.StatsOptions())
  assert not here and "TopKUniquesStatsGenerator" in why


def test_component_is_tfx_statistics_gen_with_this_executor():
  examples = types.Channel(type=standard_artifacts.Examples)
  statistics_gen = component.StatisticsGen(
      examples=examples, stats_options=OPTIONS).with_beam_pipeline_args(
          DATAFLOW_ARGS)
  assert statistics_gen.id == "StatisticsGen"
  assert statistics_gen.executor_spec.executor_class is executor.Executor
  assert statistics_gen.executor_spec.beam_pipeline_args == DATAFLOW_ARGS
  assert tfdv.StatsOptions.from_json(statistics_gen.exec_properties[
      "stats_options_json"]).use_sketch_based_topk_uniques
  assert statistics_gen.exec_properties["code_fingerprint"]
  assert statistics_gen.outputs["statistics"].type_name == "ExampleStatistics"


def _examples(root, counts=(("train", 1200), ("eval", 500))):
  """An `Examples` artifact as our ingestion writes it (gzip TFRecords)."""
  rng = np.random.default_rng(0)
  examples = standard_artifacts.Examples()
  examples.uri = str(root / "examples")
  examples.span = 3
  for split, count in counts:
    examples_io.write_split(
        examples_io.split_dir(examples.uri, split),
        rng.integers(0, 256, (count, 784)).astype(np.float32) / 255,
        rng.integers(0, 10, count), num_shards=2)
  examples.split_names = artifact_utils.encode_split_names(
      [split for split, _ in counts])
  examples_utils.set_payload_format(
      examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
  return examples


def _run(executor_class, examples, out, exec_properties, beam_args):
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = str(out)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_args, tmp_dir=str(out) + ".tmp",
      unique_id="test")
  executor_class(context).Do({"examples": [examples]},
                             {"statistics": [statistics]}, exec_properties)
  return statistics


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root)
                for d, _, files in os.walk(root) for f in files)


def _read(path):
  statistics = statistics_pb2.DatasetFeatureStatisticsList()
  with open(path, "rb") as f:
    statistics.ParseFromString(f.read())
  return statistics


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    {},
    {"exclude_splits": '["eval"]', "sample_rate_by_split": '{"train": 0.5}'},
])
def test_writes_what_tfxs_executor_writes(tmp_path, settings, capsys):
  examples = _examples(tmp_path)
  exec_properties = dict(component.StatisticsGen(
      examples=types.Channel(type=standard_artifacts.Examples),
      stats_options=OPTIONS).exec_properties, **settings)
  tfx_out, our_out = tmp_path / "tfx", tmp_path / "ours"
  theirs = _run(tfx_executor.Executor, examples, tfx_out, exec_properties,
                IN_PROCESS_ARGS)
  ours = _run(executor.Executor, examples, our_out, exec_properties,
              IN_PROCESS_ARGS)
  assert _files(our_out) == _files(tfx_out)
  assert ours.split_names == theirs.split_names
  assert ours.span == theirs.span == 3
  assert ours.mlmd_artifact.properties == theirs.mlmd_artifact.properties
  assert ours.mlmd_artifact.custom_properties == \
      theirs.mlmd_artifact.custom_properties
  splits = artifact_utils.decode_split_names(ours.split_names)
  assert splits == (["train"] if settings else ["train", "eval"])
  # One line in the run's log, ours; TFX's executor prints none.
  [line] = [l for l in capsys.readouterr().out.splitlines()
            if l.startswith("statistics: ")]
  assert line.startswith("statistics: in process (TFDV generators, no Beam")
  if settings:  # sampled at random by Beam: only the layout compares
    return
  assert "1,200 + 500 examples (train, eval)" in line
  name = tfx_executor.DEFAULT_FILE_NAME
  for split in splits:
    assert compare.differences(
        _read(os.path.join(artifact_utils.get_split_uri([theirs], split),
                           name)),
        _read(os.path.join(artifact_utils.get_split_uri([ours], split), name)),
        OPTIONS) == []


def test_a_runner_elsewhere_runs_tfxs_executor(tmp_path, monkeypatch,
                                               capsys):
  """With `--runner=DataflowRunner`, TFX's `Do` runs (recorded here instead
  of submitting a Dataflow job), and nothing is computed in process."""
  calls = []
  monkeypatch.setattr(tfx_executor.Executor, "Do",
                      lambda self, *args: calls.append(args))
  monkeypatch.setattr(executor.in_process, "statistics_of_tfxio",
                      lambda *args: pytest.fail("computed in process"))
  examples = _examples(tmp_path, counts=(("train", 10),))
  exec_properties = component.StatisticsGen(
      examples=types.Channel(type=standard_artifacts.Examples),
      stats_options=OPTIONS).exec_properties
  _run(executor.Executor, examples, tmp_path / "out", exec_properties,
       DATAFLOW_ARGS)
  assert len(calls) == 1 and calls[0][2] == exec_properties
  assert ("statistics: on the Beam runner DataflowRunner" in
          capsys.readouterr().out.splitlines())
