"""Object storage for every file the pipeline reads or writes.

TensorFlow reads and writes `gs://` by itself; `s3://` (AWS S3, and MinIO,
the store of open-source Kubeflow Pipelines) needs the `tensorflow-io`
filesystem plugins, registered by importing that package. Beam (TFDV, TFMA)
reaches `s3://` through boto3 (`apache-beam[aws]`). Both take credentials
from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION`. For MinIO
or another S3-compatible server set `AWS_ENDPOINT_URL` (e.g.
`http://minio-service.kubeflow:9000`); `enable_object_storage` passes it on
to tensorflow-io, which calls it `S3_ENDPOINT` (with `S3_USE_HTTPS=0` and
`S3_VERIFY_SSL=0` for plain HTTP).
"""
from __future__ import annotations

import os
from typing import Mapping, MutableMapping, Optional

LOCAL_SCHEME = "file://"


def is_remote(path: str) -> bool:
  """Whether `path` is on an object store (gs://, s3://, ...): no rename,
  no lock, no fsync. `file://` paths are local."""
  return "://" in path and not path.startswith(LOCAL_SCHEME)


def local_path(path: str) -> str:
  """`path` without a `file://` prefix (other paths as given)."""
  return path[len(LOCAL_SCHEME):] if path.startswith(LOCAL_SCHEME) else path


def write_atomically(path: str, text: str) -> None:
  """Writes the local file `path` whole or not at all (a temporary file,
  flushed to disk, renamed over it)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def join(path: str, *parts: str) -> str:
  """`os.path.join` that keeps a URI's slashes (`s3://b/x` + `y`)."""
  if is_remote(path):
    return "/".join([path.rstrip("/"), *parts])
  return os.path.join(path, *parts)


def s3_environment(env: MutableMapping[str, str]) -> None:
  """Mirrors the AWS SDK's `AWS_ENDPOINT_URL` into tensorflow-io's settings
  (unless those are set already)."""
  endpoint = env.get("AWS_ENDPOINT_URL", "")
  if endpoint and "S3_ENDPOINT" not in env:
    env["S3_ENDPOINT"] = endpoint
    if endpoint.startswith("http://"):
      env.setdefault("S3_USE_HTTPS", "0")
      env.setdefault("S3_VERIFY_SSL", "0")


def s3_endpoint(env: Mapping[str, str]) -> Optional[str]:
  """The S3 endpoint from `AWS_ENDPOINT_URL`, or tensorflow-io's
  `S3_ENDPOINT` (with `S3_USE_HTTPS`); None for AWS itself."""
  if env.get("AWS_ENDPOINT_URL"):
    return env["AWS_ENDPOINT_URL"]
  endpoint = env.get("S3_ENDPOINT", "")
  if not endpoint or "://" in endpoint:
    return endpoint or None
  scheme = "http" if env.get("S3_USE_HTTPS", "1") == "0" else "https"
  return f"{scheme}://{endpoint}"


def enable_object_storage() -> None:
  """Registers `s3://` with `tf.io.gfile` (idempotent, 0.1 s)."""
  s3_environment(os.environ)
  import tensorflow_io  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import


def exit_process(code: int) -> None:
  """Flushes output and exits without interpreter teardown.

  Once tensorflow-io's S3 client (or TF and Beam threads) has run, Python's
  teardown can abort with "pure virtual method called" (exit 134) after all
  the work is done; command-line entry points end here instead.
  """
  import logging  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  logging.shutdown()
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(code)  # pylint: disable=protected-access
