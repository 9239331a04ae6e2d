"""Reading and validating files in the IDX format MNIST is published in.

Every problem with an input file raises `DataError` with a one-line message
that names the file and the problem.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import struct
import zlib
from typing import BinaryIO, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.ingestion import datasets

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
IMAGE_SHAPE = datasets.IMAGE_SHAPE
NUM_CLASSES = datasets.NUM_CLASSES


class DataError(ValueError):
  """An input file is missing, unreadable or not what MNIST files look like."""

  def __init__(self, path: str, problem: str):
    super().__init__(f"{path}: {problem}")
    self.path = path
    self.problem = problem


@contextlib.contextmanager
def file_errors(path: str) -> Iterator[None]:
  """Turns a failure to open or read `path` into a one-line DataError."""
  try:
    yield
  except tf.errors.NotFoundError:
    raise DataError(path, "file not found") from None
  except (tf.errors.PermissionDeniedError, PermissionError):
    raise DataError(path, "permission denied") from None
  except (tf.errors.OpError, OSError) as e:
    raise DataError(path, f"cannot read file ({_first_line(e)})") from None


def read_bytes(path: str) -> bytes:
  """Returns the uncompressed bytes of `path` (gzip if it ends with .gz)."""
  return b"".join(stream_bytes(path))


# Bytes read from a file at a time when streaming (uncompressed).
STREAM_CHUNK_BYTES = 1 << 22


def stream_bytes(path: str, chunk_bytes: Optional[int] = None
                 ) -> Iterator[bytes]:
  """Yields the uncompressed bytes of `path` (gzip if it ends with .gz) in
  chunks of about `chunk_bytes`, never the whole file at once.

  Raises the same one-line `DataError`s as `read_bytes`.
  """
  chunk_bytes = chunk_bytes or STREAM_CHUNK_BYTES
  with file_errors(path):
    handle = tf.io.gfile.GFile(path, "rb")
    first = handle.read(2)
  with handle:
    if not first:
      raise DataError(path, "file is empty")
    if not path.endswith(".gz"):
      yield first
      yield from _read_chunks(handle, path, chunk_bytes)
      return
    if first != b"\x1f\x8b":
      raise DataError(path, "not a gzip file (the name ends in .gz)")
    handle.seek(0)
    total = 0
    with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
      while True:
        try:
          chunk = unzipped.read(chunk_bytes)
        except EOFError:
          raise DataError(path, "truncated gzip file (ends before the end of "
                          "the compressed stream)") from None
        except (OSError, zlib.error) as e:
          raise DataError(path,
                          f"corrupt gzip file ({_first_line(e)})") from None
        if not chunk:
          break
        total += len(chunk)
        yield chunk
    if not total:
      raise DataError(path, "file is empty after decompression")


def _read_chunks(handle: BinaryIO, path: str,
                 chunk_bytes: int) -> Iterator[bytes]:
  while True:
    try:
      chunk = handle.read(chunk_bytes)
    except (tf.errors.OpError, OSError) as e:
      raise DataError(path, f"cannot read file ({_first_line(e)})") from None
    if not chunk:
      return
    yield chunk


@dataclasses.dataclass
class StreamedImages:
  """What `stream_images` found: the count and the sha256 of the whole
  uncompressed file."""
  count: int = 0
  sha256: str = ""


def stream_images(path: str, result: StreamedImages,
                  chunk_bytes: Optional[int] = None) -> Iterator[np.ndarray]:
  """Yields the images of an IDX3 file as uint8 arrays [B, 784], a chunk at
  a time, checking the header and the length as `parse_images` does (the
  length at the end: a consumer must not publish anything before the
  generator is exhausted); fills `result` (count, sha256) then."""
  digest = hashlib.sha256()
  size = 28 * 28
  pending = b""
  header = None
  count = expected = 0
  length = 0
  for chunk in stream_bytes(path, chunk_bytes):
    digest.update(chunk)
    length += len(chunk)
    if header is None:
      pending += chunk
      if len(pending) < 16:
        continue
      _, count = _header(pending, path, 16, IMAGES_MAGIC, "images")
      rows, cols = struct.unpack(">II", pending[8:16])
      if (rows, cols) != IMAGE_SHAPE:
        raise DataError(path, f"images are {rows}x{cols}, expected 28x28")
      expected = 16 + count * size
      header, chunk, pending = pending[:16], pending[16:], b""
    data = pending + chunk if pending else chunk
    whole = len(data) // size * size
    pending = data[whole:]
    if whole:
      yield np.frombuffer(data, np.uint8, count=whole).reshape(-1, size)
  if header is None:
    _header(pending, path, 16, IMAGES_MAGIC, "images")  # too short: raises
  if length != expected:
    raise DataError(path, f"header promises {count} images ({expected} bytes) "
                    f"but the file has {length} bytes")
  result.count = count
  result.sha256 = digest.hexdigest()


def read_labels(path: str) -> Tuple[np.ndarray, str]:
  """Reads and checks an IDX1 labels file (small: one byte per image);
  returns the labels and the sha256 of the uncompressed file."""
  data = read_bytes(path)
  return parse_labels(data, path), sha256(data)


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def parse_images(data: bytes, path: str) -> np.ndarray:
  """Parses IDX3 image bytes into a uint8 array of shape [N, 28, 28]."""
  magic, count = _header(data, path, 16, IMAGES_MAGIC, "images")
  rows, cols = struct.unpack(">II", data[8:16])
  if (rows, cols) != IMAGE_SHAPE:
    raise DataError(path, f"images are {rows}x{cols}, expected 28x28")
  expected = 16 + count * rows * cols
  if len(data) != expected:
    raise DataError(path, f"header promises {count} images ({expected} bytes) "
                    f"but the file has {len(data)} bytes")
  del magic
  return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def parse_labels(data: bytes, path: str) -> np.ndarray:
  """Parses IDX1 label bytes into a uint8 array of shape [N], values 0-9."""
  _, count = _header(data, path, 8, LABELS_MAGIC, "labels")
  if len(data) != 8 + count:
    raise DataError(path, f"header promises {count} labels ({8 + count} bytes) "
                    f"but the file has {len(data)} bytes")
  labels = np.frombuffer(data, np.uint8, offset=8)
  if labels.size and labels.max() >= NUM_CLASSES:
    bad = int(np.argmax(labels >= NUM_CLASSES))
    raise DataError(path, f"label {labels[bad]} at index {bad} is outside "
                    f"0-{NUM_CLASSES - 1}")
  return labels


def read_pair(images_path: str, labels_path: str
              ) -> Tuple[np.ndarray, np.ndarray, dict]:
  """Reads an images file and its labels file; returns arrays and checksums."""
  image_bytes = read_bytes(images_path)
  label_bytes = read_bytes(labels_path)
  images = parse_images(image_bytes, images_path)
  labels = parse_labels(label_bytes, labels_path)
  if len(images) != len(labels):
    raise DataError(labels_path, f"{len(labels)} labels but {images_path} has "
                    f"{len(images)} images")
  if not len(images):
    raise DataError(images_path, "contains no images")
  checksums = {images_path: sha256(image_bytes),
               labels_path: sha256(label_bytes)}
  return images, labels, checksums


def encode_idx(array: np.ndarray) -> bytes:
  """The uncompressed IDX bytes of a uint8 array ([N,28,28] images or [N]
  labels)."""
  array = np.asarray(array, np.uint8)
  magic = IMAGES_MAGIC if array.ndim == 3 else LABELS_MAGIC
  header = struct.pack(">I", magic) + b"".join(
      struct.pack(">I", d) for d in array.shape)
  return header + array.tobytes()


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as an IDX file (gzip if `path` ends with .gz).

  The inverse of `parse_images`/`parse_labels`; used to make small datasets.
  """
  data = encode_idx(array)
  if path.endswith(".gz"):
    data = gzip.compress(data, compresslevel=1, mtime=0)  # reproducible
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def _header(data: bytes, path: str, size: int, want_magic: int, kind: str):
  if len(data) >= 4:
    (magic,) = struct.unpack(">I", data[:4])
    if magic != want_magic:
      raise DataError(path, f"wrong IDX magic number 0x{magic:08x}, expected "
                      f"0x{want_magic:08x} ({kind} file)")
  if len(data) < size:
    raise DataError(path, f"too short for an IDX {kind} header "
                    f"({len(data)} bytes)")
  return struct.unpack(">II", data[:8])


def _first_line(error: Exception) -> str:
  text = str(error).strip() or type(error).__name__
  return text.splitlines()[0]
