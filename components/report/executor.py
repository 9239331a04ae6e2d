"""Executor of `Report`: summary.json, report.md, report.html and pictures."""
from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Dict, List, Optional

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor

from components.artifact_types import ClassificationMetrics
from components.evaluator import blessing as blessing_lib
from components.evaluator import verdict as verdict_lib
from components.ingestion import datasets
from components.report import hparams_session
from components.report import render
from components.report import run_record
from components.report import summary as summary_lib
from components.scoring import executor as scoring_executor
from components.scoring import scores as scores_lib

SUMMARY_FILE = "summary.json"
TRAINING_CURVES = "training_curves.png"  # in the Trainer's model_run
MODEL_SUMMARY = "model_summary.txt"
DEVICES = "devices.json"


def prop(artifact: Optional[types.Artifact], key: str) -> Any:
  """A custom property of `artifact` (None if absent), whatever its kind:
  local runs store ints and floats, Kubeflow hands them over as JSON."""
  if artifact is None or not artifact.has_custom_property(key):
    return None
  return artifact.get_custom_property(key)


def _one(input_dict: Dict[str, List[types.Artifact]], key: str
         ) -> Optional[types.Artifact]:
  artifacts = input_dict.get(key) or []
  return artifacts[0] if artifacts else None


def build_summary(input_dict: Dict[str, List[types.Artifact]],
                  settings: Dict[str, Any]) -> Dict[str, Any]:
  """The run's summary from the Report's input artifacts and `settings`
  (the `run_settings` execution property)."""
  examples = _one(input_dict, "examples")
  model = _one(input_dict, "model")
  model_run = _one(input_dict, "model_run")
  evaluation = _one(input_dict, "evaluation")
  blessing = _one(input_dict, "blessing")
  pushed = _one(input_dict, "pushed_model")
  metrics = _one(input_dict, "test_metrics")
  hyperparameters = _one(input_dict, "hyperparameters")
  tuner_results = _one(input_dict, "tuner_results")
  dataset = settings["dataset"]
  class_names = list(datasets.get_dataset_info(dataset).class_names)
  tuned = summary_lib.tuning(
      hyperparameters.uri if hyperparameters else None,
      tuner_results.uri if tuner_results else None,
      frozen=bool(settings.get("hyperparameters_frozen")))
  best_ever = prop(blessing, blessing_lib.BEST_EVER_ACCURACY_KEY)
  is_pushed = bool(prop(pushed, "pushed"))
  histograms = prop(examples, "class_histograms")
  summary: Dict[str, Any] = {
      "pipeline": settings["pipeline_name"],
      "run_id": settings.get("run_id"),
      "dataset": dataset,
      "class_names": class_names,
      "source": prop(examples, "source"),
      # The official files of this dataset (False: unknown data, accepted).
      "source_verified": bool(prop(examples, "source_verified")),
      # sources.data_digest of what was ingested (the cache key's).
      "data_digest": prop(examples, "data_digest"),
      "model": summary_lib.trained_model(settings["trainer"], tuned),
      "split_counts": {s: _int(prop(examples, f"count_{s}"))
                       for s in ("train", "eval", "test")},
      "class_histograms": (json.loads(histograms)
                           if isinstance(histograms, str) else histograms),
      "baseline_model": prop(blessing,
                             blessing_lib.BASELINE_SOURCE_MODEL_KEY),
      "baseline_version": prop(blessing, blessing_lib.BASELINE_VERSION_DIR_KEY),
      "candidate_model": model.uri if model else None,
      "blessed": bool(prop(blessing, "blessed")),
      "pushed": is_pushed,
      "pushed_to": prop(pushed, "pushed_destination") if is_pushed else None,
      "new_version": bool(is_pushed and prop(pushed, "new_version")),
      # A retried push found its version since succeeded by another run's.
      "succeeded_by": prop(pushed, "succeeded_by") if is_pushed else None,
      "serving_model_dir": settings["serving_model_dir"],
      "min_accuracy": settings["min_accuracy"],
      "max_accuracy_drop": settings["max_accuracy_drop"],
  }
  if tuned:
    summary["tuning"] = tuned
  if evaluation:
    summary["evaluation"] = summary_lib.evaluation_metrics(evaluation.uri)
    summary["validation"] = summary_lib.validation_result(evaluation.uri)
    # The rules TFMA's validation result says failed, in one sentence.
    summary["refusal"] = verdict_lib.from_evaluation(
        evaluation.uri, best_ever_accuracy=best_ever,
        class_names=(None if datasets.get_dataset_info(dataset).digit_classes
                     else class_names))
    summary["best_ever"] = {
        "accuracy": best_ever,
        "version": prop(blessing, blessing_lib.BEST_EVER_VERSION_KEY)}
    summary["compared_with"] = prop(blessing, blessing_lib.COMPARED_WITH_KEY)
  if metrics:
    summary["test_accuracy"] = {
        "candidate": prop(metrics, scoring_executor.ACCURACY_KEY),
        "baseline": prop(metrics, scoring_executor.BASELINE_ACCURACY_KEY)}
    summary["test_examples"] = _int(prop(metrics,
                                         scoring_executor.EXAMPLES_KEY))
  summary["run_dir"] = model_run.uri if model_run else None
  summary["training_devices"] = (summary_lib.read_json(os.path.join(
      model_run.uri, DEVICES)) if model_run else None)
  summary["settings"] = settings.get("settings")
  return summary


