"""Writing splits as gzip TFRecords of tf.Example, in TFX's `Split-<name>` layout.

Examples have two features: `image` (784 floats in [0,1], row-major 28x28)
and `label` (one int64 in 0-9). Every example has the same byte layout, so
they are serialized at once with numpy from a template made by protobuf's
deterministic serialization: the same data gives byte-identical files on
every run (a protobuf map, such as tf.Example's features, is otherwise
serialized in an order that can change from process to process). Shards are
written in parallel threads.

`write_splits` streams: it reads uint8 pixels from raw files (`PixelFile`)
`CHUNK` examples at a time, scales them with a 256-entry table (the same
float32 bits as `uint8 / 255.0` in TensorFlow) and serializes them, so its
memory does not grow with the data; its records are byte for byte those of
`write_split` on the scaled arrays.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components.ingestion import datasets

IMAGE_KEY = "image"
PIXELS = datasets.IMAGE_PIXELS
LABEL_KEY = "label"
FEATURE_SPEC = {
    IMAGE_KEY: tf.io.FixedLenFeature([PIXELS], tf.float32),
    LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
}
_GZIP = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)
# Examples gathered, scaled and serialized at a time by `write_splits`
# (0.8 MB of pixels, 3.2 MB of records per writing thread).
CHUNK = 1024
# Writing threads: gzip and the record writer release the GIL.
WRITER_THREADS = 4
# Each uint8 value scaled to [0,1] as float32 ('<f4' bytes): the values
# tf.cast(uint8, tf.float32) / 255.0 gives (checked by the tests).
_SCALED_BYTES = (np.arange(256, dtype=np.float32) / np.float32(255.0)
                 ).astype("<f4").view(np.uint8).reshape(256, 4)


def split_dir(examples_uri: str, split: str) -> str:
  return os.path.join(examples_uri, f"Split-{split}")


@functools.lru_cache(maxsize=1)
def _template() -> Tuple[bytes, int]:
  """One serialized example and the offset of its 784 float32 pixels; the
  label is its last byte (features are sorted: `image` < `label`)."""
  marker = np.arange(1, 785, dtype=np.float32)
  example = tf.train.Example(features=tf.train.Features(feature={
      IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(
          value=marker)),
      LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[9])),
  })).SerializeToString(deterministic=True)
  offset = example.find(marker.astype("<f4").tobytes())
  assert offset > 0 and example[-1] == 9, "unexpected tf.Example layout"
  return example, offset


def serialize(images: np.ndarray, labels: np.ndarray) -> List[bytes]:
  """Serializes [N,784] float32 images and [N] labels (0-127) to tf.Example
  bytes, identical to protobuf's deterministic serialization."""
  labels = np.asarray(labels)
  if labels.size and (labels.min() < 0 or labels.max() > 127):
    raise ValueError("labels must be in 0-127")
  template, offset = _template()
  records = np.tile(np.frombuffer(template, np.uint8), (len(labels), 1))
  pixels = np.ascontiguousarray(images, "<f4").reshape(len(labels), PIXELS)
  records[:, offset:offset + PIXELS * 4] = pixels.view(np.uint8)
  records[:, -1] = labels.astype(np.uint8)
  return [row.tobytes() for row in records]


