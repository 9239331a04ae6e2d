"""The one place the TFMA EvalConfig is built.

Every blessing rule is a TFMA threshold, so the decision is TFMA's
`ValidationResult` (`components.evaluator.verdict` words it):

- overall accuracy >= `min_accuracy` (value) and no more than
  `max_accuracy_drop` below the baseline's (change);
- each class (slice `label`) accuracy >= `min_class_accuracy` (value) and no
  more than `max_class_accuracy_drop` below the baseline's accuracy on that
  class (change);
- the cumulative guard: overall accuracy >= best ever pushed −
  `max_accuracy_drop`, on the metric `BEST_EVER_GUARD_METRIC` (added at run
  time by the Evaluator executor from `LatestPushedModel`'s output).

With no baseline TFX drops the change thresholds; the value thresholds decide.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.evaluator import settings
from components.ingestion import examples_io

# The model signature TFMA evaluates (and `rescore` scores) versions by.
SIGNATURE = "serving_default"

ACCURACY_METRIC = "sparse_categorical_accuracy"
LOSS_METRIC = "sparse_categorical_crossentropy"
# The cumulative guard's metric: accuracy again, under its own name, so that a
# failure says which rule refused the candidate.
BEST_EVER_GUARD_METRIC = "accuracy_vs_best_ever"
# What Keras 2 writes beside every SavedModel it saves (tf_keras'
# `saving/legacy/saved_model/constants.SAVED_METADATA_PATH`).
KERAS_METADATA = "keras_metadata.pb"

# The rules' default numbers and their reasons: `components.evaluator.settings`.


def _threshold(lower_bound: float,
               max_drop: Optional[float]) -> tfma.MetricThreshold:
  threshold = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
      lower_bound={"value": lower_bound}))
  if max_drop is not None:
    threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
        absolute={"value": -max_drop}))
  return threshold


def make_eval_config(min_accuracy: float,
                     max_accuracy_drop: float,
                     min_class_accuracy: Optional[float] = None,
                     max_class_accuracy_drop: Optional[float] =
                     settings.DEFAULT_MAX_CLASS_ACCURACY_DROP,
                     best_ever_accuracy: Optional[float] = None
                     ) -> tfma.EvalConfig:
  """Accuracy, loss, example count and per-class accuracy, with the blessing
  thresholds above.

  No confusion-matrix plot here: nothing reads it on `eval` (the report's
  comes from `TestSplitScorer`, on the official test split), and TFMA's
  per-example plot update cost 1.4 of the Evaluator's 8 s.

  `min_class_accuracy` defaults to `min_accuracy` − 0.3; None for
  `max_class_accuracy_drop` turns the per-class change threshold off.
  `best_ever_accuracy` adds the cumulative guard (the Evaluator executor
  does so at run time; see `with_best_ever_guard`).
  """
  if min_class_accuracy is None:
    min_class_accuracy = settings.default_min_class_accuracy(min_accuracy)
  overall = tfma.SlicingSpec()
  per_class = tfma.SlicingSpec(feature_keys=[examples_io.LABEL_KEY])
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key=examples_io.LABEL_KEY,
                                  signature_name=SIGNATURE)],
      slicing_specs=[overall, per_class],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          tfma.MetricConfig(
              class_name="SparseCategoricalAccuracy",
              per_slice_thresholds=[
                  tfma.PerSliceMetricThreshold(
                      slicing_specs=[overall],
                      threshold=_threshold(min_accuracy, max_accuracy_drop)),
                  tfma.PerSliceMetricThreshold(
                      slicing_specs=[per_class],
                      threshold=_threshold(min_class_accuracy,
                                           max_class_accuracy_drop)),
              ]),
          tfma.MetricConfig(class_name="SparseCategoricalCrossentropy"),
      ])],
      # Not the model's compiled "accuracy"/"loss" too: the same two again.
      options=tfma.Options(include_default_metrics={"value": False}))
  if best_ever_accuracy is not None:
    config = with_best_ever_guard(config, best_ever_accuracy,
                                  max_accuracy_drop)
  return config


def keras_model_type(model_dirs: Sequence[str]) -> Optional[str]:
  """`tfma.TF_KERAS` when every SavedModel in `model_dirs` was saved by
  Keras 2 (it holds `keras_metadata.pb`), else None.

  TFMA learns a model's type, when the ModelSpec does not name one, by
  loading the whole model with Keras and throwing it away (then loads it
  again to evaluate): 0.1-0.2 s per model here. Keras writes
  `keras_metadata.pb` with every model it saves, and a SavedModel without
  it is one TFMA's probe calls `tf_generic` (or pre-TF 2.5 Keras); None
  leaves those to TFMA's probe.
  """
  if model_dirs and all(tf.io.gfile.exists(os.path.join(d, KERAS_METADATA))
                        for d in model_dirs):
    return tfma.TF_KERAS
  return None


def with_model_type(config: tfma.EvalConfig,
                    model_type: Optional[str]) -> tfma.EvalConfig:
  """A copy of `config` whose ModelSpecs that name no type name
  `model_type` (TFX copies the candidate's spec for the baseline); `config`
  itself when None."""
  if model_type is None:
    return config
  typed = tfma.EvalConfig()
  typed.CopyFrom(config)
  for spec in typed.model_specs:
    spec.model_type = spec.model_type or model_type
  return typed


def max_accuracy_drop_of(config: tfma.EvalConfig) -> Optional[float]:
  """The overall change threshold's allowed drop (`max_accuracy_drop`)."""
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      if metric.class_name != "SparseCategoricalAccuracy":
        continue
      for per_slice in metric.per_slice_thresholds:
        if (any(not s.feature_keys and not s.feature_values
                for s in per_slice.slicing_specs) and
            per_slice.threshold.HasField("change_threshold")):
          return -per_slice.threshold.change_threshold.absolute.value
  return None


def with_best_ever_guard(config: tfma.EvalConfig, best_ever_accuracy: float,
                         max_accuracy_drop: Optional[float] = None
                         ) -> tfma.EvalConfig:
  """A copy of `config` that also requires overall accuracy >= best ever
  pushed − `max_accuracy_drop` (default: the config's own change threshold),
  as metric `BEST_EVER_GUARD_METRIC`. Replaces an earlier guard."""
  if max_accuracy_drop is None:
    max_accuracy_drop = max_accuracy_drop_of(config)
  if max_accuracy_drop is None:
    raise ValueError("eval config: no overall accuracy change threshold to "
                     "take MAX_ACCURACY_DROP from")
  guarded = tfma.EvalConfig()
  guarded.CopyFrom(config)
  spec = guarded.metrics_specs[0]
  kept = [m for m in spec.metrics if BEST_EVER_GUARD_METRIC not in m.config]
  del spec.metrics[:]
  spec.metrics.extend(kept)
  spec.metrics.append(tfma.MetricConfig(
      class_name="SparseCategoricalAccuracy",
      config=json.dumps({"name": BEST_EVER_GUARD_METRIC}),
      per_slice_thresholds=[tfma.PerSliceMetricThreshold(
          slicing_specs=[tfma.SlicingSpec()],
          threshold=_threshold(
              round(best_ever_accuracy - max_accuracy_drop, 10), None))]))
  return guarded
