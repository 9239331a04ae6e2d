"""The one place the TFMA EvalConfig is built."""
from __future__ import annotations

import tensorflow_model_analysis as tfma

from components.ingestion import examples_io

ACCURACY_METRIC = "sparse_categorical_accuracy"
LOSS_METRIC = "sparse_categorical_crossentropy"


def make_eval_config(min_accuracy: float,
                     max_accuracy_drop: float) -> tfma.EvalConfig:
  """Accuracy, loss, example count, per-class accuracy and confusion matrix.

  A candidate is blessed when its accuracy on `eval` is at least
  `min_accuracy` and, if a baseline (the latest blessed model) exists, no more
  than `max_accuracy_drop` below the baseline's. With no baseline, TFX drops
  the change threshold and the value threshold alone decides.
  """
  accuracy_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={"value": min_accuracy}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={"value": -max_accuracy_drop}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key=examples_io.LABEL_KEY,
                                  signature_name="serving_default")],
      slicing_specs=[
          tfma.SlicingSpec(),  # the whole split
          tfma.SlicingSpec(feature_keys=[examples_io.LABEL_KEY]),  # per class
      ],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          tfma.MetricConfig(
              class_name="SparseCategoricalAccuracy",
              # Thresholds judge the whole split, not each class slice.
              per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                  slicing_specs=[tfma.SlicingSpec()],
                  threshold=accuracy_threshold)]),
          tfma.MetricConfig(class_name="SparseCategoricalCrossentropy"),
          tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
      ])])
