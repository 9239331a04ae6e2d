"""`make compare MODELS="a b ..."`: trains each named preset in turn with the
normal pipeline and writes one comparison page.

Every run has the same settings but `MODEL`, so the same lineage and split
(the ingestion comes from the cache after the first run); the gate decides
each push as on any run, against the model in service then. The page,
`OUTPUT_DIR/compare/compare.{html,md,json}`, has accuracy per model on eval
and the official test split, the validation curves overlaid, and each
model's training and run time.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from pipeline import compare_page
from pipeline import config as config_lib

COMPARE_DIR = "compare"  # in OUTPUT_DIR
HISTORY_FILE = "history.json"  # components.trainer.task.HISTORY_FILE


def check_models(names: Sequence[str]) -> List[str]:
  """The preset names, each once, in order; a one-line error naming
  `MODELS` for an empty list or an unknown name (before any training)."""
  from components.trainer import models  # pylint: disable=g-import-not-at-top
  if not names:
    raise ValueError('MODELS is empty: name the presets to compare, e.g. '
                     'MODELS="dense_100_relu dense_100_relu_adam" (make '
                     'models lists them)')
  for name in names:
    try:
      models.get_preset(name)
    except ValueError as e:
      raise ValueError(f"MODELS: {e}") from None
  return list(dict.fromkeys(names))


def compare(base: config_lib.PipelineConfig, names: Sequence[str],
            run: Optional[Callable[[config_lib.PipelineConfig],
                                   Dict[str, Any]]] = None,
            log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Runs the pipeline once per model of `names` with `base`'s other
  settings; writes the page and returns its data (compare.json)."""
  if run is None:
    from pipeline import local_runner  # pylint: disable=g-import-not-at-top
    run = local_runner.run
  names = check_models(names)
  entries = []
  summaries = []
  for n, name in enumerate(names, 1):
    config = dataclasses.replace(
        base, trainer=dataclasses.replace(base.trainer, model=name))
    log(f"=== compare {n}/{len(names)}: MODEL={name}")
    start = time.time()
    summary = run(config)
    entries.append(entry(name, summary, round(time.time() - start, 1)))
    summaries.append(summary)
  last = summaries[-1]
  result = {
      "dataset": base.dataset,
      "pipeline": base.pipeline_name,
      "split_counts": last.get("split_counts"),
      "source": last.get("source"),
      "models": entries,
  }
  paths = compare_page.write_page(result, os.path.join(base.output_dir,
                                                       COMPARE_DIR))
  result["page"] = paths
  return result


def entry(name: str, summary: Dict[str, Any], run_seconds: float
          ) -> Dict[str, Any]:
  """One model's line of the comparison, from its run's summary and the
  Trainer's history.json."""
  from pipeline import runs  # pylint: disable=g-import-not-at-top
  model = summary.get("model") or {}
  history = _history(summary.get("run_dir"))
  trainer = (summary.get("components") or {}).get("Trainer") or {}
  candidate = (summary.get("evaluation") or {}).get("candidate") or {}
  return {
      "model": name,
      "optimizer": model.get("optimizer"),
      "learning_rate": model.get("learning_rate"),
      "epochs": model.get("epochs"),
      "batch_size": model.get("batch_size"),
      "epochs_run": len(history.get("epoch") or []) or None,
      "best_epoch": history.get("best_epoch"),
      "eval_accuracy": candidate.get("sparse_categorical_accuracy"),
      "test_accuracy": (summary.get("test_accuracy") or {}).get("candidate"),
      "pushed": bool(summary.get("pushed")),
      "verdict": runs.verdict(summary),
      "training_seconds": round(sum(history.get("epoch_seconds") or []), 1),
      # False: this run reused a model trained before (the cache, or an
      # unchanged rerun).
      "trained_now": (trainer.get("state") == "COMPLETE" and
                      not summary.get("unchanged")),
      "run_seconds": run_seconds,
      "run_id": summary.get("run_id"),
      "run_dir": summary.get("run_dir"),
      "history": {k: history.get(k) for k in
                  ("epoch", "val_accuracy", "val_loss", "best_epoch")
                  if k in history},
  }


def _history(run_dir: Optional[str]) -> Dict[str, Any]:
  if not run_dir:
    return {}
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(run_dir, HISTORY_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
