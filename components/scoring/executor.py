"""Executor of `TestSplitScorer`."""
from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.baseline import executor as baseline_executor
from components.ingestion import examples_io
from components.artifact_types import ClassificationMetrics
from components.scoring import scores as scores_lib
from components.scoring import predict

SPLIT = "test"
SAMPLES_FILE = "samples.npz"  # in the confusion_matrix artifact
# Custom properties of the `metrics` artifact (KFP shows them as scalars).
ACCURACY_KEY = "accuracy"
EXAMPLES_KEY = "examples"
BASELINE_ACCURACY_KEY = "baseline_accuracy"
BASELINE_VERSION_KEY = "baseline_version"


def read_samples(confusion_matrix_uri: str) -> scores_lib.Samples:
  with tf.io.gfile.GFile(os.path.join(confusion_matrix_uri, SAMPLES_FILE),
                         "rb") as f:
    arrays = np.load(io.BytesIO(f.read()))
    return scores_lib.Samples(images=arrays["images"],
                              labels=arrays["labels"],
                              predicted=arrays["predicted"])


def _score(model_dir: str, split_dir: str, num_classes: int):
  return scores_lib.score(predict.load_classifier(model_dir),
                          examples_io.read_split(split_dir), num_classes)


class Executor(base_executor.BaseExecutor):
  """Scores the candidate (and the baseline, if one is in service)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    model = artifact_utils.get_single_instance(input_dict["model"])
    baseline = artifact_utils.get_single_instance(
        input_dict["baseline_model"])
    metrics = artifact_utils.get_single_instance(output_dict["metrics"])
    confusion = artifact_utils.get_single_instance(
        output_dict["confusion_matrix"])
    class_names = json.loads(exec_properties["class_names"])
    split_dir = examples_io.split_dir(examples.uri, SPLIT)
    if not tf.io.gfile.exists(split_dir):
      raise ValueError(f"{split_dir}: the examples have no {SPLIT} split")
    candidate = _score(path_utils.serving_model_path(model.uri), split_dir,
                       len(class_names))
    if candidate is None:
      raise ValueError(f"{split_dir}: the {SPLIT} split is empty")
    metrics.set_float_custom_property(ACCURACY_KEY, candidate.accuracy)
    metrics.set_int_custom_property(EXAMPLES_KEY, candidate.count)
    if baseline_executor.has_model(baseline):
      in_service = _score(path_utils.serving_model_path(baseline.uri),
                          split_dir, len(class_names))
      metrics.set_float_custom_property(BASELINE_ACCURACY_KEY,
                                        in_service.accuracy)
      metrics.set_string_custom_property(
          BASELINE_VERSION_KEY, baseline.get_string_custom_property(
              baseline_executor.VERSION_DIR_KEY))
    confusion.set_json_value_custom_property(
        ClassificationMetrics.CONFUSION_MATRIX_KEY,
        scores_lib.to_kfp(candidate.matrix, class_names))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=candidate.samples.images,
                        labels=candidate.samples.labels,
                        predicted=candidate.samples.predicted)
    tf.io.gfile.makedirs(confusion.uri)
    with tf.io.gfile.GFile(os.path.join(confusion.uri, SAMPLES_FILE),
                           "wb") as f:
      f.write(buffer.getvalue())
    logging.info("test split: candidate accuracy %.4f on %d examples",
                 candidate.accuracy, candidate.count)
