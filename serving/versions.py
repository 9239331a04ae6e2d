"""Atomic, never-overwriting pushes into `<serving_model_dir>/<version>/`.

A version and its record (`push_record.json`: accuracy, source model, time,
`serving.registry`) appear together: the record is written inside the
version before `saved_model.pb`, and a version counts as pushed (in service,
or in the best-ever guard) only once `saved_model.pb` is there.

On a local filesystem a version is copied into a hidden staging directory,
flushed to disk (fsync) and renamed into place only when complete, so TF
Serving (which only loads integer-named directories) never sees a
half-written model, not even after a power loss. On object stores (gs://,
s3://), which cannot rename directories, files are copied with
`saved_model.pb` last; a push that fails removes what it wrote, and the
next push removes what a killed one left (integer prefixes without
`saved_model.pb` and no live claim). Existing versions are never touched,
and a model identical to the version in service is not pushed again (a
rerun whose Trainer was cached re-blesses the same model).

Compare-and-swap: given `expected` (the version the Evaluator compared with,
"none" for nothing), `push` refuses with `ServingChangedError` unless that is
still the version in service. Locally `serving_lock` makes check and rename
one step. Object stores have no lock and no rename, so a push first writes a
claim object `.push-claims/<version>-<token>`, then lists the claims: any
other live claim (another push under way) or a changed version in service
refuses the push, and removes the claim. Of two concurrent pushes at least
one sees the other's claim (GCS and S3 list strongly consistently), so two
runs never write the same version, nor both swap the same baseline. A push
rewrites its claim every `HEARTBEAT_SECONDS` while it copies; a claim not
rewritten for `STALE_CLAIM_SECONDS` belongs to a killed push and is ignored
and removed, so a dead push blocks the next one for a minute at most.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import tensorflow as tf

from components import storage

STAGING_PREFIX = ".staging-"
SAVED_MODEL_FILE = "saved_model.pb"
RECORD_FILE = "push_record.json"  # inside each version: see serving.registry
LOCK_FILE = ".push.lock"
CLAIMS_DIR = ".push-claims"
HEARTBEAT_SECONDS = 5.0
STALE_CLAIM_SECONDS = 60.0
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
  stores, where pushes claim their version instead)."""
  if storage.is_remote(serving_model_dir):
    yield
    return
  directory = storage.local_path(serving_model_dir)
  try:
    os.makedirs(directory, exist_ok=True)
    handle = open(os.path.join(directory, LOCK_FILE), "a")  # pylint: disable=consider-using-with
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


def existing_versions(serving_model_dir: str) -> List[int]:
  """Integer versions in `serving_model_dir` (complete or not), ascending."""
  if not tf.io.gfile.isdir(serving_model_dir):
    return []
  names = (n.rstrip("/") for n in tf.io.gfile.listdir(serving_model_dir))
  return sorted(int(n) for n in names if n.isdigit())


def version_dir(serving_model_dir: str, version: int) -> str:
  return storage.join(serving_model_dir, str(version))


def is_complete(path: str) -> bool:
  """Whether the version directory `path` holds a whole pushed model."""
  return tf.io.gfile.exists(storage.join(path, SAVED_MODEL_FILE))


def complete_versions(serving_model_dir: str) -> List[int]:
  """Versions with `saved_model.pb`, ascending: what has been pushed."""
  return [v for v in existing_versions(serving_model_dir)
          if is_complete(version_dir(serving_model_dir, v))]


def latest_version_dir(serving_model_dir: str) -> Optional[str]:
  """The newest complete version (one with `saved_model.pb`), or None."""
  for version in reversed(existing_versions(serving_model_dir)):
    path = version_dir(serving_model_dir, version)
    if is_complete(path):
      return path
  return None


def serving_state(serving_model_dir: str) -> str:
  """The version in service ("none" if none)."""
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
  """sha256 over the relative paths and bytes of the model's files in
  `directory` (a version's record is not part of its model)."""
  digest = hashlib.sha256()
  for relative in _files(directory):
    if relative == RECORD_FILE:
      continue
    digest.update(relative.encode() + b"\0")
    with tf.io.gfile.GFile(os.path.join(directory, relative), "rb") as f:
      digest.update(hashlib.sha256(f.read()).digest())
  return digest.hexdigest()


def _record_text(record: Dict[str, Any], version: int) -> str:
  return json.dumps(dict(record, version=version), indent=2, sort_keys=True)


# --- object stores: claims -------------------------------------------------


