"""The Trainer's input: what ingestion wrote, in its order, every epoch."""
import numpy as np

from components.ingestion import examples_io
from components.trainer import data


def _written(tmp_path, n=10_000, shards=4):
  rng = np.random.default_rng(0)
  images = rng.random((n, 784), dtype=np.float32)
  labels = rng.integers(0, 10, n)
  paths = examples_io.write_split(str(tmp_path / "Split-train"), images,
                                  labels, shards)
  return images, labels, paths


def test_load_split_reads_every_shard_in_the_order_written(tmp_path):
  # Shards are read in parallel; the course-parity test relies on the
  # records arriving in the order ingestion wrote them.
  images, labels, paths = _written(tmp_path)
  assert len(paths) == 4
  x, y = data.load_split(str(tmp_path / "Split-train" / "*"))
  np.testing.assert_array_equal(x.numpy(), images)
  np.testing.assert_array_equal(y.numpy(), labels)


def test_each_epoch_sees_every_example_once_in_a_new_order(tmp_path):
  images, labels, _ = _written(tmp_path, n=1000, shards=2)
  dataset = data.make_dataset(str(tmp_path / "Split-train" / "*"), 64,
                              shuffle=True, seed=7)
  epochs = []
  for _ in range(2):
    batches = list(dataset)
    assert all(len(b[0]) == 64 for b in batches[:-1])
    epoch_labels = np.concatenate([b[1].numpy() for b in batches])
    epoch_images = np.concatenate([b[0].numpy() for b in batches])
    order = np.lexsort(epoch_images.T[:3])
    np.testing.assert_array_equal(
        epoch_images[order], images[np.lexsort(images.T[:3])])
    epochs.append(epoch_labels)
  assert sorted(epochs[0]) == sorted(labels)
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled
  unshuffled = data.make_dataset(str(tmp_path / "Split-train" / "*"), 64,
                                 shuffle=False)
  np.testing.assert_array_equal(
      np.concatenate([b[1].numpy() for b in unshuffled]), labels)
