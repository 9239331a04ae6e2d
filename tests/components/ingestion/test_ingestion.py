"""Ingestion logic without TFX: reading, the seeded split, the written files."""
import gzip
import hashlib
import os
import stat

import numpy as np
import pytest
import tensorflow as tf

from components.ingestion import examples_io
from components.ingestion import idx
from components.ingestion import ingest
from components.ingestion import sources
from components.ingestion import split
from tests.conftest import write_fake_dataset


def _split_real(data_dir, seed=42, dataset="mnist"):
  raw = sources.load_raw_dataset(dataset, data_dir=data_dir)
  return raw, split.split_dataset(
      raw.train_images, raw.train_labels, raw.test_images, raw.test_labels,
      seed=seed, train_fraction=0.7)


@pytest.fixture(scope="module")
def mnist_splits(mnist_dir):
  return _split_real(mnist_dir)


def test_official_fashion_mnist_splits_7_to_3(fashion_dir):
  _, splits = _split_real(fashion_dir, dataset="fashion_mnist")
  assert {k: len(v) for k, v in splits.items()} == {
      "train": 41998, "eval": 18002, "test": 10000}


def _hashes(images):
  return {hashlib.sha1(row.tobytes()).hexdigest() for row in images}


def test_official_mnist_splits_7_to_3_and_the_test_set(mnist_splits):
  _, splits = mnist_splits
  assert {k: len(v) for k, v in splits.items()} == {
      "train": 41932, "eval": 18068, "test": 10000}
  for data in splits.values():
    assert data.images.dtype == np.float32
    assert data.images.shape[1] == 784
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.images.max() == 1.0  # scaled, not just cast


def test_split_is_a_partition_of_the_official_training_set(mnist_splits):
  raw, splits = mnist_splits
  train, evaluation = _hashes(splits["train"].images), _hashes(
      splits["eval"].images)
  assert not train & evaluation
  official = _hashes(raw.train_images.reshape(-1, 784).astype(np.float32)
                     / 255.0)
  assert train | evaluation == official
  # The official test set stays the test set, in its official order.
  np.testing.assert_array_equal(splits["test"].labels, raw.test_labels)


def test_a_seed_change_keeps_every_eval_image_in_eval(mnist_dir, mnist_splits):
  """Membership is a function of the image: another SEED reorders the
  examples but moves none between train and eval."""
  _, first = mnist_splits
  _, again = _split_real(mnist_dir, seed=42)
  _, other = _split_real(mnist_dir, seed=7)
  np.testing.assert_array_equal(first["train"].labels, again["train"].labels)
  np.testing.assert_array_equal(first["eval"].images[:50],
                                again["eval"].images[:50])
  assert not np.array_equal(first["train"].labels, other["train"].labels)
  assert _hashes(other["eval"].images) == _hashes(first["eval"].images)
  assert _hashes(other["train"].images) == _hashes(first["train"].images)


def test_a_quick_run_keeps_each_image_in_its_split(mnist_dir, mnist_splits):
  """MAX_EXAMPLES takes a subset; each image keeps the split it has in the
  full run, so a quick run never evaluates on a full run's training data."""
  raw, full = mnist_splits
  for seed in (42, 7):
    quick = split.split_dataset(
        raw.train_images, raw.train_labels, raw.test_images, raw.test_labels,
        seed=seed, train_fraction=0.7, max_examples=6000)
    assert len(quick["train"]) + len(quick["eval"]) == 6000
    assert 0.66 < len(quick["train"]) / 6000 < 0.74
    assert _hashes(quick["eval"].images) <= _hashes(full["eval"].images)
    assert _hashes(quick["train"].images) <= _hashes(full["train"].images)


def test_class_balance_follows_the_official_distribution(mnist_splits):
  _, splits = mnist_splits
  official = np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                       5949])
  train = np.array(splits["train"].class_histogram())
  evaluation = np.array(splits["eval"].class_histogram())
  np.testing.assert_array_equal(train + evaluation, official)
  # A random 70 % of each class, give or take sampling noise.
  assert np.all(np.abs(train / official - 0.7) < 0.03)


def test_max_examples_keeps_a_seeded_subset(fake_data_dir):
  raw = sources.load_raw_dataset("mnist", data_dir=fake_data_dir)
  splits = split.split_dataset(raw.train_images, raw.train_labels,
                               raw.test_images, raw.test_labels, seed=1,
                               train_fraction=0.7, max_examples=30)
  assert len(splits["train"]) + len(splits["eval"]) == 30
  assert len(splits["test"]) == 5


