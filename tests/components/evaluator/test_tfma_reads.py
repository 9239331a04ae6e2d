"""TFMA decodes only the features it reads (the label), and the gate's
numbers are the same as when it decoded every feature: one model, the same
MNIST examples, the Evaluator executor with and without the schema."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.evaluator import eval_config
from components.evaluator import executor as evaluator_executor
from components.ingestion import examples_io
from components.ingestion import ingest
from components.trainer import data
from pipeline import config as config_lib
from tests.components.evaluator import run_evaluator


def _template_model(path, images, labels):
  """A model that reads every pixel: softmax of the image against each
  class's mean image (about 80% right on MNIST)."""
  means = np.stack([images[labels == k].mean(axis=0) for k in range(10)])
  weights = tf.constant((means - means.mean(axis=0)).T * 20, tf.float32)
  module = tf.Module()

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(examples):
    image = tf.io.parse_example(examples, examples_io.FEATURE_SPEC)[
        examples_io.IMAGE_KEY]
    return {"probabilities": tf.nn.softmax(tf.matmul(image, weights))}

  module.serve = serve
  tf.saved_model.save(module, path, signatures={"serving_default": serve})


def _metrics(evaluation_uri):
  values = {}
  for metrics in tfma.load_metrics(evaluation_uri):
    for entry in metrics.metric_keys_and_values:
      values[(str(metrics.slice_key), entry.key.name)] = (
          entry.value.double_value.value)
  return values


def test_features_tfma_reads_are_the_label_and_the_slicing_keys():
  config = eval_config.make_eval_config(0.9, 0.002)
  assert evaluator_executor.features_tfma_reads(config) == {
      examples_io.LABEL_KEY}


@pytest.mark.slow
def test_decoding_only_the_label_leaves_every_metric_and_decision_alike(
    mnist_dir, tmp_path):
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / "examples")
  examples.split_names = json.dumps(["train", "eval", "test"])
  ingest.ingest(examples.uri, dataset="mnist", seed=0, train_fraction=0.7,
                max_examples=3000, data_dir=mnist_dir)
  images, labels = data.load_split(os.path.join(
      examples_io.split_dir(examples.uri, "train"), "*"))
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "model")
  _template_model(path_utils.serving_model_dir(model.uri), images.numpy(),
                  labels.numpy())
  schema = standard_artifacts.Schema()
  schema.uri = str(tmp_path / "schema")
  os.makedirs(schema.uri)
  shutil.copy(config_lib.PipelineConfig(dataset="mnist").schema_path,
              schema.uri)
  config = eval_config.make_eval_config(0.5, 0.002)

  def evaluate(name, inputs):
    evaluation, _ = run_evaluator.run_evaluator(
        tmp_path / name, {"examples": [examples], "model": [model], **inputs},
        config)
    return (_metrics(evaluation.uri),
            tfma.load_validation_result(evaluation.uri))

  every_feature, decision_before = evaluate("every_feature", {})
  label_only, decision_after = evaluate("label_only", {"schema": [schema]})
  assert 0.6 < every_feature[("", "sparse_categorical_accuracy")] < 0.7
  assert len(every_feature) == 33  # 3 metrics overall and for 10 classes
  assert set(label_only) == set(every_feature)
  for key, value in every_feature.items():
    assert label_only[key] == pytest.approx(value, abs=1e-6), key
  # The same decision, for the same reason: class 5 (2% right) is refused.
  assert decision_after == decision_before
  assert not decision_before.validation_ok
  (refused,) = decision_before.metric_validations_per_slice
  assert refused.slice_key.single_slice_keys[0].int64_value == 5
