"""Claim objects on object stores: conditional writes and the store's clock.

A claim is a small object that only one writer can create, and that only
its last writer can rewrite or remove: `create` succeeds only if the object
is absent (S3 and MinIO: `If-None-Match: *`; GCS: `ifGenerationMatch=0`),
`replace` and `delete` only if it is unchanged since the tag the caller
names (S3: `If-Match: <ETag>`; GCS: `ifGenerationMatch=<generation>`). Of
writers racing for one object the store lets exactly one win: a real
compare-and-set, with no clock involved. `read` also returns the claim's
age by the store's own clock (the time the store stamped on its last write
against the store's time now), never by a pod's clock.

S3 goes through boto3 and GCS through google-cloud-storage (tf.io.gfile
has no conditional writes); both are imported when first used. `ram://`
(TensorFlow's in-memory filesystem, which lives in one process) gets the
same operations under a process lock, for tests. The GCS store follows the
client library's documentation; the test suite does not exercise it (no
GCS emulator here honours preconditions).
"""
from __future__ import annotations

import dataclasses
import email.utils
import os
import threading
import time
import uuid
from typing import Callable, Dict, Optional, Tuple

from components import storage


class ClaimStoreError(OSError):
  """The store could not be asked (network, permissions): nothing decided."""


class Unsupported(ValueError):
  """The store has no conditional writes (the message names no path)."""


@dataclasses.dataclass(frozen=True)
class Seen:
  """A claim as read: its bytes, its tag (for a conditional rewrite) and
  seconds since it was last written, by the store's clock."""
  body: bytes
  tag: str
  age: float


def _split(path: str) -> Tuple[str, str]:
  """`scheme://bucket/key` -> (bucket, key)."""
  bucket, _, key = path.split("://", 1)[1].partition("/")
  return bucket, key


class Store:
  """Conditional writes on one kind of store (see the module docstring)."""

  def create(self, path: str, body: bytes) -> Optional[str]:
    """Writes `path` only if absent; its tag, or None if it exists."""
    tag = self._create(path, body)
    return tag if tag is not None else self.tag_if_ours(path, body)

  def replace(self, path: str, body: bytes, tag: str) -> Optional[str]:
    """Rewrites `path` only if its tag is still `tag`; the new tag, or None
    if it was rewritten or removed since."""
    new = self._replace(path, body, tag)
    return new if new is not None else self.tag_if_ours(path, body)

  def tag_if_ours(self, path: str, body: bytes) -> Optional[str]:
    """`path`'s tag if it holds exactly `body` (a unique token), else None.
    A write retried by the client after it succeeded is refused by its own
    condition: the object then holds exactly this body."""
    seen = self.read(path)
    return seen.tag if seen is not None and seen.body == body else None

  def read(self, path: str) -> Optional[Seen]:
    raise NotImplementedError

  def delete(self, path: str, tag: str) -> bool:
    """Removes `path` only if its tag is still `tag`; whether it did."""
    raise NotImplementedError

  def _create(self, path: str, body: bytes) -> Optional[str]:
    raise NotImplementedError

  def _replace(self, path: str, body: bytes, tag: str) -> Optional[str]:
    raise NotImplementedError


# --- S3 and MinIO (boto3) --------------------------------------------------

_S3_CONFLICTS = ("PreconditionFailed", "ConditionalRequestConflict",
                 "NoSuchKey", "412", "409", "404")


class S3Store(Store):
  """S3 and S3-compatible stores (MinIO) through boto3."""

  def __init__(self):
    import boto3  # pylint: disable=g-import-not-at-top
    from botocore import config  # pylint: disable=g-import-not-at-top
    endpoint = storage.s3_endpoint(os.environ)
    self._client = boto3.client(
        "s3", endpoint_url=endpoint,
        # MinIO's hostnames take no bucket subdomains.
        config=config.Config(s3={"addressing_style": "path"} if endpoint
                             else {}, retries={"mode": "standard"}))
    self._verified = set()

  def _call(self, path: str, method: str, **kwargs):
    """The response, or None when the store refused a condition."""
    from botocore import exceptions  # pylint: disable=g-import-not-at-top
    bucket, key = _split(path)
    try:
      return getattr(self._client, method)(Bucket=bucket, Key=key, **kwargs)
    except exceptions.ClientError as e:
      error = e.response.get("Error", {})
      if str(error.get("Code")) in _S3_CONFLICTS:
        return None
      raise ClaimStoreError(f"{path}: {error.get('Code')} "
                            f"({error.get('Message', '')})") from e
    except exceptions.BotoCoreError as e:
      raise ClaimStoreError(f"{path}: {e}") from e

  def _verify(self, path: str) -> None:
    """Refuses a store that ignores `If-None-Match` (it would let two
    pushes both "create" one claim); checked once per bucket."""
    bucket, _ = _split(path)
    if bucket in self._verified:
      return
    probe = f"{path.rsplit('/', 1)[0]}/.probe-{uuid.uuid4().hex}"
    self._call(probe, "put_object", Body=b"1", IfNoneMatch="*")
    honoured = self._call(probe, "put_object", Body=b"2",
                          IfNoneMatch="*") is None
    self._call(probe, "delete_object")
    if not honoured:
      raise Unsupported(f"the store of {bucket} ignored a conditional "
                        "write (If-None-Match: *); pushes need one that "
                        "honours it (AWS S3, a current MinIO)")
    self._verified.add(bucket)

  def _create(self, path, body):
    self._verify(path)
    done = self._call(path, "put_object", Body=body, IfNoneMatch="*")
    return done and done["ETag"]

  def _replace(self, path, body, tag):
    done = self._call(path, "put_object", Body=body, IfMatch=tag)
    return done and done["ETag"]

  def read(self, path):
    got = self._call(path, "get_object")
    if got is None:
      return None
    date = got["ResponseMetadata"]["HTTPHeaders"].get("date")
    if not date:
      raise ClaimStoreError(f"{path}: the store sent no Date header")
    now = email.utils.parsedate_to_datetime(date)
    return Seen(got["Body"].read(), got["ETag"],
                (now - got["LastModified"]).total_seconds())

  def delete(self, path, tag):
    return self._call(path, "delete_object", IfMatch=tag) is not None


