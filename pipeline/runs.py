"""`mnist-tfx runs`: the runs of an OUTPUT_DIR, one row each, read from ML
Metadata (`OUTPUT_DIR/metadata/*.sqlite`) and each run's summary.json (the
Report's `report` artifact).

A row is a pipeline run that did something new: it trained a model, or it
compared a model from the cache with a model in service (or under gate
settings) it had not been compared with before, e.g. after another run's
push. A run that only repeats an earlier one adds no row but counts in that
row's `reruns`: every component from the cache but the Report (the same
Evaluator output), or its own model compared with itself once it is in
service. An unchanged rerun does not start TFX at all, so records nothing.
Runs that ended before their Report are not listed.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import time
from typing import Any, Dict, List, Optional

from components.report import run_record

REPORT_NODE = "Report"  # pipeline.pipeline.REPORT_NODE_ID, without TFX
TRAINER_NODE = "Trainer"
SORTS = ("date", "accuracy")
COLUMNS = ("run", "date", "dataset", "lineage", "model", "settings",
           "trained", "eval acc", "test acc", "time", "verdict")


@dataclasses.dataclass
class Run:
  """One pipeline run that reached its Report."""
  pipeline: str
  run_id: str
  started: float  # seconds since the epoch: its first execution
  seconds: float  # to the last update of its last execution
  trained: bool  # its Trainer ran (not from the cache)
  model_id: Optional[int]  # ML Metadata ids of the Report's inputs
  evaluation_id: Optional[int]
  summary: Dict[str, Any]


def read_runs(output_dir: str) -> List[Run]:
  """Every run in `output_dir` that wrote a report, oldest first."""
  if not os.path.isdir(output_dir):
    raise FileNotFoundError(f"OUTPUT_DIR={output_dir} is not a directory")
  runs: List[Run] = []
  for path in sorted(glob.glob(os.path.join(output_dir, "metadata",
                                            "*.sqlite"))):
    try:
      runs += _read_store(run_record.sqlite_store(path))
    except Exception as e:  # pylint: disable=broad-except
      line = (str(e).strip().splitlines() or [type(e).__name__])[0]
      raise ValueError(f"{path}: not a readable ML Metadata file ({line})"
                       ) from None
  return sorted(runs, key=lambda r: r.started)


def _read_store(store) -> List[Run]:
  from ml_metadata import errors  # pylint: disable=g-import-not-at-top
  try:
    run_type = store.get_context_type("pipeline_run").id
  except errors.NotFoundError:  # no run started yet
    return []
  runs = []
  for pipeline in store.get_contexts_by_type("pipeline"):
    name = pipeline.name
    reports = _node_executions(store, name, REPORT_NODE)
    trainers = {_run_of(store, e.id, run_type).name: e
                for e in _node_executions(store, name, TRAINER_NODE)}
    for report in reports:
      if run_record.STATES.get(report.last_known_state) != "COMPLETE":
        continue
      run_ctx = _run_of(store, report.id, run_type)
      inputs, outputs = _artifact_ids(store, report.id)
      [report_artifact] = store.get_artifacts_by_id(outputs["report"])
      summary_path = os.path.join(report_artifact.uri, "summary.json")
      if not os.path.exists(summary_path):  # deleted since
        continue
      with open(summary_path) as f:
        summary = json.load(f)
      executions = store.get_executions_by_context(run_ctx.id)
      started = min(e.create_time_since_epoch for e in executions) / 1000
      ended = max(e.last_update_time_since_epoch for e in executions) / 1000
      trainer = trainers.get(run_ctx.name)
      runs.append(Run(
          pipeline=name, run_id=run_ctx.name, started=started,
          seconds=round(ended - started, 1),
          trained=bool(trainer and run_record.STATES.get(
              trainer.last_known_state) == "COMPLETE"),
          model_id=(inputs.get("model") or [None])[0],
          evaluation_id=(inputs.get("evaluation") or [None])[0],
          summary=summary))
  return runs


def _node_executions(store, pipeline: str, node: str):
  context = store.get_context_by_type_and_name("node", f"{pipeline}.{node}")
  return store.get_executions_by_context(context.id) if context else []


def _run_of(store, execution_id: int, run_type: int):
  return next(c for c in store.get_contexts_by_execution(execution_id)
              if c.type_id == run_type)


def _artifact_ids(store, execution_id: int):
  """({input key: [artifact ids]}, {output key: [...]}) of an execution."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  event = metadata_store_pb2.Event
  inputs: Dict[str, List[int]] = {}
  outputs: Dict[str, List[int]] = {}
  for e in store.get_events_by_execution_ids([execution_id]):
    if not e.path.steps:
      continue
    side = inputs if e.type == event.INPUT else outputs if e.type in (
        event.OUTPUT, event.DECLARED_OUTPUT) else None
    if side is not None:
      side.setdefault(e.path.steps[0].key, []).append(e.artifact_id)
  return inputs, outputs


