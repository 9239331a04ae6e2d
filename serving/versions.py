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
next push, holding its claim, removes what a killed one left (integer
prefixes below its own version without `saved_model.pb`). Existing versions
are never touched, and a model identical to the version in service is not
pushed again (a rerun whose Trainer was cached re-blesses the same model;
a retried Pusher whose push happened).

Compare-and-swap: given `expected` (the version the Evaluator compared with,
"none" for nothing), `push` refuses with `ServingChangedError` unless that is
still the version in service. Locally `serving_lock` makes check and rename
one step. Object stores have no lock and no rename; there a push first
claims the right to succeed the version in service `E`: the object
`.push-claims/after-E`, made by the store's conditional create
(`serving.claims`: S3/MinIO `If-None-Match: *`, GCS `ifGenerationMatch=0`),
so of the pushes compared with one version one holds it at a time and the
others are refused at once. Holding it, a push checks that `E` is in
service before it writes anything, then reserves its version number
(`.push-claims/version-<n>`, conditional create too): no two pushes ever
write one version's files. From then on the holder rewrites its claim every
`HEARTBEAT_SECONDS`, each rewrite conditional on its own last write, for at
most `MAX_PUSH_SECONDS`. A claim the store last saw written
`STALE_CLAIM_SECONDS` ago, by the store's own clock (pods' clocks never
count), belongs to a dead or hung push and is taken over by a conditional
rewrite (of two takers one wins). The holder checks its claim between
files; right before `saved_model.pb` it checks that `E` is still in service
and renews the claim, and right after it renews it once more: a holder
whose claim was taken over stops, removes what it wrote, and withdraws its
version if it had appeared.

Guarantee: a version stays in service only if the version in service when
it appeared is the one it was compared with (so two pushes compared with
one version never both succeed it), however slow the store and whatever
the pods' clocks; a dead push blocks others for `STALE_CLAIM_SECONDS`, a
hung one for `MAX_PUSH_SECONDS` more. Remaining window: a holder whose
`saved_model.pb` write, begun within `STALE_CLAIM_SECONDS / 2` of a
renewal, lands about `STALE_CLAIM_SECONDS` after it, with none of its
heartbeats reaching the store meanwhile, and which is killed before it can
renew once more, leaves its version (possibly missing files the next push
removed) below the one of the push that took its claim over, which serves.

