"""Writing splits as gzip TFRecords of tf.Example, in TFX's `Split-<name>` layout.

Examples have two features: `image` (784 floats in [0,1], row-major 28x28)
and `label` (one int64 in 0-9). Every example has the same byte layout, so
they are serialized at once with numpy from a template made by protobuf's
deterministic serialization: the same data gives byte-identical files on
every run (a protobuf map, such as tf.Example's features, is otherwise
serialized in an order that can change from process to process). Shards are
written in parallel threads.
"""
from __future__ import annotations

import concurrent.futures
import os
from typing import Iterator, List, Tuple

import functools

import numpy as np
import tensorflow as tf

IMAGE_KEY = "image"
LABEL_KEY = "label"
FEATURE_SPEC = {
    IMAGE_KEY: tf.io.FixedLenFeature([784], tf.float32),
    LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
}
_GZIP = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)


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
  pixels = np.ascontiguousarray(images, "<f4").reshape(len(labels), 784)
  records[:, offset:offset + 784 * 4] = pixels.view(np.uint8)
  records[:, -1] = labels.astype(np.uint8)
  return [row.tobytes() for row in records]


def write_split(directory: str, images: np.ndarray, labels: np.ndarray,
                num_shards: int) -> List[str]:
  """Writes one split as `num_shards` gzip TFRecord files; returns the paths."""
  tf.io.gfile.makedirs(directory)
  num_shards = max(1, min(num_shards, len(labels)))
  bounds = np.linspace(0, len(labels), num_shards + 1).astype(int)
  paths = [os.path.join(directory,
                        f"data_tfrecord-{i:05d}-of-{num_shards:05d}.gz")
           for i in range(num_shards)]

  def write_shard(i: int) -> None:
    lo, hi = bounds[i], bounds[i + 1]
    records = serialize(images[lo:hi], labels[lo:hi])
    with tf.io.TFRecordWriter(paths[i], _GZIP) as writer:
      for record in records:
        writer.write(record)

  with concurrent.futures.ThreadPoolExecutor(min(num_shards, 4)) as pool:
    list(pool.map(write_shard, range(num_shards)))
  return paths


def read_split(directory: str) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Yields (images [B,784], labels [B]) batches of one written split."""
  files = sorted(tf.io.gfile.glob(os.path.join(directory, "*.gz")))
  dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
  for batch in dataset.map(lambda b: tf.io.parse_example(b, FEATURE_SPEC)):
    yield batch[IMAGE_KEY].numpy(), batch[LABEL_KEY].numpy()[:, 0]
