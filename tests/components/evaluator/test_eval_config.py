"""The TFMA configuration that decides blessing."""
import json

import pytest
import tensorflow_model_analysis as tfma

from components.evaluator import eval_config


def _accuracy_configs(config):
  return [m for m in config.metrics_specs[0].metrics
          if m.class_name == "SparseCategoricalAccuracy"]


def test_eval_config_metrics_slices_and_thresholds():
  config = eval_config.make_eval_config(min_accuracy=0.97,
                                        max_accuracy_drop=0.001)
  (spec,) = config.model_specs
  assert spec.label_key == "label" and spec.signature_name == "serving_default"
  metrics = {m.class_name: m for m in config.metrics_specs[0].metrics}
  assert set(metrics) == {"SparseCategoricalAccuracy",
                          "SparseCategoricalCrossentropy", "ExampleCount"}
  assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["label"]]
  (accuracy,) = _accuracy_configs(config)  # no guard without a best ever
  overall, per_class = accuracy.per_slice_thresholds
  assert [list(s.feature_keys) for s in overall.slicing_specs] == [[]]
  threshold = overall.threshold
  assert threshold.value_threshold.lower_bound.value == 0.97
  assert threshold.change_threshold.absolute.value == -0.001
  assert threshold.change_threshold.direction == \
      tfma.MetricDirection.HIGHER_IS_BETTER
  # Each class: at least MIN_ACCURACY - 0.3, at most 0.05 below the baseline.
  assert [list(s.feature_keys) for s in per_class.slicing_specs] == [["label"]]
  assert per_class.threshold.value_threshold.lower_bound.value == \
      pytest.approx(0.67)
  assert per_class.threshold.change_threshold.absolute.value == -0.05


def test_per_class_thresholds_are_parameters():
  config = eval_config.make_eval_config(0.9, 0.002, min_class_accuracy=0.8,
                                        max_class_accuracy_drop=None)
  (accuracy,) = _accuracy_configs(config)
  per_class = accuracy.per_slice_thresholds[1].threshold
  assert per_class.value_threshold.lower_bound.value == 0.8
  assert not per_class.HasField("change_threshold")


def test_the_cumulative_guard_is_one_more_tfma_threshold():
  config = eval_config.make_eval_config(0.9, 0.002)
  assert eval_config.max_accuracy_drop_of(config) == 0.002
  guarded = eval_config.with_best_ever_guard(config, 0.979)
  again = eval_config.with_best_ever_guard(guarded, 0.981)  # replaces it
  _, guard = _accuracy_configs(again)
  assert json.loads(guard.config) == {
      "name": eval_config.BEST_EVER_GUARD_METRIC}
  (per_slice,) = guard.per_slice_thresholds
  assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]
  assert per_slice.threshold.value_threshold.lower_bound.value == \
      pytest.approx(0.979)
  assert not per_slice.threshold.HasField("change_threshold")
  assert len(_accuracy_configs(config)) == 1  # the original is unchanged
  assert eval_config.make_eval_config(0.9, 0.002, best_ever_accuracy=0.981) \
      == again
