"""A run's settings and results in TensorBoard's HParams plugin.

One HParams session per trained model, written into the Trainer's
`model_run` directory, where Keras' TensorBoard callback wrote the training
curves (`train/`, `validation/`): TensorBoard shows settings, results and
curves as one run. The Report writes it, because the results (test
accuracy, pushed) are known only at the end of the DAG. A rerun whose
Trainer came from the cache has the same `model_run` directory, so it
rewrites that session instead of adding one: the directory holds one
session file at a time, and `hparams_session.json` beside it keeps what
earlier runs recorded (a model once pushed stays `pushed`).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

RECORD_FILE = "hparams_session.json"
# TensorBoard reads files whose name contains "tfevents", in name order.
EVENTS_PREFIX = "events.out.tfevents."
EVENTS_SUFFIX = ".hparams"
HPARAMS = ("model", "optimizer", "learning_rate", "epochs", "batch_size",
           "dataset", "lineage")
METRICS = ("eval_accuracy", "test_accuracy", "pushed")
ACCURACY = "sparse_categorical_accuracy"  # TFMA's name, in summary.json


def session_values(summary: Dict[str, Any]
                   ) -> Tuple[Dict[str, Any], Dict[str, float]]:
  """(hparams, metrics) of a run from its summary.json."""
  model = summary.get("model") or {}
  tuned = model.get("hyperparameters")
  hparams = {
      "model": (f"tuned {tuned.get('family', 'dense')}" if tuned
                else str(model.get("model"))),
      "optimizer": str(model.get("optimizer")),
      "learning_rate": float(model.get("learning_rate") or 0.0),
      "epochs": int(model.get("epochs") or 0),
      "batch_size": int(model.get("batch_size") or 0),
      "dataset": str(summary.get("dataset")),
      "lineage": str(summary.get("pipeline")),
  }
  candidate = (summary.get("evaluation") or {}).get("candidate") or {}
  metrics = {
      "eval_accuracy": candidate.get(ACCURACY),
      "test_accuracy": (summary.get("test_accuracy") or {}).get("candidate"),
      "pushed": 1.0 if summary.get("pushed") else 0.0,
  }
  return hparams, {k: float(v) for k, v in metrics.items() if v is not None}


def trial_id(hparams: Dict[str, Any], run_dir: str) -> str:
  """The session's name in TensorBoard: unique per trained model (by
  default TensorBoard names a session by its values, merging retrainings
  of the same settings)."""
  tail = os.path.basename(run_dir.rstrip("/"))
  if not tail.isdigit():  # Kubeflow: not the Trainer execution's id
    tail = hashlib.sha1(run_dir.encode()).hexdigest()[:8]
  return f"{hparams['lineage']} {hparams['model']} #{tail}"


def write_session(run_dir: str, hparams: Dict[str, Any],
                  metrics: Dict[str, float], now: Optional[float] = None
                  ) -> str:
  """Writes (or rewrites) the HParams session of `run_dir` (any
  filesystem); returns the event file's path."""
  now = time.time() if now is None else now
  record_path = os.path.join(run_dir, RECORD_FILE)
  previous = {}
  if tf.io.gfile.exists(record_path):
    with tf.io.gfile.GFile(record_path) as f:
      previous = json.load(f)
  metrics = dict(metrics)
  if "pushed" in metrics:
    metrics["pushed"] = max(metrics["pushed"],
                            (previous.get("metrics") or {}).get("pushed", 0.0))
  start = previous.get("start_time_secs", now)
  old_files = session_files(run_dir)
  target = os.path.join(run_dir, f"{EVENTS_PREFIX}{int(now * 1e6):017d}"
                        f"{EVENTS_SUFFIX}")
  with tempfile.TemporaryDirectory() as local:
    writer = tf.summary.create_file_writer(local)
    with writer.as_default():
      hp.hparams(hparams, trial_id=trial_id(hparams, run_dir),
                 start_time_secs=start)
      for name, value in sorted(metrics.items()):
        tf.summary.scalar(name, value, step=0)
    writer.close()
    [written] = [n for n in os.listdir(local) if "tfevents" in n]
    tf.io.gfile.makedirs(run_dir)
    tf.io.gfile.copy(os.path.join(local, written), target, overwrite=True)
  with tf.io.gfile.GFile(record_path, "w") as f:
    json.dump({"hparams": hparams, "metrics": metrics,
               "start_time_secs": start}, f, indent=2, sort_keys=True)
  for old in old_files:
    if old != target:
      tf.io.gfile.remove(old)
  return target


def session_files(run_dir: str):
  """The session event files in `run_dir` (one, unless a write was cut)."""
  if not tf.io.gfile.isdir(run_dir):
    return []
  return sorted(os.path.join(run_dir, n) for n in tf.io.gfile.listdir(run_dir)
                if n.startswith(EVENTS_PREFIX) and n.endswith(EVENTS_SUFFIX))


def write_for_summary(summary: Dict[str, Any], run_dir: str) -> str:
  """The session of the model a run's `summary` describes."""
  hparams, metrics = session_values(summary)
  return write_session(run_dir, hparams, metrics)