def _claims(serving_model_dir: str) -> List[Tuple[str, int]]:
  """(path, version) of every claim object on an object store."""
  if not storage.is_remote(serving_model_dir):
    return []
  directory = storage.join(serving_model_dir, CLAIMS_DIR)
  if not tf.io.gfile.isdir(directory):
    return []
  found = []
  for name in tf.io.gfile.listdir(directory):
    version = name.rstrip("/").split("-", 1)[0]
    if version.isdigit():
      found.append((storage.join(directory, name.rstrip("/")), int(version)))
  return found


def _live(serving_model_dir: str, claim: str, version: int,
          now: float) -> bool:
  """Whether a claim belongs to a push still under way: not finished, and
  rewritten (its heartbeat) within the last STALE_CLAIM_SECONDS. A claim
  of a killed push is removed."""
  if is_complete(version_dir(serving_model_dir, version)):
    return False  # done; its removal failed or is racing
  try:
    with tf.io.gfile.GFile(claim) as f:
      holder = json.load(f)
    alive_at = float(holder.get("alive_at", holder["claimed_at"]))
  except tf.errors.NotFoundError:
    return False  # removed meanwhile: its push ended
  except (ValueError, KeyError, TypeError, AttributeError, tf.errors.OpError):
    alive_at = float("-inf")  # not a claim this code wrote: written whole
  if now - alive_at > STALE_CLAIM_SECONDS:
    _remove(claim)
    return False
  return True


def _remove(path: str) -> None:
  try:
    tf.io.gfile.remove(path)
  except tf.errors.OpError:
    pass


def _write_claim(claim: str, version: int, claimed_at: float) -> None:
  with tf.io.gfile.GFile(claim, "w") as f:
    f.write(json.dumps({"version": version, "claimed_at": claimed_at,
                        "alive_at": time.time(),
                        "host": os.uname().nodename, "pid": os.getpid()}))


class _Heartbeat:
  """Rewrites a claim every HEARTBEAT_SECONDS while a push copies."""

  def __init__(self, claim: str, version: int, claimed_at: float):
    self._args = (claim, version, claimed_at)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, daemon=True)

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      try:
        _write_claim(*self._args)
      except tf.errors.OpError:
        pass  # the next beat tries again; the push itself reports errors

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()


def claim_version(serving_model_dir: str, expected: Optional[str] = None,
                  now: Optional[float] = None) -> Tuple[int, str]:
  """Claims a new version on an object store; returns (version, claim path).

  Raises ServingChangedError when `expected` is no longer in service, and
  PushError when another push is under way (the claim is removed then).
  """
  version = next_version(serving_model_dir, now)
  claim = storage.join(serving_model_dir, CLAIMS_DIR,
                       f"{version}-{uuid.uuid4().hex}")
  try:
    tf.io.gfile.makedirs(os.path.dirname(claim))
    _write_claim(claim, version, time.time())
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


def remove_incomplete_versions(serving_model_dir: str) -> List[int]:
  """Removes integer prefixes without saved_model.pb: what killed pushes
  left on an object store (call holding a claim that saw no other live
  claim: no push is under way). Returns the versions removed."""
  removed = []
  for version in existing_versions(serving_model_dir):
    path = version_dir(serving_model_dir, version)
    if not is_complete(path):
      try:
        tf.io.gfile.rmtree(path)
        removed.append(version)
      except tf.errors.OpError:
        pass  # tried again by the next push
  return removed


def _copy_saved_model_last(model_dir: str, target: str,
                           record_text: str) -> None:
  files = [f for f in _files(model_dir) if f != RECORD_FILE]
  for relative in sorted(files, key=lambda p: p == SAVED_MODEL_FILE):
    if relative == SAVED_MODEL_FILE:
      with tf.io.gfile.GFile(storage.join(target, RECORD_FILE), "w") as f:
        f.write(record_text)
    destination = storage.join(target, relative)
    tf.io.gfile.makedirs(os.path.dirname(destination))
    tf.io.gfile.copy(os.path.join(model_dir, relative), destination)


def _push_to_object_store(model_dir: str, serving_model_dir: str,
                          record: Dict[str, Any], now: Optional[float],
                          expected: Optional[str]) -> str:
  version, claim = claim_version(serving_model_dir, expected, now)
  final = version_dir(serving_model_dir, version)
  try:
    remove_incomplete_versions(serving_model_dir)
    with _Heartbeat(claim, version, time.time()):
      _copy_saved_model_last(model_dir, final, _record_text(record, version))
  except (tf.errors.OpError, OSError) as e:
    try:  # best effort: leave no partial version behind
      if tf.io.gfile.exists(final):
        tf.io.gfile.rmtree(final)
    except tf.errors.OpError:
      pass  # the next push removes it
    message = getattr(e, "message", None) or getattr(e, "strerror", None) or e
    raise PushError(f"{serving_model_dir}: push failed ({message}); the "
                    "versions in service are untouched") from e
  finally:
    _remove(claim)
  return final


