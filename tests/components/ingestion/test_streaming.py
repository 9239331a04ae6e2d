"""Streaming ingestion: the same bytes as the whole-array path, bounded memory."""
import filecmp
import gzip
import os
import subprocess
import sys
import time
from typing import Optional

import numpy as np
import pytest
import tensorflow as tf

from components.ingestion import examples_io
from components.ingestion import idx
from components.ingestion import ingest
from components.ingestion import sources
from components.ingestion import split as split_lib
from tests.conftest import REPO_ROOT
from tests.conftest import write_fake_dataset


def ingest_in_memory(output_uri: str, *, dataset: str, seed: int,
                     train_fraction: float,
                     max_examples: Optional[int] = None,
                     data_dir: Optional[str] = None,
                     tfds_data_dir: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> ingest.IngestionResult:
  """The whole-array form of `ingest` (every image in memory as float32),
  which the streaming form replaced: the reference it is tested against."""
  start = time.time()
  raw = sources.load_raw_dataset(dataset, data_dir=data_dir,
                                 tfds_data_dir=tfds_data_dir,
                                 cache_dir=cache_dir)
  splits = split_lib.split_dataset(
      raw.train_images, raw.train_labels, raw.test_images, raw.test_labels,
      seed=seed, train_fraction=train_fraction, max_examples=max_examples)
  for name, data in splits.items():
    examples_io.write_split(examples_io.split_dir(output_uri, name),
                            data.images, data.labels, ingest.NUM_SHARDS[name])
  result = ingest.IngestionResult(
      counts={name: len(data) for name, data in splits.items()},
      class_histograms={n: d.class_histogram() for n, d in splits.items()},
      source=raw.source, checksums=raw.checksums, verified=raw.verified,
      seconds=time.time() - start)
  return result


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root)
                for d, _, names in os.walk(root) for f in names)


def _assert_same_output(streamed, whole, a, b):
  assert streamed.counts == whole.counts
  assert streamed.class_histograms == whole.class_histograms
  assert streamed.checksums == whole.checksums
  assert streamed.verified == whole.verified
  assert _files(a) == _files(b)
  for name in _files(a):
    assert filecmp.cmp(os.path.join(a, name), os.path.join(b, name),
                       shallow=False), name


@pytest.mark.parametrize("seed,max_examples,gz", [
    (3, None, True), (7, 700, True), (0, None, False)])
def test_streamed_examples_are_byte_identical_to_the_whole_array_path(
    tmp_path, monkeypatch, seed, max_examples, gz):
  """Same records, same order, same shards, same split membership; tiny
  chunks so that images straddle every kind of chunk boundary."""
  data_dir = write_fake_dataset(tmp_path / "data", num_train=1000,
                                num_test=170, seed=seed, gz=gz)
  monkeypatch.setattr(idx, "STREAM_CHUNK_BYTES", 5000)  # not a multiple of 784
  monkeypatch.setattr(examples_io, "CHUNK", 37)
  kwargs = dict(dataset="mnist", seed=seed, train_fraction=0.7,
                max_examples=max_examples, data_dir=data_dir)
  streamed = ingest.ingest(str(tmp_path / "streamed"), **kwargs)
  whole = ingest_in_memory(str(tmp_path / "whole"), **kwargs)
  _assert_same_output(streamed, whole, str(tmp_path / "streamed"),
                      str(tmp_path / "whole"))


def test_streamed_real_mnist_is_byte_identical(mnist_dir, tmp_path):
  kwargs = dict(dataset="mnist", seed=42, train_fraction=0.7,
                data_dir=mnist_dir)
  streamed = ingest.ingest(str(tmp_path / "streamed"), **kwargs)
  whole = ingest_in_memory(str(tmp_path / "whole"), **kwargs)
  assert streamed.counts == {"train": 41932, "eval": 18068, "test": 10000}
  _assert_same_output(streamed, whole, str(tmp_path / "streamed"),
                      str(tmp_path / "whole"))


def test_the_scaling_table_is_tensorflows_uint8_over_255():
  pixels = np.arange(256, dtype=np.uint8)
  expected = (tf.cast(pixels, tf.float32) / 255.0).numpy()
  table = examples_io._SCALED_BYTES.reshape(-1).view("<f4")  # pylint: disable=protected-access
  np.testing.assert_array_equal(table.view(np.uint32),
                                expected.astype("<f4").view(np.uint32))


def test_pixel_file_gathers_in_any_order(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (50, 784), np.uint8)
  path = str(tmp_path / "x.u8")
  images.tofile(path)
  pixels = examples_io.PixelFile(path, 50)
  order = np.array([49, 3, 3, 0, 17])
  np.testing.assert_array_equal(pixels.gather(order), images[order])
  assert pixels.gather(np.array([], np.int64)).shape == (0, 784)


@pytest.mark.parametrize("extra,problem", [
    (b"\x00" * 5, "header promises 60 images (47056 bytes) but the file has "
                  "47061 bytes"),
    (None, "header promises 60 images (47056 bytes) but the file has "
           "46272 bytes")])
def test_streamed_length_errors_match_the_whole_file_ones(
    fake_data_dir, tmp_path, extra, problem):
  path = os.path.join(fake_data_dir, "train-images-idx3-ubyte.gz")
  with gzip.open(path) as f:
    data = f.read()
  data = data + extra if extra else data[:-784]
  with open(path, "wb") as f:
    f.write(gzip.compress(data))
  with pytest.raises(idx.DataError) as whole:
    idx.parse_images(idx.read_bytes(path), path)
  with pytest.raises(idx.DataError) as streamed:
    ingest.ingest(str(tmp_path / "out"), dataset="mnist", seed=1,
                  train_fraction=0.7, data_dir=fake_data_dir)
  assert str(streamed.value) == str(whole.value) == f"{path}: {problem}"
  assert not os.path.exists(tmp_path / "out")


_CHILD = """
import resource, sys
import components
from components.ingestion import ingest
from components.ingestion import sources
from components.ingestion import split as split_lib
getattr(ingest, sys.argv[1])(sys.argv[2], dataset="mnist", seed=0,
                             train_fraction=0.7, data_dir=sys.argv[3])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak_rss(function, data_dir, out):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  done = subprocess.run([sys.executable, "-c", _CHILD, function, out,
                         data_dir], cwd=REPO_ROOT, env=env, check=True,
                        capture_output=True, text=True)
  return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_data(tmp_path):
  """4x the images: the peak resident memory of a fresh process grows by
  less than the added images take even as uint8 (measured: ~3 MB; the
  whole-array path grows by ~10x the uint8 size: uint8, float32 and
  serialized copies). Both sizes fill whole write chunks."""
  small, large = 16000, 64000
  peaks = {}
  for n in (small, large):
    data_dir = write_fake_dataset(tmp_path / f"d{n}", num_train=n,
                                  num_test=n // 6)
    peaks[n] = _peak_rss("ingest", data_dir, str(tmp_path / f"out{n}"))
  added_uint8 = (large - small) * 7 / 6 * 784
  assert peaks[large] - peaks[small] < added_uint8, peaks