def _int(value: Any) -> Optional[int]:
  return None if value is None else int(value)


def _copy_to_local(uri: str, directory: str) -> Optional[str]:
  if not tf.io.gfile.exists(uri):
    return None
  path = os.path.join(directory, os.path.basename(uri))
  tf.io.gfile.copy(uri, path, overwrite=True)
  return path


def _upload(local_dir: str, uri: str) -> None:
  """Copies the local directory tree `local_dir` to `uri` (any filesystem)."""
  for root, _, files in os.walk(local_dir):
    relative = os.path.relpath(root, local_dir)
    target_dir = uri if relative == "." else os.path.join(uri, relative)
    tf.io.gfile.makedirs(target_dir)
    for name in files:
      tf.io.gfile.copy(os.path.join(root, name), os.path.join(target_dir, name),
                       overwrite=True)


def _write_text(uri: str, text: str) -> None:
  with tf.io.gfile.GFile(uri, "w") as f:
    f.write(text)


class Executor(base_executor.BaseExecutor):
  """Writes the run report."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    settings = json.loads(exec_properties["run_settings"])
    context = self._context
    if context is not None and context.pipeline_run_id:
      settings["run_id"] = context.pipeline_run_id
    summary = build_summary(input_dict, settings)
    metadata_path = exec_properties.get("metadata_path")
    if metadata_path and settings.get("run_id"):
      record = _read_run(metadata_path, settings["pipeline_name"],
                         settings["run_id"])
      summary["components"] = {node: info for node, info in
                               record.components().items()
                               if node != self_node_id(context)}
      summary["cached_components"] = [
          n for n, i in summary["components"].items() if i["state"] == "CACHED"]
      summary["recomputed_components"] = [
          n for n, i in summary["components"].items()
          if i["state"] == "COMPLETE"]
    summary["verdict"] = summary_lib.verdict(summary)
    model_run = _one(input_dict, "model_run")
    if model_run is not None:  # beside the training curves, for TensorBoard
      hparams_session.write_for_summary(summary, model_run.uri)

    confusion = _one(input_dict, "confusion_matrix")
    matrix = samples = None
    if confusion is not None:
      matrix, _ = scores_lib.from_kfp(prop(
          confusion, ClassificationMetrics.CONFUSION_MATRIX_KEY))
      samples = scoring_executor.read_samples(confusion.uri)
    report = output_dict["report"][0]
    with tempfile.TemporaryDirectory() as local:
      curves = model_summary = None
      if model_run is not None:
        curves = _copy_to_local(os.path.join(model_run.uri, TRAINING_CURVES),
                                local)
        text_path = _copy_to_local(os.path.join(model_run.uri, MODEL_SUMMARY),
                                   local)
        if text_path:
          with open(text_path) as f:
            model_summary = f.read()
      out = os.path.join(local, "report")
      pictures = render.draw_pictures(
          summary, os.path.join(out, render.PICTURES_DIR), curves, matrix,
          samples)
      texts = render.write_report(summary, out, model_summary, pictures)
      summary_lib.write_json(summary, os.path.join(out, SUMMARY_FILE))
      _upload(out, report.uri)
    _write_text(output_dict["report_markdown"][0].uri, texts["markdown"])
    _write_text(output_dict["report_html"][0].uri, texts["html"])
    logging.info("report: %s", report.uri)


def _read_run(metadata_path: str, pipeline_name: str, run_id: str,
              attempts: int = 5) -> run_record.RunRecord:
  """This run's record, read while the runner may be writing to the same
  SQLite file (a locked database is retried)."""
  for attempt in range(attempts):
    try:
      return run_record.RunRecord(run_record.sqlite_store(metadata_path),
                                  pipeline_name, run_id)
    except Exception as e:  # pylint: disable=broad-except
      if attempt == attempts - 1 or "locked" not in str(e).lower():
        raise
      time.sleep(0.2 * (attempt + 1))
  raise AssertionError("unreachable")


def self_node_id(context) -> Optional[str]:
  node = getattr(context, "pipeline_node", None)
  return node.node_info.id if node is not None else None