# --- local filesystems: staging, fsync, rename --------------------------------


def _fsync(path: str) -> None:
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def _copy_tree(source: str, target: str) -> None:
  """Like shutil.copytree, but stops at the first failing file, and every
  file and directory is on disk (fsync) when it returns."""
  for root, _, files in os.walk(source):
    destination = os.path.join(target, os.path.relpath(root, source))
    os.makedirs(destination, exist_ok=True)
    for name in files:
      if root == source and name == RECORD_FILE:
        continue
      copied = os.path.join(destination, name)
      shutil.copy2(os.path.join(root, name), copied)
      _fsync(copied)


def _fsync_dirs(top: str) -> None:
  for root, _, _ in os.walk(top, topdown=False):
    _fsync(root)


def _write_local(path: str, text: str) -> None:
  with open(path, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def _push_locally(model_dir: str, serving_model_dir: str,
                  record: Dict[str, Any], now: Optional[float]) -> str:
  directory = storage.local_path(serving_model_dir)
  version = next_version(directory, now)
  final = os.path.join(directory, str(version))
  _remove_stale_staging(directory)
  staging = os.path.join(directory, f"{STAGING_PREFIX}{version}-{os.getpid()}")
  try:
    _copy_tree(storage.local_path(model_dir), staging)
    _write_local(os.path.join(staging, RECORD_FILE),
                 _record_text(record, version))
    _fsync_dirs(staging)
    if os.path.exists(final):  # a concurrent push took this version
      raise FileExistsError(f"{final}: version already exists")
    os.rename(staging, final)
    _fsync(directory)  # the rename itself is on disk
  except OSError as e:
    raise PushError(f"{serving_model_dir}: push failed ({e.strerror or e}); "
                    "the versions in service are untouched") from e
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return storage.join(serving_model_dir, str(version))


def _remove_stale_staging(serving_model_dir: str) -> None:
  """Staging copies of pushes killed midway (the lock is held: none live)."""
  for name in os.listdir(serving_model_dir):
    if name.startswith(STAGING_PREFIX):
      shutil.rmtree(os.path.join(serving_model_dir, name), ignore_errors=True)


def push(model_dir: str, serving_model_dir: str,
         record: Optional[Dict[str, Any]] = None,
         now: Optional[float] = None,
         expected: Optional[str] = None) -> Tuple[str, bool]:
  """Copies SavedModel `model_dir` to a new version with its `record` (hold
  `serving_lock`).

  Returns (version path, True), or (path of the latest version, False) when
  that version already holds exactly this model (its record is added if it
  has none: a version pushed before records existed). `expected`: the
  version the candidate was compared with ("none": nothing); if another is
  in service, raises ServingChangedError and pushes nothing. Raises
  PushError, with nothing half-written left behind, when the copy fails
  (disk full, no permission).
  """
  record = dict(record or {})
  record.setdefault("pushed_at", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                               time.gmtime()))
  if not tf.io.gfile.exists(storage.join(model_dir, SAVED_MODEL_FILE)):
    raise FileNotFoundError(f"{model_dir}: no saved_model.pb, not a SavedModel")
  if expected is not None:
    check_in_service(serving_model_dir, expected)
  latest = latest_version_dir(serving_model_dir)
  if latest and tree_digest(latest) == tree_digest(model_dir):
    _add_missing_record(latest, record)
    return latest, False
  try:
    tf.io.gfile.makedirs(serving_model_dir)
  except (OSError, tf.errors.OpError) as e:
    raise PushError(f"{serving_model_dir}: cannot create the serving "
                    f"directory ({getattr(e, 'strerror', None) or e})") from e
  if storage.is_remote(serving_model_dir):
    return _push_to_object_store(model_dir, serving_model_dir, record, now,
                                 expected), True
  return _push_locally(model_dir, serving_model_dir, record, now), True


def _add_missing_record(path: str, record: Dict[str, Any]) -> None:
  target = storage.join(path, RECORD_FILE)
  if tf.io.gfile.exists(target):
    return
  text = _record_text(record, int(os.path.basename(path.rstrip("/"))))
  try:
    if storage.is_remote(path):
      with tf.io.gfile.GFile(target, "w") as f:
        f.write(text)
    else:
      local = storage.local_path(target)
      _write_local(local + ".tmp", text)
      os.replace(local + ".tmp", local)
  except (OSError, tf.errors.OpError):
    pass  # the version stays unrecorded; the next identical push tries again