def test_fashion_mnist_loads_with_class_names(fashion_dir):
  from components.ingestion import datasets  # pylint: disable=g-import-not-at-top
  raw = sources.load_raw_dataset("fashion_mnist", data_dir=fashion_dir)
  assert raw.train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
  assert np.bincount(raw.train_labels).tolist() == [6000] * 10
  info = datasets.get_dataset_info("fashion_mnist")
  assert info.class_names[9] == "Ankle boot"
  for stem, digest in raw.checksums.items():
    assert info.sha256[stem] == digest


def test_ingest_writes_split_dirs_readable_as_tf_examples(tmp_path,
                                                          fake_data_dir):
  out = str(tmp_path / "examples")
  result = ingest.ingest(out, dataset="mnist", seed=3, train_fraction=0.7,
                         data_dir=fake_data_dir)
  assert result.counts["train"] + result.counts["eval"] == 60
  assert result.counts["test"] == 20
  assert sorted(os.listdir(out)) == ["Split-eval", "Split-test", "Split-train"]
  for name, count in result.counts.items():
    files = os.listdir(examples_io.split_dir(out, name))
    assert all(f.endswith(".gz") for f in files)
    batches = list(examples_io.read_split(examples_io.split_dir(out, name)))
    labels = np.concatenate([b[1] for b in batches])
    assert len(labels) == count
    assert np.bincount(labels, minlength=10).tolist() == \
        result.class_histograms[name]


def test_raw_and_gzipped_idx_files_read_the_same(tmp_path):
  gz = sources.load_raw_dataset("mnist", data_dir=write_fake_dataset(
      tmp_path / "gz", gz=True))
  raw = sources.load_raw_dataset("mnist", data_dir=write_fake_dataset(
      tmp_path / "raw", gz=False))
  np.testing.assert_array_equal(gz.train_images, raw.train_images)
  assert gz.checksums == raw.checksums


def test_offline_without_local_data_names_the_variable(monkeypatch):
  monkeypatch.setattr(sources, "network_reachable", lambda url: False)
  with pytest.raises(idx.DataError, match="DATA_DIR"):
    sources.load_raw_dataset("mnist", data_dir=None, cache_dir="/tmp/x")


# --- Bad input: one-line error naming the file and the problem. ----------

def _corrupt(directory, stem, data: bytes, gz=True):
  path = os.path.join(directory, stem + (".gz" if gz else ""))
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if gz else data)
  return path


def _gunzip(directory, stem):
  with gzip.open(os.path.join(directory, stem + ".gz")) as f:
    return f.read()


BAD_INPUTS = {
    "missing file": (
        lambda d: os.remove(os.path.join(d, "train-labels-idx1-ubyte.gz")),
        "train-labels-idx1-ubyte.gz", "file not found"),
    "empty file": (
        lambda d: open(os.path.join(d, "t10k-images-idx3-ubyte.gz"), "wb").close(),
        "t10k-images-idx3-ubyte.gz", "file is empty"),
    "truncated gzip": (
        lambda d: _truncate(os.path.join(d, "train-images-idx3-ubyte.gz")),
        "train-images-idx3-ubyte.gz", "truncated gzip"),
    "not gzip but named .gz": (
        lambda d: _corrupt(d, "train-images-idx3-ubyte",
                           _gunzip(d, "train-images-idx3-ubyte"), gz=False) and
        os.replace(os.path.join(d, "train-images-idx3-ubyte"),
                   os.path.join(d, "train-images-idx3-ubyte.gz")),
        "train-images-idx3-ubyte.gz", "not a gzip file"),
    "wrong magic": (
        lambda d: _corrupt(d, "train-labels-idx1-ubyte", b"\x00\x00\x08\x03" +
                           _gunzip(d, "train-labels-idx1-ubyte")[4:]),
        "train-labels-idx1-ubyte.gz", "wrong IDX magic number"),
    "count mismatch": (
        lambda d: idx.write_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"),
                                np.zeros(19, np.uint8)),
        "t10k-labels-idx1-ubyte.gz", "19 labels but"),
    "not 28x28": (
        lambda d: idx.write_idx(os.path.join(d, "train-images-idx3-ubyte.gz"),
                                np.zeros((60, 32, 32), np.uint8)),
        "train-images-idx3-ubyte.gz", "images are 32x32, expected 28x28"),
    "label outside 0-9": (
        lambda d: idx.write_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"),
                                np.full(60, 10, np.uint8)),
        "train-labels-idx1-ubyte.gz", "label 10 at index 0 is outside 0-9"),
}


