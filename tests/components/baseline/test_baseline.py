"""The baseline is the model in service, read from the serving directory, and
the best accuracy among the versions' records."""
import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.baseline import executor as baseline_executor
from serving import baseline
from serving import registry
from serving import versions


def _saved_model(path):
  module = tf.Module()
  module.scale = tf.Variable(2.0)
  module.f = tf.function(lambda x: x * module.scale,
                         input_signature=[tf.TensorSpec([None], tf.float32)])
  tf.saved_model.save(module, str(path))
  return str(path)


def _find_baseline(serving_dir, tmp_path, in_service=None):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "baseline_artifact")
  properties = {"serving_model_dir": str(serving_dir)}
  if in_service is not None:
    properties["in_service"] = in_service
  baseline_executor.Executor().Do({}, {"model": [model]}, properties)
  return model


def test_nothing_in_service_means_no_baseline(tmp_path):
  model = _find_baseline(tmp_path / "serving" / "mnist", tmp_path)
  assert not baseline_executor.has_model(model)


def test_the_newest_complete_version_is_the_baseline(tmp_path):
  serving = tmp_path / "serving" / "mnist"
  first, _ = versions.push(_saved_model(tmp_path / "m1"), str(serving),
                           {"source_model": "/pipeline/Trainer/model/7"},
                           now=100)
  os.makedirs(serving / "300" / "variables")  # half-written: no saved_model.pb
  model = _find_baseline(serving, tmp_path)
  assert baseline_executor.has_model(model)
  assert model.get_string_custom_property("version_dir") == first
  assert model.get_string_custom_property(
      "source_model") == "/pipeline/Trainer/model/7"
  loaded = tf.saved_model.load(path_utils.serving_model_path(model.uri))
  assert float(loaded.f(tf.constant([1.5]))[0]) == 3.0


def test_a_version_without_a_record_is_still_the_baseline(tmp_path):
  """A version placed by hand (no record, no index entry) is in service;
  its accuracy is unknown, and the lookup says so."""
  serving = tmp_path / "serving"
  os.makedirs(serving)
  tf.io.gfile.rename(_saved_model(tmp_path / "m"), str(serving / "5"))
  model = _find_baseline(serving, tmp_path)
  assert model.get_string_custom_property("source_model") == str(
      serving / "5")
  assert baseline_executor.best_ever(model) is None
  assert baseline_executor.unrecorded_version_dirs(model) == [
      str(serving / "5")]


def test_the_best_accuracy_ever_pushed_goes_with_the_baseline(tmp_path):
  serving = tmp_path / "serving" / "mnist"
  assert baseline_executor.best_ever(_find_baseline(serving, tmp_path)) is None
  for now, accuracy in ((100, None), (200, 0.981), (300, 0.981), (400, 0.975)):
    record = {"source_model": f"trainer/{now}"}
    if accuracy is not None:
      record["accuracy"] = accuracy
    versions.push(_saved_model(tmp_path / f"m{now}"), str(serving), record,
                  now=now)
  model = _find_baseline(serving, tmp_path)
  assert model.get_string_custom_property("version_dir").endswith("/400")
  # The earliest of the best: version 200, not the one in service.
  assert baseline_executor.best_ever(model) == (0.981, "200")
  assert "accuracy" not in registry.record_of(str(serving), 100)
  # A rolled-back (removed) version no longer counts.
  tf.io.gfile.rmtree(str(serving / "200"))
  tf.io.gfile.rmtree(str(serving / "300"))
  assert baseline_executor.best_ever(_find_baseline(
      serving, tmp_path / "again")) == (0.975, "400")


def test_the_lookup_outputs_the_state_it_was_keyed_with(tmp_path):
  """Keyed with the state read when the DAG was built, the lookup outputs
  that state even if another run pushed meanwhile (the Pusher's
  compare-and-swap then refuses), and fails in one line if the version it
  names was removed meanwhile."""
  serving = tmp_path / "serving"
  first, _ = versions.push(_saved_model(tmp_path / "a"), str(serving),
                           {"accuracy": 0.9}, now=1)
  keyed = baseline.in_service(str(serving)).to_json()
  versions.push(_saved_model(tmp_path / "b"), str(serving),
                {"accuracy": 0.95}, now=2)  # another run, meanwhile
  model = _find_baseline(serving, tmp_path, in_service=keyed)
  assert model.get_string_custom_property("version_dir") == first
  assert baseline_executor.best_ever(model) == (0.9, "1")
  assert json.loads(keyed)["version_dir"] == first
  tf.io.gfile.rmtree(first)  # rolled back meanwhile
  with pytest.raises(baseline_executor.BaselineGoneError,
                     match=f"^{first}: the version in service when this run "
                     "started is gone"):
    _find_baseline(serving, tmp_path / "gone", in_service=keyed)
