"""The TFMA configuration that decides blessing."""
import tensorflow_model_analysis as tfma

from components.evaluator import eval_config


def test_eval_config_metrics_slices_and_thresholds():
  config = eval_config.make_eval_config(min_accuracy=0.97,
                                        max_accuracy_drop=0.001)
  (spec,) = config.model_specs
  assert spec.label_key == "label" and spec.signature_name == "serving_default"
  metrics = {m.class_name: m for m in config.metrics_specs[0].metrics}
  assert set(metrics) >= {"SparseCategoricalAccuracy",
                          "SparseCategoricalCrossentropy", "ExampleCount",
                          "MultiClassConfusionMatrixPlot"}
  assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["label"]]
  (per_slice,) = metrics["SparseCategoricalAccuracy"].per_slice_thresholds
  # Thresholds judge the overall slice only, not each class.
  assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]
  threshold = per_slice.threshold
  assert threshold.value_threshold.lower_bound.value == 0.97
  assert threshold.change_threshold.absolute.value == -0.001
  assert threshold.change_threshold.direction == \
      tfma.MetricDirection.HIGHER_IS_BETTER
