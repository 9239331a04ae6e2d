"""Writing splits as gzip TFRecords of tf.Example, in TFX's `Split-<name>` layout.

Examples have two features: `image` (784 floats in [0,1], row-major 28x28)
and `label` (one int64 in 0-9). Serialization is done in C++ by tfx-bsl's
Arrow encoder; shards are written in parallel threads.
"""
from __future__ import annotations

import concurrent.futures
import os
from typing import Iterator, List, Tuple

import numpy as np
import pyarrow as pa
import tensorflow as tf
from tfx_bsl.coders import example_coder

IMAGE_KEY = "image"
LABEL_KEY = "label"
FEATURE_SPEC = {
    IMAGE_KEY: tf.io.FixedLenFeature([784], tf.float32),
    LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
}
_GZIP = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)


def split_dir(examples_uri: str, split: str) -> str:
  return os.path.join(examples_uri, f"Split-{split}")


def serialize(images: np.ndarray, labels: np.ndarray) -> List[bytes]:
  """Serializes [N,784] float32 images and [N] labels to tf.Example bytes."""
  n = len(labels)
  flat = pa.array(np.ascontiguousarray(images, np.float32).reshape(-1))
  image_col = pa.ListArray.from_arrays(
      pa.array(np.arange(0, n * 784 + 1, 784, dtype=np.int32)), flat)
  label_col = pa.ListArray.from_arrays(
      pa.array(np.arange(n + 1, dtype=np.int32)),
      pa.array(np.asarray(labels, np.int64)))
  batch = pa.RecordBatch.from_arrays([image_col, label_col],
                                     [IMAGE_KEY, LABEL_KEY])
  return example_coder.RecordBatchToExamplesEncoder().encode(batch)


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