A retried push whose model is already in service returns that version, and
so does one whose version was since succeeded by another push (see `push`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import tensorflow as tf

from components import storage
from serving import claims

STAGING_PREFIX = ".staging-"
SAVED_MODEL_FILE = "saved_model.pb"
RECORD_FILE = "push_record.json"  # inside each version: see serving.registry
LOCK_FILE = ".push.lock"
CLAIMS_DIR = ".push-claims"
CLAIM_PREFIX = "after-"  # .push-claims/after-<version in service>
VERSION_PREFIX = "version-"  # .push-claims/version-<n>: n is reserved
HEARTBEAT_SECONDS = 5.0  # a push rewrites its claim this often
STALE_CLAIM_SECONDS = 60.0  # by the store's clock: then taken over
MAX_PUSH_SECONDS = 1800.0  # a push stops (and stops its heartbeat) after
NO_VERSION = "none"  # `serving_state` of an empty serving directory


class PushError(OSError):
  """A push failed; the versions already in service are untouched."""


class ServingChangedError(PushError):
  """The version in service is not the one the candidate was compared with."""


def _describe(state: str) -> str:
  return "nothing in service" if state == NO_VERSION else f"version {state}"


def check_in_service(serving_model_dir: str, expected: str) -> None:
  """Raises ServingChangedError unless `expected` is still in service."""
  _check_state(serving_model_dir, expected, serving_state(serving_model_dir))


def _check_state(serving_model_dir: str, expected: str, state: str) -> None:
  if state != expected:
    raise ServingChangedError(
        f"{serving_model_dir}: the model in service changed since the "
        f"Evaluator compared with it ({_describe(expected)} then, "
        f"{_describe(state)} now); not pushed, rerun to compare with "
        f"{_describe(state)}")


@contextlib.contextmanager
def serving_lock(serving_model_dir: str) -> Iterator[None]:
  """Serializes pushes into one local serving directory (a no-op on object
  stores, where a push claims the version it succeeds instead)."""
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


def version_name(version_dir: str) -> str:
  """The version a version directory holds: its last path part."""
  return version_dir.rstrip("/").rsplit("/", 1)[-1]


def serving_state(serving_model_dir: str) -> str:
  """The version in service ("none" if none)."""
  latest = latest_version_dir(serving_model_dir)
  return version_name(latest) if latest else NO_VERSION


def next_version(serving_model_dir: str, now: Optional[float] = None) -> int:
  """A Unix-time version, always above every existing one."""
  candidate = int(now if now is not None else time.time())
  return max([candidate] + [v + 1 for v in existing_versions(
      serving_model_dir)])


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


class _Lost(Exception):
  """This push no longer holds its claim (the reason, in words)."""


def claim_path(serving_model_dir: str, after: str) -> str:
  """The claim on succeeding version `after` ("none": the first push)."""
  return storage.join(serving_model_dir, CLAIMS_DIR, f"{CLAIM_PREFIX}{after}")


def _holder(body: bytes) -> Dict[str, Any]:
  """A claim's body as written by `_Claim` ({} for anything else)."""
  try:
    holder = json.loads(body)
  except ValueError:
    return {}
  return holder if isinstance(holder, dict) else {}


class _Claim:
  """This push's claim on succeeding version `after`.

  Taken by a conditional create, or by a conditional takeover of a claim
  the store last saw written STALE_CLAIM_SECONDS ago; renewed by
  conditional rewrites every HEARTBEAT_SECONDS from `start` on, for at most
  MAX_PUSH_SECONDS; lost the moment a rewrite finds it rewritten by another.
  """

  def __init__(self, serving_model_dir: str, after: str, version: int):
    self.serving_model_dir, self.after, self.version = (
        serving_model_dir, after, version)
    self.path = claim_path(serving_model_dir, after)
    self.store = claims.for_path(self.path)
    self.token = uuid.uuid4().hex
    self._beats = 0
    self._tag: Optional[str] = None
    self._taken = False  # another push rewrote the claim
    self.lost = ""
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, daemon=True)
    self._started = time.monotonic()
    self._renewed = self._started  # when the last good rewrite was sent

  def _body(self) -> bytes:
    """Unique per write (a rewrite by another writer changes the tag)."""
    self._beats += 1
    return json.dumps({
        "version": self.version, "after": self.after, "token": self.token,
        "beat": self._beats, "host": os.uname().nodename, "pid": os.getpid(),
        # For people only: pods' clocks are never compared.
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }).encode()

  def acquire(self) -> None:
    """Takes the claim; ServingChangedError if the push that holds it made
    its version, PushError if that push is under way."""
    held = None
    for _ in range(3):
      tag = self.store.create(self.path, self._body())
      if tag is not None:
        self._tag = tag
        return
      seen = self.store.read(self.path)
      if seen is None:
        continue  # released meanwhile: create again
      held = _holder(seen.body).get("version")
      if isinstance(held, int):
        if is_complete(version_dir(self.serving_model_dir, held)):
          check_in_service(self.serving_model_dir, self.after)
        self.version = max(self.version, held + 1)
      if seen.age < STALE_CLAIM_SECONDS:
        break
      # Stale: its push is dead or hung. Of two takers only one rewrites
      # the claim as read.
      tag = self.store.replace(self.path, self._body(), seen.tag)
      if tag is not None:
        self._tag = tag
        return
    name = f"version {held}" if isinstance(held, int) else self.path
    raise PushError(f"{self.serving_model_dir}: another push is under way "
                    f"({name}); not pushed as version {self.version}, rerun "
                    "to compare with it")

  def start(self) -> None:
    self._thread.start()

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      try:
        self.renew()
      except _Lost:
        return  # taken over, or past MAX_PUSH_SECONDS: the claim goes stale
      except claims.ClaimStoreError:
        pass  # the next beat tries again

  def check(self) -> None:
    """Raises _Lost if the claim was taken over or the push ran too long."""
    if not self.lost and time.monotonic() - self._started > MAX_PUSH_SECONDS:
      self.lost = (f"it ran longer than MAX_PUSH_SECONDS "
                   f"({MAX_PUSH_SECONDS:g} s)")
    if self.lost:
      raise _Lost(self.lost)

  def renew(self, limit: bool = True) -> None:
    """Rewrites the claim if it is still this push's; _Lost if not (or, with
    `limit`, past MAX_PUSH_SECONDS), ClaimStoreError if the store is
    unreachable."""
    with self._lock:
      if self._taken or limit:
        self.check()
      sent = time.monotonic()
      tag = self.store.replace(self.path, self._body(), self._tag)
      if tag is None:
        self._taken = True
        self.lost = "another push took its claim over"
        raise _Lost(self.lost)
      self._tag, self._renewed = tag, sent

  def confirm(self) -> None:
    """Right before the version appears: a renewal sent less than
    STALE_CLAIM_SECONDS / 2 ago (no push can take the claim over for
    STALE_CLAIM_SECONDS after it), or _Lost."""
    try:
      self.renew()
    except claims.ClaimStoreError as e:
      raise _Lost(f"its claim could not be renewed ({e})") from e
    if time.monotonic() - self._renewed > STALE_CLAIM_SECONDS / 2:
      raise _Lost("renewing its claim took longer than "
                  "STALE_CLAIM_SECONDS / 2")

  def held_after_write(self) -> bool:
    """After the version appeared: False only if the store says another
    push took the claim over meanwhile."""
    try:
      self.renew(limit=False)
    except _Lost:
      return False
    except claims.ClaimStoreError:
      pass  # unknown: the write began right after a renewal
    return True

  def release(self) -> None:
    """Stops the heartbeat and removes the claim if it is still this
    push's."""
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join()
    if self._tag is not None and not self._taken:
      try:
        self.store.delete(self.path, self._tag)
      except claims.ClaimStoreError:
        pass  # it goes stale; the next push takes it over