def _truncate(path):
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_one_line_error_naming_file_and_problem(
    case, fake_data_dir, tmp_path):
  damage, file_name, problem = BAD_INPUTS[case]
  damage(fake_data_dir)
  out = str(tmp_path / "out")
  with pytest.raises(idx.DataError) as error:
    ingest.ingest(out, dataset="mnist", seed=1, train_fraction=0.7,
                  data_dir=fake_data_dir)
  message = str(error.value)
  assert "\n" not in message
  assert os.path.join(fake_data_dir, file_name) in message
  assert problem in message
  assert not os.path.exists(out)  # nothing half-written


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_directory(fake_data_dir, tmp_path):
  os.chmod(fake_data_dir, 0)
  try:
    with pytest.raises(idx.DataError, match="not readable"):
      sources.load_raw_dataset("mnist", data_dir=fake_data_dir)
  finally:
    os.chmod(fake_data_dir, stat.S_IRWXU)


def test_unreadable_directory_as_root_too(fake_data_dir, monkeypatch):
  """Root ignores permission bits, so simulate what the OS would answer."""
  monkeypatch.setattr(os, "access", lambda path, mode: False)
  with pytest.raises(idx.DataError) as error:
    sources.load_raw_dataset("mnist", data_dir=fake_data_dir)
  assert str(error.value) == f"{fake_data_dir}: data directory is not readable"


def test_missing_directory(tmp_path):
  with pytest.raises(idx.DataError, match="does not exist"):
    sources.load_raw_dataset("mnist", data_dir=str(tmp_path / "nope"))


def test_examples_are_serialized_deterministically_as_protobuf_would():
  """Same data, same bytes: each record equals protobuf's deterministic
  serialization of the tf.Example and parses back to the same values."""
  rng = np.random.default_rng(3)
  images = rng.random((5, 784), dtype=np.float32)
  labels = np.array([0, 9, 3, 127, 5])
  records = examples_io.serialize(images, labels)
  for image, label, record in zip(images, labels, records):
    expected = tf.train.Example(features=tf.train.Features(feature={
        "label": tf.train.Feature(int64_list=tf.train.Int64List(
            value=[label])),
        "image": tf.train.Feature(float_list=tf.train.FloatList(
            value=image)),
    })).SerializeToString(deterministic=True)
    assert record == expected
  parsed = tf.io.parse_example(records, examples_io.FEATURE_SPEC)
  np.testing.assert_array_equal(parsed["image"].numpy(), images)
  np.testing.assert_array_equal(parsed["label"].numpy()[:, 0], labels)
  with pytest.raises(ValueError, match="labels must be in 0-127"):
    examples_io.serialize(images[:1], np.array([128]))


def test_the_official_files_are_verified_and_unknown_data_is_marked(
    mnist_dir, fake_data_dir):
  assert sources.load_raw_dataset("mnist", data_dir=mnist_dir).verified
  fake = sources.load_raw_dataset("mnist", data_dir=fake_data_dir)
  assert not fake.verified  # a user's own IDX files: accepted, unverified
  result = ingest.ingest(os.path.join(fake_data_dir, "out"), dataset="mnist",
                         seed=0, train_fraction=0.7, data_dir=fake_data_dir)
  assert result.verified is False


def test_the_other_datasets_files_are_refused_in_one_line(fashion_dir):
  """DATASET=mnist with Fashion-MNIST files (or the reverse) stops before
  anything is written, naming the file."""
  with pytest.raises(idx.DataError) as error:
    sources.load_raw_dataset("mnist", data_dir=fashion_dir)
  message = str(error.value)
  assert message.startswith(os.path.join(fashion_dir, "train-images-idx3-ubyte"))
  assert ("this is fashion_mnist's official file, not mnist's: point the data "
          "directory at mnist or set DATASET=fashion_mnist") in message
  assert "\n" not in message


def test_content_digests_of_the_official_splits_are_pinned(mnist_dir,
                                                           fashion_dir):
  """The order-free digests that verify data without files (a TFDS copy)
  are those of the official files' examples."""
  from components.ingestion import datasets  # pylint: disable=g-import-not-at-top
  for name, directory in (("mnist", mnist_dir), ("fashion_mnist",
                                                 fashion_dir)):
    raw = sources.load_raw_dataset(name, data_dir=directory)
    assert raw.verified
    assert {"train": sources.content_digest(raw.train_images,
                                            raw.train_labels),
            "test": sources.content_digest(raw.test_images,
                                           raw.test_labels)} == \
        datasets.get_dataset_info(name).content_sha256
