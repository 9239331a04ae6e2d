"""TFMA is told the models' type when they are Keras models, so it loads each
model once instead of twice (once more to find out its type), with the same
metrics and the same decision."""
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
import tf_keras as keras
from tf_keras.src.saving.legacy import save as keras_legacy_save
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.baseline import executor as baseline_executor
from components.evaluator import eval_config
from components.ingestion import ingest
from components.trainer import export
from serving import versions
from tests.components.evaluator import run_evaluator


def _keras_model(path, seed):
  """A Keras 2 softmax over the 784 pixels, exported as the Trainer does."""
  keras.utils.set_random_seed(seed)
  model = keras.Sequential([keras.layers.Dense(10, activation="softmax",
                                               input_shape=(784,))])
  export.export_saved_model(model, str(path))
  return str(path)


def _module_model(path):
  """A SavedModel that is not a Keras model."""
  module = tf.Module()

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(examples):
    return {"probabilities": tf.one_hot(tf.zeros_like(examples, tf.int32), 10)}

  module.serve = serve
  tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
  return str(path)


def test_the_type_is_named_exactly_when_tfma_would_find_keras(tmp_path):
  keras_dir = _keras_model(tmp_path / "keras", seed=0)
  module_dir = _module_model(tmp_path / "module")
  untyped = tfma.ModelSpec(signature_name=eval_config.SIGNATURE)
  # TFMA's own probe (what it does when the spec names no type).
  assert tfma.utils.get_model_type(untyped, keras_dir) == tfma.TF_KERAS
  assert tfma.utils.get_model_type(untyped, module_dir) == tfma.TF_GENERIC
  assert eval_config.keras_model_type([keras_dir]) == tfma.TF_KERAS
  assert eval_config.keras_model_type([module_dir]) is None
  assert eval_config.keras_model_type([keras_dir, module_dir]) is None
  config = eval_config.make_eval_config(0.9, 0.002)
  typed = eval_config.with_model_type(config, tfma.TF_KERAS)
  assert [s.model_type for s in typed.model_specs] == [tfma.TF_KERAS]
  assert eval_config.with_model_type(config, None) == config
  assert not config.model_specs[0].model_type  # a copy was changed


@pytest.mark.slow
def test_each_keras_model_is_loaded_once_with_the_same_metrics_and_decision(
    mnist_dir, tmp_path, monkeypatch):
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / "examples")
  examples.split_names = json.dumps(["train", "eval", "test"])
  ingest.ingest(examples.uri, dataset="mnist", seed=0, train_fraction=0.7,
                max_examples=1000, data_dir=mnist_dir)
  candidate = standard_artifacts.Model()
  candidate.uri = str(tmp_path / "candidate")
  _keras_model(path_utils.serving_model_dir(candidate.uri), seed=1)
  # The baseline as the pipeline hands it over: a version in service,
  # looked up by LatestPushedModel.
  serving = tmp_path / "serving"
  versions.push(_keras_model(tmp_path / "pushed", seed=2), str(serving),
                {"source_model": "trainer/1", "accuracy": 0.1}, now=100)
  baseline = standard_artifacts.Model()
  baseline.uri = str(tmp_path / "baseline")
  baseline_executor.Executor().Do({}, {"model": [baseline]},
                                  {"serving_model_dir": str(serving)})
  config = eval_config.make_eval_config(0.05, 0.5)
  loads = []
  load_model = keras_legacy_save.load_model
  monkeypatch.setattr(keras_legacy_save, "load_model",
                      lambda path, *a, **k: loads.append(path) or
                      load_model(path, *a, **k))

  def evaluate(name):
    loads.clear()
    evaluation, blessing = run_evaluator.run_evaluator(
        tmp_path / name, {"examples": [examples], "model": [candidate],
                          "baseline_model": [baseline]}, config)
    metrics = {(str(m.slice_key), kv.key.name, kv.key.model_name,
                kv.key.is_diff): kv.value.double_value.value
               for m in tfma.load_metrics(evaluation.uri)
               for kv in m.metric_keys_and_values}
    return (metrics, tfma.load_validation_result(evaluation.uri),
            blessing.get_int_custom_property("blessed"), len(loads))

  typed = evaluate("typed")
  monkeypatch.setattr(eval_config, "keras_model_type", lambda dirs: None)
  probed = evaluate("probed")
  assert probed[3] == 4  # TFMA's probe: each model loaded twice
  assert typed[3] == 2   # candidate and baseline, once each
  assert set(typed[0]) == set(probed[0])
  assert len(typed[0]) > 60  # both models, 11 slices, and the diffs
  for key, value in probed[0].items():
    assert typed[0][key] == pytest.approx(value, abs=1e-6), key
  assert typed[1] == probed[1]
  assert typed[2] == probed[2]
  assert np.isfinite(list(typed[0].values())).all()