def remove_incomplete_versions(serving_model_dir: str,
                               below: Optional[int] = None,
                               check: Optional[Callable[[], None]] = None
                               ) -> List[int]:
  """Removes integer prefixes without saved_model.pb (below version
  `below`, if given): what killed pushes left on an object store. Call
  holding the claim on the version in service; `check` runs before each
  removal and raises to stop. Returns the versions removed."""
  removed = []
  for version in existing_versions(serving_model_dir):
    if below is not None and version >= below:
      break
    path = version_dir(serving_model_dir, version)
    if not is_complete(path):
      if check is not None:
        check()
      try:
        tf.io.gfile.rmtree(path)
        removed.append(version)
      except tf.errors.OpError:
        pass  # tried again by the next push
  return removed


def _copy_saved_model_last(
    model_dir: str, target: str, record_text: str,
    between: Callable[[], None] = lambda: None,
    before_last: Callable[[], None] = lambda: None) -> None:
  """Copies the model with its record, `saved_model.pb` last; `between`
  runs before each file, `before_last` right before `saved_model.pb`."""
  files = [f for f in _files(model_dir) if f != RECORD_FILE]
  for relative in sorted(files, key=lambda p: p == SAVED_MODEL_FILE):
    between()
    if relative == SAVED_MODEL_FILE:
      with tf.io.gfile.GFile(storage.join(target, RECORD_FILE), "w") as f:
        f.write(record_text)
      before_last()
    destination = storage.join(target, relative)
    tf.io.gfile.makedirs(os.path.dirname(destination))
    tf.io.gfile.copy(os.path.join(model_dir, relative), destination)


