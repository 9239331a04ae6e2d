"""What the latest run did, read back from ML Metadata into `summary.json`."""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.evaluator import eval_config
from components.evaluator import executor as evaluator_executor
from components.ingestion import datasets
from components.ingestion import examples_io

_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
ACCURACY = eval_config.ACCURACY_METRIC


def sqlite_store(path: str) -> metadata_store.MetadataStore:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = 1  # READONLY
  return metadata_store.MetadataStore(config)


class RunRecord:
  """Executions and their input/output artifacts of one pipeline run."""

  def __init__(self, store: metadata_store.MetadataStore, pipeline_name: str):
    self.store = store
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
      raise LookupError(f"no runs of pipeline {pipeline_name} in metadata")
    node_type = store.get_context_type("node").id
    run_type = store.get_context_type("pipeline_run").id
    runs = collections.defaultdict(list)
    self.node_of = {}
    for execution in store.get_executions_by_context(pipeline_ctx.id):
      for ctx in store.get_contexts_by_execution(execution.id):
        if ctx.type_id == node_type:
          self.node_of[execution.id] = ctx.name[len(pipeline_name) + 1:]
        elif ctx.type_id == run_type:
          runs[ctx.name].append(execution)
    latest = max(runs, key=lambda r: max(e.create_time_since_epoch
                                         for e in runs[r]))
    self.run_id = latest
    self.executions = {self.node_of.get(e.id, str(e.id)): e
                       for e in sorted(runs[latest], key=lambda e: e.id)}

  def state(self, node: str) -> Optional[str]:
    execution = self.executions.get(node)
    return _STATES.get(execution.last_known_state) if execution else None

  def artifacts(self, node: str, key: str, output: bool = True
                ) -> List[metadata_store_pb2.Artifact]:
    execution = self.executions.get(node)
    if execution is None:
      return []
    kinds = ((metadata_store_pb2.Event.OUTPUT,
              metadata_store_pb2.Event.DECLARED_OUTPUT) if output else
             (metadata_store_pb2.Event.INPUT,
              metadata_store_pb2.Event.DECLARED_INPUT))
    ids = [e.artifact_id for e in
           self.store.get_events_by_execution_ids([execution.id])
           if e.type in kinds and e.path.steps and e.path.steps[0].key == key]
    return self.store.get_artifacts_by_id(ids) if ids else []


def custom(artifact: metadata_store_pb2.Artifact, key: str) -> Any:
  value = artifact.custom_properties.get(key)
  if value is None:
    return None
  kind = value.WhichOneof("value")
  if kind == "struct_value":
    from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
    return json_format.MessageToDict(value.struct_value)
  return getattr(value, kind)


