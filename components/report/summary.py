"""`summary.json`: what a run did, from the artifacts the Report receives.

Everything here reads artifacts and files; nothing re-derives a decision. The
verdict is TFMA's validation result (through the blessing and
`components.evaluator.verdict`), the push is the Pusher's record.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf

from components.evaluator import metrics


def evaluation_metrics(evaluation_uri: str) -> Dict[str, Dict[str, Any]]:
  """TFMA's overall metrics of candidate and baseline, and the candidate's
  per-class accuracy (eval split)."""
  return metrics.read(evaluation_uri)


def validation_result(evaluation_uri: str) -> Dict[str, Any]:
  """Whether TFMA's thresholds passed, and the failures if not."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  result = tfma.load_validation_result(evaluation_uri)
  failures = []
  for slice_failure in result.metric_validations_per_slice:
    for failure in slice_failure.failures:
      failures.append({"metric": failure.metric_key.name,
                       "is_diff": failure.metric_key.is_diff,
                       "value": failure.metric_value.double_value.value,
                       "threshold": str(failure.metric_threshold).strip(),
                       "message": failure.message})
  return {"passed": bool(result.validation_ok), "failures": failures}


def read_json(path: str) -> Optional[Any]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def tuning(best_hyperparameters_uri: Optional[str],
           tuner_results_uri: Optional[str],
           frozen: bool) -> Optional[Dict[str, Any]]:
  """The Tuner's best hyperparameters and its trials (best first).

  Each trial: `trial_id`, `score` (validation accuracy) and its values.
  `frozen`: imported from an earlier Tuner (TUNE_FROM), no search this run.
  """
  if not best_hyperparameters_uri:
    return None
  best = read_json(os.path.join(best_hyperparameters_uri,
                                "best_hyperparameters.txt")) or {}
  trials = (read_json(os.path.join(tuner_results_uri, "tuner_results.json"))
            if tuner_results_uri else None) or []
  return {
      "objective": "val_accuracy",
      "best_hyperparameters": best.get("values", best),
      "trials": sorted(trials, key=lambda t: -(t.get("score") or 0)),
      "frozen_from": best_hyperparameters_uri if frozen else None,
  }


def trained_model(trainer_custom_config: Dict[str, Any],
                  tuned: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """The model the Trainer trained: its preset resolved, tuned values in."""
  from components.trainer import hparams  # pylint: disable=g-import-not-at-top
  config = hparams.TrainerConfig.from_custom_config(trainer_custom_config)
  config = config.with_hyperparameters(
      tuned["best_hyperparameters"] if tuned else None)
  return dataclasses.asdict(config.resolved())


def verdict(summary: Dict[str, Any]) -> str:
  """One sentence: where the model went, or why it was not pushed."""
  test = (summary.get("test_accuracy") or {}).get("candidate")
  test_text = f" (test accuracy {test:.4f})" if test is not None else ""
  if summary.get("pushed") and summary.get("succeeded_by"):
    return (f"blessed; pushed earlier as {summary['pushed_to']}, since "
            f"succeeded by version {summary['succeeded_by']}{test_text}")
  if summary.get("pushed") and not summary.get("new_version"):
    return (f"blessed; already in service as {summary['pushed_to']}"
            f"{test_text}")
  if summary.get("pushed"):
    return f"pushed to {summary['pushed_to']}{test_text}"
  reason = (summary.get("refusal") or "").removeprefix("not pushed: ")
  return f"not pushed: {reason or 'the model was not blessed'}{test_text}"


def outcome(summary: Dict[str, Any]) -> str:
  """The verdict without where the model went: 'pushed', 'already in
  service' or 'not pushed: <reason>' (equal across orchestrators)."""
  if summary.get("pushed"):
    return "already in service" if not summary.get("new_version") else "pushed"
  return verdict({**summary, "test_accuracy": None})


def write_json(summary: Dict[str, Any], path: str) -> None:
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(json.dumps(summary, indent=2, sort_keys=False, default=str))