def _remove_version(path: str) -> None:
  """Best effort, `saved_model.pb` first; the next push removes the rest."""
  try:
    marker = storage.join(path, SAVED_MODEL_FILE)
    if tf.io.gfile.exists(marker):
      tf.io.gfile.remove(marker)
    if tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)
  except tf.errors.OpError:
    pass


def _reserve_version(claim: "_Claim", start: int) -> Tuple[int, str]:
  """The first version from `start` on whose number no other push holds:
  each push reserves its number by a conditional create of
  `.push-claims/version-<n>`, so no two pushes ever write one version
  prefix (not even a push whose claim was taken over while it had written
  nothing yet, and the push that took it over). Returns (version, path of
  its reservation)."""
  for version in range(start, start + 1000):
    path = storage.join(claim.serving_model_dir, CLAIMS_DIR,
                        f"{VERSION_PREFIX}{version}")
    if claim.store.create(path, claim.token.encode()) is not None:
      return version, path
  raise PushError(f"{claim.serving_model_dir}: no free version number from "
                  f"{start} on; not pushed")


def _push_to_object_store(model_dir: str, serving_model_dir: str,
                          record: Dict[str, Any], now: Optional[float],
                          after: str) -> str:
  try:
    # The version it names until it has reserved one (messages, and a
    # lower bound for the next holder).
    claim = _Claim(serving_model_dir, after,
                   next_version(serving_model_dir, now))
    claim.acquire()
    try:
      # Nothing of this push is written yet: a refusal here removes nothing
      # (the version it would have taken may be the one that beat it).
      check_in_service(serving_model_dir, after)
      version, reservation = _reserve_version(claim, max(
          claim.version, next_version(serving_model_dir, now)))
    except BaseException:
      claim.release()
      raise
  except claims.Unsupported as e:
    raise PushError(f"{serving_model_dir}: {e}; not pushed") from e
  except claims.ClaimStoreError as e:
    raise PushError(f"{serving_model_dir}: cannot write the push claim "
                    f"({e}); the versions in service are untouched") from e
  claim.version = version
  final = version_dir(serving_model_dir, version)

  def before_visible() -> None:
    check_in_service(serving_model_dir, after)
    claim.confirm()

  claim.start()
  try:
    remove_incomplete_versions(serving_model_dir, below=version,
                               check=claim.check)
    _remove_reservations_below(serving_model_dir, version)
    _copy_saved_model_last(model_dir, final, _record_text(record, version),
                           between=claim.check, before_last=before_visible)
    if not claim.held_after_write():
      raise PushError(f"{serving_model_dir}: another push took this push's "
                      f"claim over while version {version} appeared; "
                      f"version {version} withdrawn, rerun to compare with "
                      "the version in service")
  except _Lost as e:
    _remove_version(final)
    raise PushError(f"{serving_model_dir}: push of version {version} "
                    f"stopped ({e}); not pushed, the versions in service "
                    "are untouched") from e
  except PushError:
    _remove_version(final)
    raise
  except (tf.errors.OpError, OSError) as e:
    _remove_version(final)
    message = getattr(e, "message", None) or getattr(e, "strerror", None) or e
    raise PushError(f"{serving_model_dir}: push failed ({message}); the "
                    "versions in service are untouched") from e
  finally:
    claim.release()
    _remove_reservation(claim, reservation)
  return final


def _remove_reservations_below(serving_model_dir: str, version: int) -> None:
  """Reservations of lower numbers: left by killed pushes (a live push
  releases its own), their numbers passed by `next_version` now."""
  directory = storage.join(serving_model_dir, CLAIMS_DIR)
  for name in tf.io.gfile.listdir(directory):
    number = name.rstrip("/")[len(VERSION_PREFIX):]
    if (name.startswith(VERSION_PREFIX) and number.isdigit() and
        int(number) < version):
      try:
        tf.io.gfile.remove(storage.join(directory, name.rstrip("/")))
      except tf.errors.OpError:
        pass  # tried again by the next push