def evaluation_metrics(evaluation_uri: str) -> Dict[str, Dict[str, Any]]:
  """Overall metrics of candidate and baseline, and per-class accuracy."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  result: Dict[str, Dict[str, Any]] = {"candidate": {}, "baseline": {},
                                       "per_class_accuracy": {}}
  for slice_metrics in tfma.load_metrics(evaluation_uri):
    slice_key = {s.column: s.int64_value
                 for s in slice_metrics.slice_key.single_slice_keys}
    for kv in slice_metrics.metric_keys_and_values:
      name = kv.key.name
      if not kv.value.HasField("double_value"):
        continue
      if kv.key.is_diff:
        continue
      value = kv.value.double_value.value
      role = "baseline" if kv.key.model_name == "baseline" else "candidate"
      if not slice_key:
        result[role][name] = value
      elif name == ACCURACY and role == "candidate":
        label = int(list(slice_key.values())[0])
        result["per_class_accuracy"][label] = value
  return result


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


def predict_split(model_dir: str, examples_uri: str, split: str,
                  ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """(probabilities, labels, images) of a SavedModel on one ingested split."""
  from components.trainer import export  # pylint: disable=g-import-not-at-top
  directory = examples_io.split_dir(examples_uri, split)
  if not tf.io.gfile.exists(directory):
    return None
  serve = tf.saved_model.load(model_dir).signatures[export.IMAGES_SIGNATURE]
  probs, labels, images = [], [], []
  for batch_images, batch_labels in examples_io.read_split(directory):
    probs.append(serve(images=tf.constant(batch_images))[
        export.OUTPUT_KEY].numpy())
    labels.append(batch_labels)
    images.append(batch_images)
  if not labels:
    return None
  return np.concatenate(probs), np.concatenate(labels), np.concatenate(images)


def accuracy(predictions) -> Optional[float]:
  if predictions is None:
    return None
  probs, labels, _ = predictions
  return float(np.mean(np.argmax(probs, axis=1) == labels))


def build_summary(config, component_seconds: Dict[str, float]
                  ) -> Tuple[Dict[str, Any], Optional[tuple]]:
  """The summary of the latest run of `config`'s pipeline, and the
  candidate's (probabilities, labels, images) on the test split."""
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  record = RunRecord(sqlite_store(config.metadata_path), config.pipeline_name)
  examples = (record.artifacts("MnistExampleGen", "examples") or [None])[0]
  model = (record.artifacts("Trainer", "model") or [None])[0]
  evaluation = (record.artifacts("Evaluator", "evaluation") or [None])[0]
  blessing = (record.artifacts("Evaluator", "blessing") or [None])[0]
  pushed = (record.artifacts("Pusher", "pushed_model") or [None])[0]
  # The Evaluator records on the blessing which pushed version it compared
  # with, and the Trainer artifact that version came from.
  baseline_dir = (custom(blessing, evaluator_executor.BASELINE_VERSION_DIR_KEY)
                  if blessing else None)
  baseline_uri = (custom(blessing, evaluator_executor.BASELINE_SOURCE_MODEL_KEY)
                  if blessing else None)
  tuned = tuning(record)
  trainer_config = config.trainer.with_hyperparameters(
      tuned["best_hyperparameters"] if tuned else None)

  summary: Dict[str, Any] = {
      "pipeline": config.pipeline_name,
      "run_id": record.run_id,
      "dataset": config.dataset,
      "class_names": list(datasets.get_dataset_info(config.dataset).class_names),
      "source": custom(examples, "source") if examples else None,
      # The official files of this dataset (False: unknown data, accepted).
      "source_verified": (bool(custom(examples, "source_verified"))
                          if examples else None),
      "model": dataclasses.asdict(trainer_config.resolved()),
      "split_counts": ({s: custom(examples, f"count_{s}")
                        for s in ("train", "eval", "test")}
                       if examples else None),
      "class_histograms": (json.loads(custom(examples, "class_histograms"))
                           if examples else None),
      "components": {node: {"state": record.state(node),
                            "seconds": component_seconds.get(node)}
                     for node in record.executions},
      "cached_components": [n for n in record.executions
                            if record.state(n) == "CACHED"],
      "recomputed_components": [n for n in record.executions
                                if record.state(n) == "COMPLETE"],
      "baseline_model": baseline_uri,
      "baseline_version": baseline_dir,
      "candidate_model": model.uri if model else None,
      "blessed": bool(custom(blessing, "blessed")) if blessing else False,
      "pushed": bool(custom(pushed, "pushed")) if pushed else False,
      "pushed_to": (custom(pushed, "pushed_destination")
                    if pushed and custom(pushed, "pushed") else None),
      "new_version": bool(pushed and custom(pushed, "new_version")),
      "serving_model_dir": config.serving_model_dir,
      "min_accuracy": config.accuracy_threshold,
      "max_accuracy_drop": config.max_accuracy_drop,
  }
  if tuned:
    summary["tuning"] = tuned
  if evaluation:
    summary["evaluation"] = evaluation_metrics(evaluation.uri)
    summary["validation"] = validation_result(evaluation.uri)
    from components.evaluator import blessing as blessing_lib  # pylint: disable=g-import-not-at-top
    from components.evaluator import verdict as verdict_lib  # pylint: disable=g-import-not-at-top
    best = (custom(blessing, blessing_lib.BEST_EVER_ACCURACY_KEY)
            if blessing else None)
    # The rules TFMA's validation result says failed, in one sentence.
    summary["refusal"] = verdict_lib.from_evaluation(
        evaluation.uri, best_ever_accuracy=best,
        class_names=(None if config.dataset == "mnist" else  # digits
                     summary["class_names"]))
    summary["best_ever"] = {
        "accuracy": best,
        "version": (custom(blessing, blessing_lib.BEST_EVER_VERSION_KEY)
                    if blessing else None)}
    summary["compared_with"] = (
        custom(blessing, blessing_lib.COMPARED_WITH_KEY) if blessing else None)
  test_predictions = None
  if model and examples:
    test_predictions = predict_split(path_utils.serving_model_path(model.uri),
                                     examples.uri, "test")
    summary["test_accuracy"] = {"candidate": accuracy(test_predictions)}
    if baseline_dir and tf.io.gfile.exists(baseline_dir):
      summary["test_accuracy"]["baseline"] = accuracy(predict_split(
          baseline_dir, examples.uri, "test"))
  summary["run_dir"] = _run_dir(record)
  summary["training_devices"] = _training_devices(summary["run_dir"])
  return summary, test_predictions


