"""The one reader of TFMA's metrics output (the Evaluator's `evaluation`):
the blessing, the verdict and the report all take their numbers from here."""
from __future__ import annotations

from typing import Any, Dict, Optional

from components.evaluator import eval_config

BASELINE_MODEL_NAME = "baseline"  # TFMA's name for the baseline model


def read(evaluation_uri: str) -> Dict[str, Dict[Any, float]]:
  """{"candidate": {metric: value}, "baseline": {metric: value}} on the
  whole split, and "per_class_accuracy": {label: the candidate's accuracy}
  (eval split). Diffs against the baseline are left out."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  result: Dict[str, Dict[Any, float]] = {"candidate": {}, "baseline": {},
                                         "per_class_accuracy": {}}
  for slice_metrics in tfma.load_metrics(evaluation_uri):
    slice_key = [s.int64_value
                 for s in slice_metrics.slice_key.single_slice_keys]
    for kv in slice_metrics.metric_keys_and_values:
      if not kv.value.HasField("double_value") or kv.key.is_diff:
        continue
      value = kv.value.double_value.value
      role = ("baseline" if kv.key.model_name == BASELINE_MODEL_NAME
              else "candidate")
      if not slice_key:
        result[role][kv.key.name] = value
      elif kv.key.name == eval_config.ACCURACY_METRIC and role == "candidate":
        result["per_class_accuracy"][int(slice_key[0])] = value
  return result


def candidate_accuracy(evaluation_uri: str) -> Optional[float]:
  """The candidate's accuracy on the whole split."""
  return read(evaluation_uri)["candidate"].get(eval_config.ACCURACY_METRIC)
