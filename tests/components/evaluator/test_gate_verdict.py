"""The verdict sentence, from TFMA ValidationResult protos (no TFMA run)."""
from tensorflow_model_analysis.proto import validation_result_pb2

from components.evaluator import eval_config
from components.evaluator import verdict


def _failure(result, label, name, value, *, lower=None, allowed=None,
             is_diff=False):
  per_slice = result.metric_validations_per_slice.add()
  if label is not None:
    key = per_slice.slice_key.single_slice_keys.add()
    key.column, key.int64_value = "label", label
  failure = per_slice.failures.add()
  failure.metric_key.name = name
  failure.metric_key.is_diff = is_diff
  failure.metric_value.double_value.value = value
  if lower is not None:
    failure.metric_threshold.value_threshold.lower_bound.value = lower
  if allowed is not None:
    failure.metric_threshold.change_threshold.absolute.value = -allowed


def test_every_failed_rule_is_named_overall_first_then_by_class():
  result = validation_result_pb2.ValidationResult(validation_ok=False)
  accuracy = eval_config.ACCURACY_METRIC
  _failure(result, 7, accuracy, -0.06, allowed=0.05, is_diff=True)
  _failure(result, 6, accuracy, 0.41, lower=0.5)
  _failure(result, None, accuracy, 0.85, lower=0.9)
  sentence = verdict.refusal(result, {None: 0.85, 7: 0.9},
                             class_names=[str(i) for i in range(6)] +
                             ["shirt", "sneaker"])
  assert sentence == (
      "not pushed: accuracy 0.8500 < minimum 0.9; class 6 (shirt) accuracy "
      "0.4100 < minimum 0.5; class 7 (sneaker) accuracy 0.9000 < baseline "
      "0.9600 \u2212 0.05")


def test_the_guard_is_named_only_when_it_is_the_stricter_rule():
  result = validation_result_pb2.ValidationResult(validation_ok=False)
  _failure(result, None, eval_config.BEST_EVER_GUARD_METRIC, 0.95,
           lower=0.978)
  assert verdict.refusal(result, {None: 0.95}, best_ever_accuracy=0.98) == \
      "not pushed: accuracy 0.9500 < best ever pushed 0.9800 \u2212 0.002"
  # The model in service is the best ever: the baseline rule says it all.
  _failure(result, None, eval_config.ACCURACY_METRIC, -0.03, allowed=0.002,
           is_diff=True)
  assert verdict.refusal(result, {None: 0.95}, best_ever_accuracy=0.98) == \
      "not pushed: accuracy 0.9500 < baseline 0.9800 \u2212 0.002"
  assert verdict.refusal(validation_result_pb2.ValidationResult(
      validation_ok=True)) is None