def serialize_pixels(pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """`serialize` of uint8 pixels [N,784] scaled to [0,1] (x / 255.0), without
  a float32 copy of the images: one record per row of the uint8 array
  returned (`row.tobytes()`)."""
  labels = np.asarray(labels)
  if labels.size and (labels.min() < 0 or labels.max() > 127):
    raise ValueError("labels must be in 0-127")
  template, offset = _template()
  records = np.tile(np.frombuffer(template, np.uint8), (len(labels), 1))
  records[:, offset:offset + PIXELS * 4] = _SCALED_BYTES[
      np.asarray(pixels, np.uint8).reshape(len(labels), PIXELS)].reshape(
          len(labels), PIXELS * 4)
  records[:, -1] = labels.astype(np.uint8)
  return records


@dataclasses.dataclass(frozen=True)
class PixelFile:
  """`count` images stored as a local raw uint8 file [count, 784], read a
  chunk at a time with one `pread` per image (in file order). Not `mmap`:
  the kernel maps up to 64 KB around each page fault, so gathering a chunk
  of scattered images would make most of the file resident."""
  path: str
  count: int

  def gather(self, indices: np.ndarray) -> np.ndarray:
    """The images at `indices`, in that order: uint8 [len(indices), 784]."""
    indices = np.asarray(indices, np.int64)
    out = np.empty((len(indices), PIXELS), np.uint8)
    if not len(indices):
      return out
    if indices.min() < 0 or indices.max() >= self.count:
      raise IndexError(f"{self.path}: index out of range 0-{self.count - 1}")
    order = np.argsort(indices, kind="stable")
    fd = os.open(self.path, os.O_RDONLY)
    try:
      rows = b"".join([os.pread(fd, PIXELS, offset) for offset in
                       (indices[order] * PIXELS).tolist()])
    finally:
      os.close(fd)
    out[order] = np.frombuffer(rows, np.uint8).reshape(-1, PIXELS)
    return out


@dataclasses.dataclass(frozen=True)
class SplitSource:
  """What `write_splits` writes into one split directory: the examples
  `pixels[indices[i]]`, `labels[indices[i]]`, in that order."""
  directory: str
  pixels: PixelFile
  labels: np.ndarray
  indices: np.ndarray
  num_shards: int


def _shard_paths(directory: str, count: int,
                 num_shards: int) -> Tuple[List[str], np.ndarray]:
  num_shards = max(1, min(num_shards, count))
  bounds = np.linspace(0, count, num_shards + 1).astype(int)
  paths = [os.path.join(directory,
                        f"data_tfrecord-{i:05d}-of-{num_shards:05d}.gz")
           for i in range(num_shards)]
  return paths, bounds


def write_splits(splits: Sequence[SplitSource],
                 chunk: Optional[int] = None) -> List[List[str]]:
  """Writes each split as `write_split` would, streaming `chunk` examples at
  a time per shard; all shards of all splits share one thread pool. Returns
  each split's shard paths."""
  chunk = chunk or CHUNK
  jobs, all_paths = [], []
  for source in splits:
    tf.io.gfile.makedirs(source.directory)
    paths, bounds = _shard_paths(source.directory, len(source.indices),
                                 source.num_shards)
    all_paths.append(paths)
    jobs += [(source, path, bounds[i], bounds[i + 1])
             for i, path in enumerate(paths)]
  # Largest first, so the pool ends together.
  jobs.sort(key=lambda job: job[2] - job[3])

  def write_shard(job) -> None:
    source, path, lo, hi = job
    with tf.io.TFRecordWriter(path, _GZIP) as writer:
      for start in range(lo, hi, chunk):
        indices = source.indices[start:min(hi, start + chunk)]
        for record in serialize_pixels(source.pixels.gather(indices),
                                       source.labels[indices]):
          writer.write(record.tobytes())

  with concurrent.futures.ThreadPoolExecutor(
      min(len(jobs), WRITER_THREADS)) as pool:
    list(pool.map(write_shard, jobs))
  return all_paths


def write_split(directory: str, images: np.ndarray, labels: np.ndarray,
                num_shards: int) -> List[str]:
  """Writes one split as `num_shards` gzip TFRecord files; returns the paths."""
  tf.io.gfile.makedirs(directory)
  paths, bounds = _shard_paths(directory, len(labels), num_shards)
  num_shards = len(paths)

  def write_shard(i: int) -> None:
    lo, hi = bounds[i], bounds[i + 1]
    records = serialize(images[lo:hi], labels[lo:hi])
    with tf.io.TFRecordWriter(paths[i], _GZIP) as writer:
      for record in records:
        writer.write(record)

  with concurrent.futures.ThreadPoolExecutor(min(num_shards, 4)) as pool:
    list(pool.map(write_shard, range(num_shards)))
  return paths


def split_records(directory: str, batch_size: int) -> tf.data.Dataset:
  """Batches of the serialized tf.Examples of one written split, in file
  order."""
  files = sorted(tf.io.gfile.glob(os.path.join(directory, "*.gz")))
  return tf.data.TFRecordDataset(files, compression_type="GZIP").batch(
      batch_size)


def read_split(directory: str) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Yields (images [B,784], labels [B]) batches of one written split."""
  dataset = split_records(directory, 4096)
  for batch in dataset.map(lambda b: tf.io.parse_example(b, FEATURE_SPEC)):
    yield batch[IMAGE_KEY].numpy(), batch[LABEL_KEY].numpy()[:, 0]