def _remove_reservation(claim: "_Claim", path: str) -> None:
  """Once the version is complete or removed, its number needs no
  reservation (`next_version` passes every existing version)."""
  try:
    tag = claim.store.tag_if_ours(path, claim.token.encode())
    if tag is not None:
      claim.store.delete(path, tag)
  except claims.ClaimStoreError:
    pass  # a few bytes left in .push-claims/; the number stays taken


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

  Returns (version path, True), or (path, False) when the model is already
  pushed: the latest version holds exactly this model (its record is added
  if it has none: a version pushed before records existed), or, when the
  version in service is not `expected`, an earlier version holds it and its
  record says it was compared with `expected` too (a retry of a push that
  happened and was since succeeded by another push; nothing is pushed
  again). `expected`: the version the candidate was compared with ("none":
  nothing); if another is in service, raises ServingChangedError and pushes
  nothing. Raises PushError, with nothing half-written left behind, when
  the copy fails (disk full, no permission) or another push holds the
  claim on an object store.
  """
  record = dict(record or {})
  record.setdefault("pushed_at", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                               time.gmtime()))
  if expected is not None:
    record.setdefault("compared_with", expected)
  if not tf.io.gfile.exists(storage.join(model_dir, SAVED_MODEL_FILE)):
    raise FileNotFoundError(f"{model_dir}: no saved_model.pb, not a SavedModel")
  latest = latest_version_dir(serving_model_dir)
  digest = tree_digest(model_dir)
  if latest and tree_digest(latest) == digest:
    _add_missing_record(latest, record)  # a retry, or a cached Trainer
    return latest, False
  state = version_name(latest) if latest else NO_VERSION
  if expected is not None and state != expected:
    earlier = _pushed_after(serving_model_dir, expected, digest)
    if earlier:
      return earlier, False
    _check_state(serving_model_dir, expected, state)
  try:
    tf.io.gfile.makedirs(serving_model_dir)
  except (OSError, tf.errors.OpError) as e:
    raise PushError(f"{serving_model_dir}: cannot create the serving "
                    f"directory ({getattr(e, 'strerror', None) or e})") from e
  if storage.is_remote(serving_model_dir):
    return _push_to_object_store(model_dir, serving_model_dir, record, now,
                                 state), True
  return _push_locally(model_dir, serving_model_dir, record, now), True


def _pushed_after(serving_model_dir: str, expected: str,
                  digest: str) -> Optional[str]:
  """The complete version holding the model of `digest` whose record says
  it was compared with `expected`, or None."""
  for version in reversed(complete_versions(serving_model_dir)):
    path = version_dir(serving_model_dir, version)
    try:
      with tf.io.gfile.GFile(storage.join(path, RECORD_FILE)) as f:
        pushed = json.load(f)
    except (ValueError, tf.errors.OpError):
      continue
    if (isinstance(pushed, dict) and pushed.get("compared_with") == expected
        and tree_digest(path) == digest):
      return path
  return None


def _add_missing_record(path: str, record: Dict[str, Any]) -> None:
  target = storage.join(path, RECORD_FILE)
  if tf.io.gfile.exists(target):
    return
  text = _record_text(record, int(version_name(path)))
  try:
    if storage.is_remote(path):
      with tf.io.gfile.GFile(target, "w") as f:
        f.write(text)
    else:
      local = storage.local_path(target)
      _write_local(local + ".tmp", text)
      os.replace(local + ".tmp", local)
  except (OSError, tf.errors.OpError) as e:
    # The version stays unrecorded (the Evaluator rescores it for the
    # best-ever guard); the next identical push tries again.
    print(f"note: {target} not written "
          f"({getattr(e, 'strerror', None) or e}); the next push tries again",
          file=sys.stderr, flush=True)
