"""What each pushed version is: its record, and `registry.json`, the index.

Every version carries its own record, `<version>/push_record.json`, written
inside the version before its `saved_model.pb` (`serving.versions.push`):
the run and Trainer artifact it came from, its accuracy on the eval split
(TFMA's, from the blessing), the version it was compared with and when it
was pushed. A version and its record appear together, so a push killed at
any moment leaves either no version or a recorded one, and the best-ever
guard (`best_record`) always sees every version in service.

`registry.json` beside the versions is an index of those records for people
and tools, rebuilt from them after every push (`rebuild_index`); nothing
decides from it. A damaged or missing index is rebuilt; versions pushed
before records existed keep the entry the index had for them
(`records`).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional

import tensorflow as tf

from components import storage
from serving import versions

REGISTRY_FILE = "registry.json"
ACCURACY_KEY = "accuracy"


def note(message: str) -> None:
  """A one-line note on stderr (local console and pod logs alike)."""
  print(f"note: {message}", file=sys.stderr, flush=True)


def registry_path(serving_model_dir: str) -> str:
  return storage.join(serving_model_dir, REGISTRY_FILE)


def _read_json(path: str) -> Any:
  """The JSON at `path`; None (with a note) if it is missing or unreadable."""
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  except tf.errors.NotFoundError:
    return None
  except (ValueError, tf.errors.OpError) as e:
    note(f"{path} is unreadable ({str(e).splitlines()[0][:80]}); ignored "
         "(the records inside the versions are what counts)")
    return None


def _index_entries(serving_model_dir: str) -> Dict[int, Dict[str, Any]]:
  """Entries of `registry.json` by version ({} if missing or damaged)."""
  data = _read_json(registry_path(serving_model_dir))
  entries = data.get("versions") if isinstance(data, dict) else None
  if data is not None and not isinstance(entries, list):
    note(f"{registry_path(serving_model_dir)} has no list of versions; "
         "ignored")
    return {}
  return {e["version"]: e for e in entries or []
          if isinstance(e, dict) and isinstance(e.get("version"), int)}


def read_record(version_dir: str) -> Optional[Dict[str, Any]]:
  """The record inside `version_dir`; None if it has none or it is
  unreadable (with a note)."""
  record = _read_json(storage.join(version_dir, versions.RECORD_FILE))
  if record is not None and not isinstance(record, dict):
    note(f"{storage.join(version_dir, versions.RECORD_FILE)} is not a "
         "record; ignored")
    return None
  return record


def records(serving_model_dir: str) -> List[Dict[str, Any]]:
  """The record of every complete version, oldest first. A version without
  a record of its own (pushed before records existed) gets its index entry;
  a version with neither has only `version` and `path`."""
  index = None
  found = []
  for version in versions.complete_versions(serving_model_dir):
    path = versions.version_dir(serving_model_dir, version)
    record = read_record(path)
    if record is None:
      if index is None:
        index = _index_entries(serving_model_dir)
      record = dict(index.get(version, {}))
    found.append(dict(record, version=version, path=path))
  return found


def record_of(serving_model_dir: str, version: int
              ) -> Optional[Dict[str, Any]]:
  for record in records(serving_model_dir):
    if record["version"] == version:
      return record
  return None


def best_record(all_records: List[Dict[str, Any]]
                ) -> Optional[Dict[str, Any]]:
  """The record with the highest accuracy (the earliest of equals), or None
  when none records one."""
  scored = [r for r in all_records
            if isinstance(r.get(ACCURACY_KEY), (int, float))]
  if not scored:
    return None
  return max(scored, key=lambda r: r[ACCURACY_KEY])


def rebuild_index(serving_model_dir: str) -> List[Dict[str, Any]]:
  """Writes `registry.json` from the versions' records (atomically on a
  local disk; object stores replace an object whole); returns them. The
  index is for people: failing to write it is a note, never an error (the
  records it repeats are in place)."""
  entries = records(serving_model_dir)
  text = json.dumps({"versions": entries}, indent=2, sort_keys=True)
  path = registry_path(serving_model_dir)
  _index_entries(serving_model_dir)  # a note if the old one was damaged
  try:
    if storage.is_remote(path):
      with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)
    else:
      storage.write_atomically(storage.local_path(path), text)
  except (OSError, tf.errors.OpError) as e:
    note(f"{path} not rewritten ({getattr(e, 'strerror', None) or e}); the "
         "versions' records are in place")
  return entries
