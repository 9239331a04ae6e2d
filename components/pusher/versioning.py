"""Atomic, never-overwriting pushes into `<serving_model_dir>/<version>/`.

On a local filesystem a version is copied into a hidden staging directory
first and renamed into place only when complete, so TF Serving (which only
loads integer-named directories) never sees a half-written model. On object
stores (gs://, s3://), which cannot rename directories, files are copied
with `saved_model.pb` last: servers treat a version as present only once
that file exists. Existing versions are never touched, and a model identical
to the version in service is not pushed again (a rerun whose Trainer was
cached re-blesses the same model).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from typing import List, Optional, Tuple

import tensorflow as tf

STAGING_PREFIX = ".staging-"
SAVED_MODEL_FILE = "saved_model.pb"


def is_local(path: str) -> bool:
  return "://" not in path


def existing_versions(serving_model_dir: str) -> List[int]:
  """Integer versions already in `serving_model_dir`, ascending."""
  if not tf.io.gfile.isdir(serving_model_dir):
    return []
  names = (n.rstrip("/") for n in tf.io.gfile.listdir(serving_model_dir))
  return sorted(int(n) for n in names if n.isdigit())


def latest_version_dir(serving_model_dir: str) -> Optional[str]:
  """The newest complete version (one with `saved_model.pb`), or None."""
  for version in reversed(existing_versions(serving_model_dir)):
    path = os.path.join(serving_model_dir, str(version))
    if tf.io.gfile.exists(os.path.join(path, SAVED_MODEL_FILE)):
      return path
  return None


def next_version(serving_model_dir: str, now: Optional[float] = None) -> int:
  """A Unix-time version, always above every existing one."""
  versions = existing_versions(serving_model_dir)
  candidate = int(now if now is not None else time.time())
  return max([candidate] + [v + 1 for v in versions])


def _files(directory: str) -> List[str]:
  """Paths of every file below `directory`, relative to it, sorted."""
  found = []
  for root, _, files in tf.io.gfile.walk(directory):
    for name in files:
      found.append(os.path.relpath(os.path.join(root, name), directory))
  return sorted(found)


def tree_digest(directory: str) -> str:
  """sha256 over the relative paths and bytes of every file in `directory`."""
  digest = hashlib.sha256()
  for relative in _files(directory):
    digest.update(relative.encode() + b"\0")
    with tf.io.gfile.GFile(os.path.join(directory, relative), "rb") as f:
      digest.update(hashlib.sha256(f.read()).digest())
  return digest.hexdigest()


def _copy_saved_model_last(model_dir: str, target: str) -> None:
  files = _files(model_dir)
  for relative in sorted(files, key=lambda p: p == SAVED_MODEL_FILE):
    destination = os.path.join(target, relative)
    tf.io.gfile.makedirs(os.path.dirname(destination))
    tf.io.gfile.copy(os.path.join(model_dir, relative), destination)


def push(model_dir: str, serving_model_dir: str,
         now: Optional[float] = None) -> Tuple[str, bool]:
  """Copies SavedModel `model_dir` to a new version.

  Returns (version path, True), or (path of the latest version, False) when
  that version already holds exactly this model.
  """
  if not tf.io.gfile.exists(os.path.join(model_dir, SAVED_MODEL_FILE)):
    raise FileNotFoundError(f"{model_dir}: no saved_model.pb, not a SavedModel")
  latest = latest_version_dir(serving_model_dir)
  if latest and tree_digest(latest) == tree_digest(model_dir):
    return latest, False
  tf.io.gfile.makedirs(serving_model_dir)
  version = next_version(serving_model_dir, now)
  final = os.path.join(serving_model_dir, str(version))
  if not is_local(serving_model_dir):
    _copy_saved_model_last(model_dir, final)
    return final, True
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
