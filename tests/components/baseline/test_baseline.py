"""The baseline is the model in service, read from the serving directory."""
import json
import os

import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.baseline import executor as baseline_executor
from serving import registry
from serving import versions


def _saved_model(path):
  module = tf.Module()
  module.scale = tf.Variable(2.0)
  module.f = tf.function(lambda x: x * module.scale,
                         input_signature=[tf.TensorSpec([None], tf.float32)])
  tf.saved_model.save(module, str(path))
  return str(path)


def _find_baseline(serving_dir, tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "baseline_artifact")
  baseline_executor.Executor().Do(
      {}, {"model": [model]}, {"serving_model_dir": str(serving_dir)})
  return model


def test_nothing_in_service_means_no_baseline(tmp_path):
  model = _find_baseline(tmp_path / "serving" / "mnist", tmp_path)
  assert not baseline_executor.has_model(model)


def test_the_newest_complete_version_is_the_baseline(tmp_path):
  serving = tmp_path / "serving" / "mnist"
  first, _ = versions.push(_saved_model(tmp_path / "m1"), str(serving),
                             now=100)
  registry.record_push(str(serving), first, "/pipeline/Trainer/model/7")
  os.makedirs(serving / "300" / "variables")  # half-written: no saved_model.pb
  model = _find_baseline(serving, tmp_path)
  assert baseline_executor.has_model(model)
  assert model.get_string_custom_property("version_dir") == first
  assert model.get_string_custom_property(
      "source_model") == "/pipeline/Trainer/model/7"
  loaded = tf.saved_model.load(path_utils.serving_model_path(model.uri))
  assert float(loaded.f(tf.constant([1.5]))[0]) == 3.0


def test_registry_records_each_push_and_survives_corruption(tmp_path):
  serving = str(tmp_path / "serving")
  path, created = versions.push(_saved_model(tmp_path / "m"), serving, now=5)
  assert created
  entry = registry.record_push(serving, path, "uri://trainer/1")
  assert registry.entry_for(serving, 5) == entry
  assert json.load(open(registry.registry_path(serving)))["versions"] == [
      entry]
  assert versions.existing_versions(serving) == [5]  # not a version
  with open(registry.registry_path(serving), "w") as f:
    f.write("{not json")
  assert registry.read_entries(serving) == []
  # A version placed by hand, without provenance, is still the baseline.
  model = _find_baseline(serving, tmp_path)
  assert model.get_string_custom_property("source_model") == path


def test_the_best_accuracy_ever_pushed_goes_with_the_baseline(tmp_path):
  serving = tmp_path / "serving" / "mnist"
  assert baseline_executor.best_ever(_find_baseline(serving, tmp_path)) is None
  for now, accuracy in ((100, None), (200, 0.981), (300, 0.981), (400, 0.975)):
    path, _ = versions.push(_saved_model(tmp_path / f"m{now}"),
                              str(serving), now=now)
    registry.record_push(str(serving), path, f"trainer/{now}", accuracy)
  model = _find_baseline(serving, tmp_path)
  assert model.get_string_custom_property("version_dir").endswith("/400")
  # The earliest of the best: version 200, not the one in service.
  assert baseline_executor.best_ever(model) == (0.981, "200")
  assert "accuracy" not in registry.entry_for(str(serving), 100)