# --- GCS (google-cloud-storage) --------------------------------------------


class GcsStore(Store):
  """Google Cloud Storage, generations as tags. Not tested here."""

  def __init__(self):
    from google.cloud import storage as gcs  # pylint: disable=g-import-not-at-top
    self._client = gcs.Client()

  def _blob(self, path):
    bucket, key = _split(path)
    return self._client.bucket(bucket).blob(key)

  def _guard(self, path: str, call: Callable[[], object]):
    """call(); None when the store refused a condition or the object is
    gone."""
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    from google.auth import exceptions as auth  # pylint: disable=g-import-not-at-top
    try:
      return call()
    except (exceptions.PreconditionFailed, exceptions.NotFound,
            exceptions.Conflict):
      return None
    except (exceptions.GoogleAPIError, auth.GoogleAuthError, OSError) as e:
      raise ClaimStoreError(f"{path}: {str(e).splitlines()[0]}") from e

  def _upload(self, path: str, body: bytes, generation: int) -> Optional[str]:
    blob = self._blob(path)
    done = self._guard(path, lambda: blob.upload_from_string(
        body, content_type="application/json",
        if_generation_match=generation) or True)
    return str(blob.generation) if done else None

  def _create(self, path, body):
    return self._upload(path, body, 0)

  def _replace(self, path, body, tag):
    return self._upload(path, body, int(tag))

  def read(self, path):
    bucket, key = _split(path)
    for _ in range(3):  # rewritten between metadata and bytes: again
      blob = self._guard(path, lambda: self._client.bucket(bucket).get_blob(
          key))
      if blob is None:
        return None
      generation, updated = blob.generation, blob.updated  # as listed
      if generation is None or updated is None:
        raise ClaimStoreError(f"{path}: the store sent no generation")
      body = self._guard(path, lambda b=blob: b.download_as_bytes(
          if_generation_match=generation))
      if body is not None:
        return Seen(body, str(generation),
                    (self._now(path) - updated).total_seconds())
    return None

  def _now(self, path: str):
    """The store's time: the time it stamps on a probe object."""
    probe = self._blob(f"{path.rsplit('/', 1)[0]}/.clock-{uuid.uuid4().hex}")
    if self._guard(path, lambda: probe.upload_from_string(
        b"", if_generation_match=0) or True) is None:
      raise ClaimStoreError(f"{path}: cannot write a clock probe")
    self._guard(path, probe.delete)
    return probe.updated

  def delete(self, path, tag):
    blob = self._blob(path)
    return self._guard(path, lambda: blob.delete(
        if_generation_match=int(tag)) or True) is not None


# --- ram:// (one process) ----------------------------------------------------

ram_clock: Callable[[], float] = time.monotonic  # the ram store's clock
_RAM_LOCK = threading.Lock()
_RAM: Dict[str, Tuple[str, float]] = {}  # path -> (tag, written at)


class RamStore(Store):
  """TensorFlow's `ram://` filesystem: one process, so a process lock makes
  its conditional writes atomic, and the process's clock is the store's."""

  def _write(self, path: str, body: bytes) -> str:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(body)
    tag = uuid.uuid4().hex
    _RAM[path] = (tag, ram_clock())
    return tag

  def _exists(self, path: str) -> bool:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)

  def _create(self, path, body):
    with _RAM_LOCK:
      return None if self._exists(path) else self._write(path, body)

  def _replace(self, path, body, tag):
    with _RAM_LOCK:
      if not self._exists(path) or _RAM.get(path, ("",))[0] != tag:
        return None
      return self._write(path, body)

  def read(self, path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with _RAM_LOCK:
      if not self._exists(path):
        return None
      with tf.io.gfile.GFile(path, "rb") as f:
        body = f.read()
      tag, written = _RAM.get(path, ("", float("-inf")))
      return Seen(body, tag, ram_clock() - written)

  def delete(self, path, tag):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with _RAM_LOCK:
      if not self._exists(path) or _RAM.get(path, ("",))[0] != tag:
        return False
      tf.io.gfile.remove(path)
      _RAM.pop(path, None)
      return True


_STORES: Dict[str, Store] = {}
_KINDS = {"s3": S3Store, "gs": GcsStore, "ram": RamStore}


def for_path(path: str) -> Store:
  """The claim store for `path`'s scheme (one per process); Unsupported for
  a scheme without conditional writes."""
  scheme = path.split("://", 1)[0]
  if scheme not in _KINDS:
    raise Unsupported(f"{scheme}:// has no conditional writes; "
                      "object-store pushes need s3:// or gs://")
  if scheme not in _STORES:
    try:
      _STORES[scheme] = _KINDS[scheme]()
    except Exception as e:  # pylint: disable=broad-except
      raise ClaimStoreError(f"{path}: cannot reach the store "
                            f"({str(e).splitlines()[0]})") from e
  return _STORES[scheme]
