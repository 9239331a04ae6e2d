"""tf.data input pipeline over the ingested gzip TFRecords."""
from __future__ import annotations

from typing import List, Union

import tensorflow as tf

from components.ingestion import examples_io

_READ_BATCH = 1024


def make_dataset(file_patterns: Union[str, List[str]], batch_size: int, *,
                 shuffle: bool, seed: int = 42) -> tf.data.Dataset:
  """(image [B,784] float32, label [B] int64) batches of one split.

  Records are parsed in large vectorized batches and cached in memory after
  the first epoch; training data is reshuffled every epoch from a seed.
  """
  if isinstance(file_patterns, str):
    file_patterns = [file_patterns]
  files = sorted(f for p in file_patterns for f in tf.io.gfile.glob(p))
  if not files:
    raise FileNotFoundError(f"no TFRecord files match {file_patterns}")
  dataset = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                    num_parallel_reads=tf.data.AUTOTUNE)
  dataset = (dataset.batch(_READ_BATCH)
             .map(_parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
             .unbatch()
             .cache())
  if shuffle:
    dataset = dataset.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
  return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _parse_batch(serialized):
  features = tf.io.parse_example(serialized, examples_io.FEATURE_SPEC)
  return (features[examples_io.IMAGE_KEY],
          tf.squeeze(features[examples_io.LABEL_KEY], axis=1))