def _training_devices(run_dir: Optional[str]) -> Optional[Dict[str, Any]]:
  """What the Trainer trained on (its devices.json), if it ran."""
  from components.trainer import devices  # pylint: disable=g-import-not-at-top
  path = os.path.join(run_dir, devices.DEVICES_FILE) if run_dir else None
  if not path or not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def tuning(record: RunRecord) -> Optional[Dict[str, Any]]:
  """The Tuner's best hyperparameters and its trials (best first), if it ran.

  Each trial: `trial_id`, `score` (validation accuracy) and its values.
  """
  best = (record.artifacts("Tuner", "best_hyperparameters") or [None])[0]
  imported = (record.artifacts("TunedHyperparameters", "result") or
              [None])[0]  # TUNE_FROM: frozen, no search
  best = best or imported
  if best is None:
    return None
  results = (record.artifacts("Tuner", "tuner_results") or [None])[0]

  def read_json(uri: str, name: str):
    path = os.path.join(uri, name)
    if not tf.io.gfile.exists(path):
      return None
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  best_config = read_json(best.uri, "best_hyperparameters.txt") or {}
  trials = (read_json(results.uri, "tuner_results.json") or []) if results \
      else []
  return {
      "objective": "val_accuracy",
      "best_hyperparameters": best_config.get("values", best_config),
      "trials": sorted(trials, key=lambda t: -(t.get("score") or 0)),
      "frozen_from": imported.uri if imported else None,
  }


def _run_dir(record: RunRecord) -> Optional[str]:
  run = (record.artifacts("Trainer", "model_run") or [None])[0]
  return run.uri if run else None


def verdict(summary: Dict[str, Any]) -> str:
  """One sentence: where the model went, or why it was not pushed."""
  test = (summary.get("test_accuracy") or {}).get("candidate")
  test_text = f" (test accuracy {test:.4f})" if test is not None else ""
  if summary.get("pushed") and not summary.get("new_version"):
    return (f"blessed; already in service as {summary['pushed_to']}"
            f"{test_text}")
  if summary.get("pushed"):
    return f"pushed to {summary['pushed_to']}{test_text}"
  return f"not pushed: {rejection_reason(summary)}{test_text}"


def rejection_reason(summary: Dict[str, Any]) -> str:
  """Why the Evaluator did not bless the candidate, in one sentence."""
  if summary.get("refusal"):  # from TFMA's validation result
    return summary["refusal"].removeprefix("not pushed: ")
  metrics = summary.get("evaluation") or {}
  candidate = (metrics.get("candidate") or {}).get(ACCURACY)
  baseline = (metrics.get("baseline") or {}).get(ACCURACY)
  if candidate is None:
    return "the candidate was not evaluated"
  reasons = []
  if candidate < summary["min_accuracy"]:
    reasons.append(f"accuracy {candidate:.4f} < minimum "
                   f"{summary['min_accuracy']}")
  if baseline is not None and candidate < baseline - summary[
      "max_accuracy_drop"]:
    reasons.append(f"accuracy {candidate:.4f} < baseline {baseline:.4f} "
                   f"\u2212 {summary['max_accuracy_drop']}")
  return "; ".join(reasons) or "model not blessed"


def write_summary(summary: Dict[str, Any], path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(summary, f, indent=2, sort_keys=False, default=str)
  os.replace(tmp, path)
