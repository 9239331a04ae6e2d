"""The Evaluator's decision in one sentence, read from TFMA's ValidationResult.

`refusal` is pure (protos in, a sentence out); `from_evaluation` loads them
from the Evaluator's `evaluation` output. The sentence names the rule, and
the class, that refused a candidate, e.g. `not pushed: class 7 accuracy
0.4100 < minimum 0.6` or `not pushed: accuracy 0.9712 < best ever pushed
0.9790 − 0.002`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from components.evaluator import eval_config as eval_config_lib
from components.evaluator import metrics

MINUS = "\u2212"
# (label or None for the whole split) -> candidate accuracy.
Accuracies = Dict[Optional[int], float]


def _label(slice_key) -> Optional[int]:
  for single in slice_key.single_slice_keys:
    return int(single.int64_value)
  return None


def _number(value: float) -> str:
  return f"{value:g}"


def _class(label: int, class_names: Optional[Sequence[str]]) -> str:
  if class_names and 0 <= label < len(class_names):
    return f"class {label} ({class_names[label]})"
  return f"class {label}"


def _reason(failure, label: Optional[int], accuracies: Accuracies,
            best_ever_accuracy: Optional[float],
            class_names: Optional[Sequence[str]]) -> Optional[str]:
  key, threshold = failure.metric_key, failure.metric_threshold
  value = failure.metric_value.double_value.value
  what = "accuracy" if label is None else \
      f"{_class(label, class_names)} accuracy"
  if key.name == eval_config_lib.BEST_EVER_GUARD_METRIC:
    floor = threshold.value_threshold.lower_bound.value
    if best_ever_accuracy is None:
      return f"accuracy {value:.4f} < best ever pushed {MINUS} allowed drop " \
             f"= {floor:.4f}"
    drop = round(best_ever_accuracy - floor, 6)
    return (f"accuracy {value:.4f} < best ever pushed "
            f"{best_ever_accuracy:.4f} {MINUS} {_number(drop)}")
  if key.name != eval_config_lib.ACCURACY_METRIC:
    return None
  if key.is_diff:
    allowed = -threshold.change_threshold.absolute.value
    candidate = accuracies.get(label)
    if candidate is None:
      return (f"{what} {-value:.4f} below the baseline's, more than "
              f"{_number(allowed)}")
    return (f"{what} {candidate:.4f} < baseline {candidate - value:.4f} "
            f"{MINUS} {_number(allowed)}")
  minimum = threshold.value_threshold.lower_bound.value
  return f"{what} {value:.4f} < minimum {_number(minimum)}"


def _guard_implied(validation_result, accuracies: Accuracies) -> bool:
  """Whether the overall change rule failed with a floor at least as high as
  the cumulative guard's (the model in service is the best ever): then the
  guard adds nothing to say."""
  guard = change = None
  for per_slice in validation_result.metric_validations_per_slice:
    if _label(per_slice.slice_key) is not None:
      continue
    for failure in per_slice.failures:
      key, threshold = failure.metric_key, failure.metric_threshold
      if key.name == eval_config_lib.BEST_EVER_GUARD_METRIC:
        guard = threshold.value_threshold.lower_bound.value
      elif (key.name == eval_config_lib.ACCURACY_METRIC and key.is_diff and
            None in accuracies):
        baseline = accuracies[None] - failure.metric_value.double_value.value
        change = baseline + threshold.change_threshold.absolute.value
  return guard is not None and change is not None and guard <= change + 1e-9


def reasons(validation_result, accuracies: Optional[Accuracies] = None,
            best_ever_accuracy: Optional[float] = None,
            class_names: Optional[Sequence[str]] = None) -> List[str]:
  """Each failed rule, in words: the whole split's first, then by class."""
  found: List[Tuple[Tuple[int, int], str]] = []
  for per_slice in validation_result.metric_validations_per_slice:
    label = _label(per_slice.slice_key)
    for failure in per_slice.failures:
      text = _reason(failure, label, accuracies or {}, best_ever_accuracy,
                     class_names)
      if text is None:
        text = f"{failure.metric_key.name}: {failure.message.strip()}"
      found.append(((0 if label is None else 1, label or 0), text))
  texts = [text for _, text in sorted(found, key=lambda f: f[0])]
  if _guard_implied(validation_result, accuracies or {}):
    texts = [t for t in texts if "best ever pushed" not in t]
  if not texts and not validation_result.validation_ok:
    if validation_result.missing_slices:
      texts.append("TFMA found no examples for slice "
                   f"{validation_result.missing_slices[0]}".strip())
    else:
      texts.append("TFMA's validation failed")
  return list(dict.fromkeys(texts))


def refusal(validation_result, accuracies: Optional[Accuracies] = None,
            best_ever_accuracy: Optional[float] = None,
            class_names: Optional[Sequence[str]] = None) -> Optional[str]:
  """`not pushed: <every failed rule>`, or None when TFMA blessed."""
  if validation_result.validation_ok:
    return None
  return "not pushed: " + "; ".join(reasons(
      validation_result, accuracies, best_ever_accuracy, class_names))


def from_evaluation(evaluation_uri: str,
                    best_ever_accuracy: Optional[float] = None,
                    class_names: Optional[Sequence[str]] = None
                    ) -> Optional[str]:
  """`refusal` of the Evaluator's `evaluation` output directory.

  `best_ever_accuracy`: the blessing's `best_ever_accuracy`, if any.
  """
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  read = metrics.read(evaluation_uri)
  accuracies: Accuracies = dict(read["per_class_accuracy"])
  if eval_config_lib.ACCURACY_METRIC in read["candidate"]:
    accuracies[None] = read["candidate"][eval_config_lib.ACCURACY_METRIC]
  return refusal(tfma.load_validation_result(evaluation_uri), accuracies,
                 best_ever_accuracy, class_names)
