"""`registry.json`: which run produced each pushed version, and its accuracy.

The Pusher appends an entry after every new version; the baseline component
(`components.baseline`) reads the serving directory and this file to find the
model in service. It lives in the serving directory itself (TF Serving only
loads integer-named subdirectories, so it ignores the file), which makes the
serving location the single source of truth on a laptop and on Kubeflow
alike: no ML Metadata query or TFX Resolver is needed. Each entry keeps the
version's accuracy on the eval split (TFMA's, from the blessing), so the
cumulative guard knows the best version ever pushed.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional

import tensorflow as tf

REGISTRY_FILE = "registry.json"
ACCURACY_KEY = "accuracy"


def registry_path(serving_model_dir: str) -> str:
  return os.path.join(serving_model_dir, REGISTRY_FILE)


def read_entries(serving_model_dir: str) -> List[Dict[str, Any]]:
  """Registry entries, oldest first; [] if there is no (readable) registry."""
  path = registry_path(serving_model_dir)
  if not tf.io.gfile.exists(path):
    return []
  try:
    with tf.io.gfile.GFile(path) as f:
      return list(json.load(f)["versions"])
  except (ValueError, KeyError, TypeError):
    return []  # provenance is lost, the models themselves are not


def record_push(serving_model_dir: str, version_dir: str,
                source_model: str,
                accuracy: Optional[float] = None) -> Dict[str, Any]:
  """Appends the entry of a newly pushed version; returns it.

  `accuracy`: the version's accuracy on the eval split (None: unknown).

  Written to a temporary file and renamed locally; object stores replace a
  single object atomically.
  """
  entry = {"version": int(os.path.basename(version_dir.rstrip("/"))),
           "path": version_dir, "source_model": source_model,
           "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
  if accuracy is not None:
    entry[ACCURACY_KEY] = float(accuracy)
  entries = [e for e in read_entries(serving_model_dir)
             if e.get("version") != entry["version"]] + [entry]
  path = registry_path(serving_model_dir)
  text = json.dumps({"versions": entries}, indent=2)
  if "://" in path:
    with tf.io.gfile.GFile(path, "w") as f:
      f.write(text)
  else:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  return entry


def entry_for(serving_model_dir: str, version: int) -> Optional[Dict[str, Any]]:
  for entry in reversed(read_entries(serving_model_dir)):
    if entry.get("version") == version:
      return entry
  return None


def best_entry(serving_model_dir: str) -> Optional[Dict[str, Any]]:
  """The entry with the highest recorded accuracy (the earliest of equals),
  or None when no entry records one."""
  scored = [e for e in read_entries(serving_model_dir)
            if isinstance(e.get(ACCURACY_KEY), (int, float))]
  if not scored:
    return None
  return max(scored, key=lambda e: e[ACCURACY_KEY])
