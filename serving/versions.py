"""Atomic, never-overwriting pushes into `<serving_model_dir>/<version>/`.

On a local filesystem a version is copied into a hidden staging directory
first and renamed into place only when complete, so TF Serving (which only
loads integer-named directories) never sees a half-written model. On object
stores (gs://, s3://), which cannot rename directories, files are copied
with `saved_model.pb` last: servers treat a version as present only once
that file exists. Existing versions are never touched, and a model identical
to the version in service is not pushed again (a rerun whose Trainer was
cached re-blesses the same model).

Compare-and-swap: given `expected` (the version the Evaluator compared with,
"none" for nothing), `push` refuses with `ServingChangedError` unless that is
still the version in service. Locally `serving_lock` makes check and rename
one step. Object stores have no lock and no rename, so a push first writes a
claim object `.push-claims/<version>-<token>`, then lists the claims: any
other live claim (another push under way) or a changed version in service
refuses the push, and removes the claim. Of two concurrent pushes at least
one sees the other's claim (GCS and S3 list strongly consistently), so two
runs never write the same version, nor both swap the same baseline. A claim
is removed once its version's saved_model.pb is written; one older than
`STALE_CLAIM_SECONDS` (a killed push) is ignored and removed.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from typing import Iterator, List, Optional, Tuple

import tensorflow as tf

STAGING_PREFIX = ".staging-"
SAVED_MODEL_FILE = "saved_model.pb"
LOCK_FILE = ".push.lock"
CLAIMS_DIR = ".push-claims"
STALE_CLAIM_SECONDS = 3600
NO_VERSION = "none"  # `serving_state` of an empty serving directory


class PushError(OSError):
  """A push failed; the versions already in service are untouched."""


class ServingChangedError(PushError):
  """The version in service is not the one the candidate was compared with."""


def _describe(state: str) -> str:
  return "nothing in service" if state == NO_VERSION else f"version {state}"


def check_in_service(serving_model_dir: str, expected: str) -> None:
  """Raises ServingChangedError unless `expected` is still in service."""
  state = serving_state(serving_model_dir)
  if state != expected:
    raise ServingChangedError(
        f"{serving_model_dir}: the model in service changed since the "
        f"Evaluator compared with it ({_describe(expected)} then, "
        f"{_describe(state)} now); not pushed, rerun to compare with "
        f"{_describe(state)}")


@contextlib.contextmanager
def serving_lock(serving_model_dir: str) -> Iterator[None]:
  """Serializes pushes into one local serving directory (a no-op on object
  stores, where `push` never overwrites and copies saved_model.pb last)."""
  if not is_local(serving_model_dir):
    yield
    return
  try:
    os.makedirs(serving_model_dir, exist_ok=True)
    handle = open(os.path.join(serving_model_dir, LOCK_FILE), "a")  # pylint: disable=consider-using-with
  except OSError as e:
    raise PushError(f"{serving_model_dir}: cannot write the serving directory "
                    f"({e.strerror or e}); the versions in service are "
                    "untouched") from e
  with handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


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


def serving_state(serving_model_dir: str) -> str:
  """The version in service ("none" if none): a cache key of the baseline."""
  latest = latest_version_dir(serving_model_dir)
  return os.path.basename(latest) if latest else NO_VERSION


def next_version(serving_model_dir: str, now: Optional[float] = None) -> int:
  """A Unix-time version, always above every existing (or claimed) one."""
  versions = existing_versions(serving_model_dir) + [
      version for _, version in _claims(serving_model_dir)]
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


def _claims(serving_model_dir: str) -> List[Tuple[str, int]]:
  """(path, version) of every claim object on an object store."""
  if is_local(serving_model_dir):
    return []
  directory = os.path.join(serving_model_dir, CLAIMS_DIR)
  if not tf.io.gfile.isdir(directory):
    return []
  found = []
  for name in tf.io.gfile.listdir(directory):
    version = name.rstrip("/").split("-", 1)[0]
    if version.isdigit():
      found.append((os.path.join(directory, name.rstrip("/")), int(version)))
  return found


def _live(serving_model_dir: str, claim: str, version: int,
          now: float) -> bool:
  """Whether a claim belongs to a push still under way."""
  if tf.io.gfile.exists(os.path.join(serving_model_dir, str(version),
                                     SAVED_MODEL_FILE)):
    return False  # done; its removal failed or is racing
  try:
    with tf.io.gfile.GFile(claim) as f:
      claimed_at = float(json.load(f)["claimed_at"])
  except (ValueError, KeyError, TypeError, tf.errors.OpError):
    return True  # being written right now
  if now - claimed_at > STALE_CLAIM_SECONDS:
    _remove(claim)
    return False
  return True


def _remove(path: str) -> None:
  try:
    tf.io.gfile.remove(path)
  except tf.errors.OpError:
    pass


def claim_version(serving_model_dir: str, expected: Optional[str] = None,
                  now: Optional[float] = None) -> Tuple[int, str]:
  """Claims a new version on an object store; returns (version, claim path).

  Raises ServingChangedError when `expected` is no longer in service, and
  PushError when another push is under way (the claim is removed then).
  """
  version = next_version(serving_model_dir, now)
  claim = os.path.join(serving_model_dir, CLAIMS_DIR,
                       f"{version}-{uuid.uuid4().hex}")
  try:
    tf.io.gfile.makedirs(os.path.dirname(claim))
    with tf.io.gfile.GFile(claim, "w") as f:
      f.write(json.dumps({"version": version, "claimed_at": time.time(),
                          "host": os.uname().nodename, "pid": os.getpid()}))
  except tf.errors.OpError as e:
    raise PushError(f"{serving_model_dir}: cannot write the push claim "
                    f"({e.message}); the versions in service are "
                    "untouched") from e
  clock = time.time()
  others = sorted(v for path, v in _claims(serving_model_dir)
                  if path != claim and _live(serving_model_dir, path, v, clock))
  try:
    if others:
      raise PushError(f"{serving_model_dir}: another push is under way "
                      f"(version {others[-1]}); not pushed as version "
                      f"{version}, rerun to compare with it")
    if expected is not None:
      check_in_service(serving_model_dir, expected)
  except PushError:
    _remove(claim)
    raise
  return version, claim


def push(model_dir: str, serving_model_dir: str,
         now: Optional[float] = None,
         expected: Optional[str] = None) -> Tuple[str, bool]:
  """Copies SavedModel `model_dir` to a new version (hold `serving_lock`).

  Returns (version path, True), or (path of the latest version, False) when
  that version already holds exactly this model. `expected`: the version
  the candidate was compared with ("none": nothing); if another is in
  service, raises ServingChangedError and pushes nothing. Raises PushError,
  with nothing half-written left behind, when the copy fails (disk full, no
  permission).
  """
  if not tf.io.gfile.exists(os.path.join(model_dir, SAVED_MODEL_FILE)):
    raise FileNotFoundError(f"{model_dir}: no saved_model.pb, not a SavedModel")
  if expected is not None:
    check_in_service(serving_model_dir, expected)
  latest = latest_version_dir(serving_model_dir)
  if latest and tree_digest(latest) == tree_digest(model_dir):
    return latest, False
  try:
    tf.io.gfile.makedirs(serving_model_dir)
  except (OSError, tf.errors.OpError) as e:
    raise PushError(f"{serving_model_dir}: cannot create the serving "
                    f"directory ({getattr(e, 'strerror', None) or e})") from e
  if not is_local(serving_model_dir):
    version, claim = claim_version(serving_model_dir, expected, now)
    final = os.path.join(serving_model_dir, str(version))
    try:
      _copy_saved_model_last(model_dir, final)
    except tf.errors.OpError as e:
      raise PushError(f"{serving_model_dir}: push failed ({e.message}); the "
                      "versions in service are untouched") from e
    finally:
      _remove(claim)
    return final, True
  version = next_version(serving_model_dir, now)
  final = os.path.join(serving_model_dir, str(version))
  _remove_stale_staging(serving_model_dir)
  staging = os.path.join(serving_model_dir,
                         f"{STAGING_PREFIX}{version}-{os.getpid()}")
  try:
    _copy_tree(model_dir, staging)
    if os.path.exists(final):  # a concurrent push took this version
      raise FileExistsError(f"{final}: version already exists")
    os.rename(staging, final)
  except OSError as e:
    raise PushError(f"{serving_model_dir}: push failed ({e.strerror or e}); "
                    "the versions in service are untouched") from e
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return final, True


def _copy_tree(source: str, target: str) -> None:
  """Like shutil.copytree, but stops at the first failing file."""
  for root, _, files in os.walk(source):
    destination = os.path.join(target, os.path.relpath(root, source))
    os.makedirs(destination, exist_ok=True)
    for name in files:
      shutil.copy2(os.path.join(root, name), os.path.join(destination, name))


def _remove_stale_staging(serving_model_dir: str) -> None:
  """Staging copies of pushes killed midway (the lock is held: none live)."""
  for name in os.listdir(serving_model_dir):
    if name.startswith(STAGING_PREFIX):
      shutil.rmtree(os.path.join(serving_model_dir, name), ignore_errors=True)
