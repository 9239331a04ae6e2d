"""The seeded, leak-free 7:3 split of the official training set, on tf.data.

The split is a pure function of (data, seed, train_fraction, max_examples):
a stateless Philox permutation of the official training indices (it does not
depend on TensorFlow's global seed or on the hardware), cut once into `train`
and `eval`. Unlike `Dataset.shuffle(...).take/skip`, which reshuffles every
epoch, nothing ever moves between the two.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

SPLIT_NAMES = ("train", "eval", "test")
_BATCH = 8192


@dataclasses.dataclass(frozen=True)
class Split:
  """One split: float32 pixels in [0,1] of shape [N, 784] and int64 labels."""
  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)

  def class_histogram(self, num_classes: int = 10) -> list:
    return np.bincount(self.labels, minlength=num_classes).tolist()


def shuffled_indices(n: int, seed: int) -> tf.Tensor:
  """A permutation of range(n) fixed by `seed` on every machine."""
  with tf.device("/CPU:0"):
    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=[seed, 0], alg="philox")


def split_dataset(train_images: np.ndarray, train_labels: np.ndarray,
                  test_images: np.ndarray, test_labels: np.ndarray, *,
                  seed: int, train_fraction: float = 0.7,
                  max_examples: Optional[int] = None) -> Dict[str, Split]:
  """Shuffles, scales to [0,1] and splits; returns {'train','eval','test'}.

  `max_examples` (for quick runs) keeps that many official training images
  after the shuffle, and a sixth of that of the test set (the official
  60,000:10,000 ratio).
  """
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
  order = shuffled_indices(len(train_labels), seed)
  test_order = tf.range(len(test_labels), dtype=tf.int64)
  if max_examples:
    order = order[:max_examples]
    test_order = test_order[:max(1, math.ceil(max_examples / 6))]
  num_train = int(round(len(order) * train_fraction))
  ordered = tf.data.Dataset.from_tensor_slices(order)
  return {
      "train": _materialize(ordered.take(num_train), train_images, train_labels),
      "eval": _materialize(ordered.skip(num_train), train_images, train_labels),
      "test": _materialize(tf.data.Dataset.from_tensor_slices(test_order),
                           test_images, test_labels),
  }


def _materialize(indices: tf.data.Dataset, images: np.ndarray,
                 labels: np.ndarray) -> Split:
  """Gathers and scales the examples at `indices`, in order."""
  images = tf.constant(images.reshape(len(images), -1))
  labels = tf.constant(labels)

  def gather_and_scale(idx):
    pixels = tf.cast(tf.gather(images, idx), tf.float32) / 255.0
    return pixels, tf.cast(tf.gather(labels, idx), tf.int64)

  batches = list(indices.batch(_BATCH).map(
      gather_and_scale, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator())
  if not batches:
    return Split(np.zeros([0, images.shape[1]], np.float32),
                 np.zeros([0], np.int64))
  return Split(np.concatenate([b[0] for b in batches]),
               np.concatenate([b[1] for b in batches]))
