"""Atomic, never-overwriting pushes into `<serving_model_dir>/<version>/`.

A version is copied into a hidden staging directory first and renamed into
place only when complete, so TF Serving (which only loads integer-named
directories) never sees a half-written model. Existing versions are never
touched, and a model identical to the version in service is not pushed
again (a rerun whose Trainer was cached re-blesses the same model).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from typing import List, Optional, Tuple

STAGING_PREFIX = ".staging-"


def existing_versions(serving_model_dir: str) -> List[int]:
  """Integer versions already in `serving_model_dir`, ascending."""
  if not os.path.isdir(serving_model_dir):
    return []
  return sorted(int(n) for n in os.listdir(serving_model_dir) if n.isdigit())


def latest_version_dir(serving_model_dir: str) -> Optional[str]:
  versions = existing_versions(serving_model_dir)
  return os.path.join(serving_model_dir, str(versions[-1])) if versions else None


def next_version(serving_model_dir: str, now: Optional[float] = None) -> int:
  """A Unix-time version, always above every existing one."""
  versions = existing_versions(serving_model_dir)
  candidate = int(now if now is not None else time.time())
  return max([candidate] + [v + 1 for v in versions])


def tree_digest(directory: str) -> str:
  """sha256 over the relative paths and bytes of every file in `directory`."""
  digest = hashlib.sha256()
  for root, dirs, files in os.walk(directory):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, directory).encode() + b"\0")
      with open(path, "rb") as f:
        digest.update(hashlib.sha256(f.read()).digest())
  return digest.hexdigest()


def push(model_dir: str, serving_model_dir: str,
         now: Optional[float] = None) -> Tuple[str, bool]:
  """Copies SavedModel `model_dir` to a new version.

  Returns (version path, True), or (path of the latest version, False) when
  that version already holds exactly this model.
  """
  if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
    raise FileNotFoundError(f"{model_dir}: no saved_model.pb, not a SavedModel")
  latest = latest_version_dir(serving_model_dir)
  if latest and tree_digest(latest) == tree_digest(model_dir):
    return latest, False
  os.makedirs(serving_model_dir, exist_ok=True)
  version = next_version(serving_model_dir, now)
  final = os.path.join(serving_model_dir, str(version))
  staging = os.path.join(serving_model_dir,
                         f"{STAGING_PREFIX}{version}-{os.getpid()}")
  shutil.rmtree(staging, ignore_errors=True)
  try:
    shutil.copytree(model_dir, staging)
    if os.path.exists(final):  # a concurrent push took this version
      raise FileExistsError(f"{final}: version already exists")
    os.rename(staging, final)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return final, True
