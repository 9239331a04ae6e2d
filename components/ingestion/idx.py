"""Reading and validating files in the IDX format MNIST is published in.

Every problem with an input file raises `DataError` with a one-line message
that names the file and the problem.
"""
from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from typing import Tuple

import numpy as np
import tensorflow as tf

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


class DataError(ValueError):
  """An input file is missing, unreadable or not what MNIST files look like."""

  def __init__(self, path: str, problem: str):
    super().__init__(f"{path}: {problem}")
    self.path = path
    self.problem = problem


def read_bytes(path: str) -> bytes:
  """Returns the uncompressed bytes of `path` (gzip if it ends with .gz)."""
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      raw = f.read()
  except tf.errors.NotFoundError:
    raise DataError(path, "file not found") from None
  except (tf.errors.PermissionDeniedError, PermissionError):
    raise DataError(path, "permission denied") from None
  except (tf.errors.OpError, OSError) as e:
    raise DataError(path, f"cannot read file ({_first_line(e)})") from None
  if not raw:
    raise DataError(path, "file is empty")
  if not path.endswith(".gz"):
    return raw
  if raw[:2] != b"\x1f\x8b":
    raise DataError(path, "not a gzip file (the name ends in .gz)")
  try:
    data = gzip.decompress(raw)
  except EOFError:
    raise DataError(path, "truncated gzip file (ends before the end of the "
                    "compressed stream)") from None
  except (OSError, zlib.error) as e:
    raise DataError(path, f"corrupt gzip file ({_first_line(e)})") from None
  if not data:
    raise DataError(path, "file is empty after decompression")
  return data


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
    data = gzip.compress(data, compresslevel=1)
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
