"""The leak-free split of the official training set into `train` and `eval`.

Membership is a function of each image and the split definition only: an
image is in `train` when a keyed hash of its pixels (BLAKE2b, keyed with
`SPLIT_KEY`) falls below `train_fraction`, else in `eval`. So `SEED` and
`MAX_EXAMPLES` never move an image across (a quick run's eval images are
eval images of the full run too), the same image is never in both splits,
and the eval set a baseline is scored on never holds its own training
images. Changing `train_fraction` or `SPLIT_KEY` changes the definition,
which starts a new lineage (`lineage_part`, in `PipelineConfig.model_name`:
a model is never compared with one evaluated on another split). The shares
are 7:3
up to sampling noise (MNIST: 41,932 : 18,068; Fashion-MNIST: 41,998 :
18,002). `seed` only orders the examples (and picks a quick run's subset),
with a stateless Philox permutation that is the same on every machine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Dict, Optional

import numpy as np

SPLIT_NAMES = ("train", "eval", "test")
# Part of the split definition: a new key is a new split (and lineage).
SPLIT_KEY = b"mnist-tfx split v1"
# The first definition, whose lineage (the default) names no split.
ORIGINAL_SPLIT_KEY = b"mnist-tfx split v1"
DEFAULT_TRAIN_FRACTION = 0.7
_BATCH = 8192


def lineage_part(train_fraction: float) -> Optional[str]:
  """The split definition's part of a lineage name: None for the original
  definition (`ORIGINAL_SPLIT_KEY`, 7:3), `split80` for another train share,
  `split80-k1a2b3c` (a digest of the key) for another `SPLIT_KEY`."""
  if train_fraction == DEFAULT_TRAIN_FRACTION and \
      SPLIT_KEY == ORIGINAL_SPLIT_KEY:
    return None
  part = f"split{train_fraction * 100:g}".replace(".", "p")
  if SPLIT_KEY != ORIGINAL_SPLIT_KEY:
    part += "-k" + hashlib.sha256(SPLIT_KEY).hexdigest()[:6]
  return part


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
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.device("/CPU:0"):
    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=[seed, 0], alg="philox")


def hash_positions(images: np.ndarray) -> np.ndarray:
  """Each image's (uint8, [N, 28, 28] or [N, 784]) keyed hash as a uint64:
  its position in [0, 2**64), which decides its split."""
  flat = np.ascontiguousarray(images.reshape(len(images), -1))
  return np.fromiter(
      (int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8,
                                      key=SPLIT_KEY).digest(), "big")
       for row in flat), dtype=np.uint64, count=len(flat))


def in_train(images: np.ndarray, train_fraction: float) -> np.ndarray:
  """Whether each image (uint8, [N, 28, 28] or [N, 784]) belongs to `train`:
  its keyed hash, read as a number in [0, 1), is below `train_fraction`."""
  return _in_train(hash_positions(images), train_fraction)


def _in_train(positions: np.ndarray, train_fraction: float) -> np.ndarray:
  return positions < np.uint64(int(train_fraction * 2**64))


def split_indices(train_positions: np.ndarray, num_test: int, *, seed: int,
                  train_fraction: float = 0.7,
                  max_examples: Optional[int] = None
                  ) -> Dict[str, np.ndarray]:
  """Which source images each split holds, in order: {'train', 'eval'}
  index the official training set, 'test' the test set.

  `train_positions` are `hash_positions` of every official training image;
  nothing else of the images is needed, so a caller can stream them.
  """
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
  order = shuffled_indices(len(train_positions), seed).numpy()
  test_order = np.arange(num_test, dtype=np.int64)
  if max_examples:
    order = order[:max_examples]
    test_order = test_order[:max(1, math.ceil(max_examples / 6))]
  train_mask = _in_train(train_positions[order], train_fraction)
  return {"train": order[train_mask], "eval": order[~train_mask],
          "test": test_order}


def split_dataset(train_images: np.ndarray, train_labels: np.ndarray,
                  test_images: np.ndarray, test_labels: np.ndarray, *,
                  seed: int, train_fraction: float = 0.7,
                  max_examples: Optional[int] = None) -> Dict[str, Split]:
  """Splits, orders and scales to [0,1]; returns {'train','eval','test'}.

  The whole-array form (tests, small data); `ingest` streams the same split
  (`split_indices`) without holding the images as float32.

  `max_examples` (for quick runs) keeps that many official training images,
  picked by the `seed`'s permutation, and a sixth of that of the test set
  (the official 60,000:10,000 ratio); each keeps its own split.
  """
  indices = split_indices(hash_positions(train_images), len(test_labels),
                          seed=seed, train_fraction=train_fraction,
                          max_examples=max_examples)
  return {
      "train": _materialize(indices["train"], train_images, train_labels),
      "eval": _materialize(indices["eval"], train_images, train_labels),
      "test": _materialize(indices["test"], test_images, test_labels),
  }


def _materialize(indices: np.ndarray, images: np.ndarray,
                 labels: np.ndarray) -> Split:
  """Gathers and scales the examples at `indices`, in order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = tf.constant(images.reshape(len(images), -1))
  labels = tf.constant(labels)

  def gather_and_scale(idx):
    pixels = tf.cast(tf.gather(images, idx), tf.float32) / 255.0
    return pixels, tf.cast(tf.gather(labels, idx), tf.int64)

  batches = list(tf.data.Dataset.from_tensor_slices(indices).batch(
      _BATCH).map(gather_and_scale, num_parallel_calls=tf.data.AUTOTUNE)
                 .as_numpy_iterator())
  if not batches:
    return Split(np.zeros([0, images.shape[1]], np.float32),
                 np.zeros([0], np.int64))
  return Split(np.concatenate([b[0] for b in batches]),
               np.concatenate([b[1] for b in batches]))
