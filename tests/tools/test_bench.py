"""The bench compares like with like: the DAG with the script a user would
write (Keras 3), by the median of pairs; only a GPU's CNN figure counts."""
import pytest
import copy

import tensorflow as tf

from components.trainer import models
from tools.bench import gpu
from tools.bench import pairs
from tools.bench import stages
from tools.bench import verdicts


@pytest.mark.slow
def test_plain_cnn_script_trains_the_cnn_preset(fake_data_dir):
  """The plain script the Trainer's CNN epochs are held against builds the
  same network as the `cnn` preset (same parameters) and times each epoch."""
  result = gpu.run_plain_cnn_script(fake_data_dir, epochs=2,
                                    max_examples=0)
  preset = models.build_model(models.get_preset("cnn"))
  assert result["params"] == preset.count_params() == 871_210
  assert len(result["epoch_seconds"]) == 2
  assert result["device"] == (
      "GPU" if tf.config.list_physical_devices("GPU") else "CPU")


def _results(cnn, ratios=(1.4, 1.6, 1.45)):
  scaling = {stage: {"time_per_example_8x_vs_1x": 1.0,
                     "peak_rss_8x_vs_1x": 1.0} for stage in stages.STAGES}
  return {"dag": {"ratios": list(ratios), "unchanged_rerun": {
                      "wall_seconds": 2.0},
                  "rerun_after_push": {"recomputed": []}},
          "scaling": scaling, "cnn": cnn}


def test_only_a_gpu_measurement_gets_the_gpu_verdict():
  cnn = {"device": "CPU", "script_device": "CPU", "ratio": 1.02,
         "pipeline_epoch_seconds": [3.9, 2.8, 2.7],
         "script_epoch_seconds": [16.2, 2.8, 2.7], "examples": 6000}
  verdict = verdicts.verdicts(_results(cnn))["gpu_cnn_epoch_vs_script"]
  assert verdict["met"] is None  # a CPU figure is not the GPU goal's
  on_gpu = dict(copy.deepcopy(cnn), device="GPU", script_device="GPU")
  assert verdicts.verdicts(_results(on_gpu))["gpu_cnn_epoch_vs_script"][
      "met"] is True
  slow = dict(on_gpu, ratio=1.3)
  assert verdicts.verdicts(_results(slow))["gpu_cnn_epoch_vs_script"][
      "met"] is False


def test_steady_epoch_seconds_leave_out_the_tracing_epoch():
  assert gpu.steady_epoch_seconds([16.2, 2.8, 2.6]) == 2.7


def test_the_dag_is_held_against_the_median_of_its_pairs():
  cnn = {"device": "CPU", "script_device": "CPU", "ratio": 1.0}
  verdict = verdicts.verdicts(_results(cnn))["dag_vs_script"]
  assert verdict == {"value": 1.45, "target": "<= 1.5", "met": True}
  assert not verdicts.verdicts(_results(cnn, (1.4, 1.6, 1.55)))[
      "dag_vs_script"]["met"]


def test_time_outside_the_components_counts_side_by_side_components_once():
  summary = {"components": {
      "MnistExampleGen": {"started": 0.0, "seconds": 1.0},
      "Trainer": {"started": 1.0, "seconds": 6.0},
      "StatisticsGen": {"started": 1.5, "seconds": 3.0},  # beside Trainer
      "Evaluator": {"started": 8.0, "seconds": 1.0},  # after a 1 s gap
      "Report": {"started": None, "seconds": None}}}  # not run
  assert pairs.busy_seconds(summary) == 8.0


@pytest.mark.slow
def test_the_plain_script_is_what_a_user_writes_on_keras_3(fake_data_dir,
                                                          tmp_path):
  """No project code and no Keras 2 switch: the installed TensorFlow's
  `tf.keras`, even when run from this (Keras 2) process."""
  assert "components" not in pairs.KERAS3_SCRIPT
  assert "tf_keras" not in pairs.KERAS3_SCRIPT
  result = pairs.run_plain_script(fake_data_dir, str(tmp_path), epochs=1)
  assert result["keras"].startswith("3.")
  assert 0 <= result["test_accuracy"] <= 1
  legacy = pairs.run_plain_script(fake_data_dir, str(tmp_path), epochs=1,
                                  script=pairs.TF_KERAS_SCRIPT)
  assert legacy["keras"].startswith("2.")


@pytest.mark.slow
def test_the_statistics_floor_does_statisticsgens_work(fake_data_dir,
                                                      tmp_path):
  """The TFDV compute the bench holds StatisticsGen against reads every
  split and every example, as StatisticsGen does: the floor is the same
  work, not a lighter one."""
  import tensorflow_data_validation as tfdv
  examples = str(tmp_path / "examples")
  ingested = stages.run_stage("ingestion", fake_data_dir, examples)
  floor = stages.run_stage("statistics_floor", examples,
                           str(tmp_path / "floor"))
  assert floor["examples"] == ingested["examples"]
  counted = sum(
      tfdv.load_stats_binary(str(tmp_path / "floor" / name /
                                 "FeatureStats.pb")).datasets[0].num_examples
      for name in ("train", "eval", "test"))
  assert counted == ingested["examples"]