def rows(runs: List[Run]) -> List[Dict[str, Any]]:
  """One row per run that did something new (see the module's doc), oldest
  first; the runs that repeat one are counted in its `reruns`."""
  table: List[Dict[str, Any]] = []
  by_evaluation: Dict[Any, Dict[str, Any]] = {}
  by_model: Dict[Any, Dict[str, Any]] = {}
  for run in sorted(runs, key=lambda r: r.started):
    summary = run.summary
    model_key = (run.pipeline, run.model_id or summary.get("candidate_model"))
    evaluation_key = model_key + (run.evaluation_id,)
    self_comparison = bool(summary.get("baseline_model")) and (
        summary.get("baseline_model") == summary.get("candidate_model"))
    repeated = by_evaluation.get(evaluation_key) if run.evaluation_id else None
    if repeated is None and self_comparison and not run.trained:
      repeated = by_model.get(model_key)
    if repeated is not None:
      repeated["reruns"].append(run.run_id)
      continue
    row = _row(run)
    table.append(row)
    by_evaluation[evaluation_key] = by_model[model_key] = row
  return table


def _row(run: Run) -> Dict[str, Any]:
  summary = run.summary
  model = summary.get("model") or {}
  tuned = model.get("hyperparameters")
  candidate = (summary.get("evaluation") or {}).get("candidate") or {}
  pushed_to = summary.get("pushed_to")
  version = os.path.basename(pushed_to.rstrip("/")) if pushed_to else None
  return {
      "run_id": run.run_id,
      "date": time.strftime("%Y-%m-%d %H:%M:%S",
                            time.localtime(run.started)),
      "dataset": summary.get("dataset"),
      "lineage": run.pipeline,
      "model": (f"tuned {tuned.get('family', 'dense')}" if tuned
                else model.get("model")),
      "optimizer": model.get("optimizer"),
      "learning_rate": model.get("learning_rate"),
      "epochs": model.get("epochs"),
      "batch_size": model.get("batch_size"),
      "trained": run.trained,
      "eval_accuracy": candidate.get("sparse_categorical_accuracy"),
      "test_accuracy": (summary.get("test_accuracy") or {}).get("candidate"),
      "pushed_version": version if summary.get("pushed") else None,
      "verdict": verdict(summary),
      "seconds": run.seconds,
      "reruns": [],
      "candidate_model": summary.get("candidate_model"),
  }


def verdict(summary: Dict[str, Any]) -> str:
  """'pushed <version>', 'already in service (<version>)', or the
  refusal sentence ('not pushed: <rule>')."""
  pushed_to = summary.get("pushed_to")
  version = os.path.basename(pushed_to.rstrip("/")) if pushed_to else None
  if summary.get("pushed") and summary.get("new_version"):
    return f"pushed {version}"
  if summary.get("pushed"):
    return f"already in service ({version})"
  # As components.report.summary.outcome, which would import TFMA (5 s).
  reason = (summary.get("refusal") or "").removeprefix("not pushed: ")
  return f"not pushed: {reason or 'the model was not blessed'}"


def default_output_dir() -> str:
  """$OUTPUT_DIR, else outputs/ in the checkout (config.PipelineConfig's
  default, without importing TensorFlow)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  value = os.environ.get("OUTPUT_DIR", "").strip()
  return os.path.abspath(value) if value else os.path.join(root, "outputs")


def sort_rows(table: List[Dict[str, Any]], by: str) -> List[Dict[str, Any]]:
  """`date`: oldest first; `accuracy`: best test accuracy first (then eval
  accuracy; rows without one last)."""
  if by not in SORTS:
    raise ValueError(f"--sort {by!r}: choose one of {list(SORTS)}")
  if by == "date":
    return sorted(table, key=lambda r: r["date"])
  return sorted(table, key=lambda r: (
      r["test_accuracy"] is None, -(r["test_accuracy"] or 0),
      -(r["eval_accuracy"] or 0)))


def format_table(table: List[Dict[str, Any]]) -> str:
  """The rows as aligned text columns."""
  def accuracy(value):
    return "-" if value is None else f"{value:.4f}"
  lines = []
  for r in table:
    settings = (f"{r['optimizer']} {r['learning_rate']:g}, "
                f"{r['epochs']} ep, batch {r['batch_size']}"
                if r["learning_rate"] is not None else "-")
    trained = "yes" if r["trained"] else "cached"
    if r["reruns"]:
      trained += f" +{len(r['reruns'])} rerun{'s' * (len(r['reruns']) > 1)}"
    lines.append((r["run_id"], r["date"], r["dataset"], r["lineage"],
                  str(r["model"]), settings, trained,
                  accuracy(r["eval_accuracy"]), accuracy(r["test_accuracy"]),
                  f"{r['seconds']:.0f} s", r["verdict"]))
  widths = [max(len(str(row[i])) for row in lines + [COLUMNS])
            for i in range(len(COLUMNS))]
  return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths))
                   .rstrip() for row in [COLUMNS] + lines)


def main(output_dir: str, sort: str = "date", as_json: bool = False) -> str:
  """The text `mnist-tfx runs` prints."""
  table = sort_rows(rows(read_runs(output_dir)), sort)
  if as_json:
    return json.dumps(table, indent=2)
  if not table:
    return f"no runs in {output_dir}"
  return format_table(table)
