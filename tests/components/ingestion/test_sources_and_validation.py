"""Ingestion sources beyond a data directory, and the schema/validator gate."""
import gzip
import os
import shutil
import socket

import numpy as np
import pytest
import tensorflow_data_validation as tfdv

from components.ingestion import datasets
from components.ingestion import examples_io
from components.ingestion import idx
from components.ingestion import sources
from components.validation import anomalies
from pipeline import config as config_lib


def _fake_download_from(directory):
  def urlretrieve(url, filename, reporthook=None):
    shutil.copy(os.path.join(directory, os.path.basename(url)), filename)
    if reporthook:
      reporthook(1, 1, 1)
  return urlretrieve


def test_download_fetches_into_the_cache_and_verifies_sha256(
    mnist_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(sources, "network_reachable", lambda url: True)
  monkeypatch.setattr(sources.urllib.request, "urlretrieve",
                      _fake_download_from(mnist_dir))
  raw = sources.load_raw_dataset("mnist", cache_dir=str(tmp_path))
  assert raw.source == f"idx:{tmp_path / 'mnist'}"
  assert len(raw.train_labels) == 60000
  assert sorted(os.listdir(tmp_path / "mnist")) == sorted(
      f"{stem}.gz" for stem in datasets.IDX_FILES.values())
  assert raw.checksums == {stem: datasets.DATASETS["mnist"].sha256[stem]
                           for stem in datasets.IDX_FILES.values()}


def test_download_with_wrong_checksum_is_refused(fake_data_dir, tmp_path,
                                                 monkeypatch):
  monkeypatch.setattr(sources, "network_reachable", lambda url: True)
  monkeypatch.setattr(sources.urllib.request, "urlretrieve",
                      _fake_download_from(fake_data_dir))
  with pytest.raises(idx.DataError, match="does not match the official"):
    sources.load_raw_dataset("mnist", cache_dir=str(tmp_path))


def test_prepared_tfds_directory_is_used_without_download(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=12,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    # mock_data fakes the records; a prepared directory is what we look for.
    original = tfds.core.DatasetBuilder.is_prepared
    try:
      tfds.core.DatasetBuilder.is_prepared = lambda self: True
      raw = sources.load_raw_dataset("fashion_mnist",
                                     tfds_data_dir=str(tmp_path))
    finally:
      tfds.core.DatasetBuilder.is_prepared = original
  assert raw.source == f"tfds:{tmp_path}"
  assert raw.train_images.shape == (12, 28, 28)
  assert raw.train_images.dtype == np.uint8
  assert raw.test_labels.max() <= 9


def _prepare_tfds_from_idx(name, idx_dir, root, monkeypatch):
  """TFDS's own builder for `name`, run as a user would prepare it, its
  download step served from the IDX files in `idx_dir` (no network)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  extracted = root / "extracted"
  extracted.mkdir(parents=True)

  def download_and_extract(self, urls):
    del self
    paths = {}
    for key, url in urls.items():
      stem = os.path.basename(url).removesuffix(".gz")
      with gzip.open(os.path.join(idx_dir, stem + ".gz")) as f:
        (extracted / stem).write_bytes(f.read())
      paths[key] = str(extracted / stem)
    return paths

  monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract",
                      download_and_extract)
  tfds.builder(name, data_dir=str(root / "tfds")).download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return str(root / "tfds")


@pytest.mark.slow
def test_a_prepared_tfds_copy_of_the_official_data_is_verified(
    mnist_dir, tmp_path, monkeypatch):
  """TFDS stores the images in its own order, so the official files' sums
  never matched its data (before: always `unverified`, and another
  dataset's TFDS copy was never refused); the examples' order-free digest
  does. The data's digest for the cache keys covers the TFDS files."""
  tfds_dir = _prepare_tfds_from_idx("mnist", mnist_dir, tmp_path, monkeypatch)
  raw = sources.load_raw_dataset("mnist", tfds_data_dir=tfds_dir)
  assert raw.source == f"tfds:{tfds_dir}"
  assert raw.verified
  assert len(raw.train_labels) == 60000
  digest = sources.data_digest("mnist", tfds_data_dir=tfds_dir)
  assert digest.startswith("tfds:")
  assert digest == sources.data_digest("mnist", tfds_data_dir=tfds_dir)


def test_another_datasets_examples_are_refused_whatever_their_order(
    fashion_dir):
  """Data without files (as TFDS gives it) holding Fashion-MNIST's official
  examples, shuffled, is refused for DATASET=mnist in one line."""
  raw = sources.load_raw_dataset("fashion_mnist", data_dir=fashion_dir)
  order = np.random.default_rng(0).permutation(len(raw.train_labels))
  arrays = sources.RawDataset(
      raw.train_images[order], raw.train_labels[order], raw.test_images,
      raw.test_labels, source="tfds:/somewhere", checksums={
          "train": sources.content_digest(raw.train_images[order],
                                          raw.train_labels[order]),
          "test": sources.content_digest(raw.test_images, raw.test_labels)})
  with pytest.raises(idx.DataError, match="^/somewhere/train: this is "
                     "fashion_mnist's official train split, not mnist's"):
    sources.check_identity(arrays, datasets.get_dataset_info("mnist"),
                           "/somewhere")


def test_the_download_check_goes_through_the_proxy(monkeypatch):
  """Behind a proxy (HTTPS_PROXY), the download is possible when the proxy
  answers (before: the check connected to the data host directly, failed,
  and the run stopped saying there was no network)."""
  url = datasets.get_dataset_info("mnist").download_url
  proxy = socket.socket()
  proxy.bind(("127.0.0.1", 0))
  proxy.listen(1)
  proxy.settimeout(10)
  for name in ("NO_PROXY", "no_proxy", "https_proxy"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv("HTTPS_PROXY",
                     f"http://127.0.0.1:{proxy.getsockname()[1]}")
  with proxy:
    assert sources.network_reachable(url)
    proxy.accept()[0].close()  # the check did connect to the proxy
  monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens
  assert not sources.network_reachable(url)


def test_unprepared_tfds_directory_falls_through_to_the_offline_error(
    tmp_path, monkeypatch):
  monkeypatch.setattr(sources, "network_reachable", lambda url: False)
  with pytest.raises(idx.DataError, match="set DATA_DIR"):
    sources.load_raw_dataset("mnist", tfds_data_dir=str(tmp_path))


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_curated_schema_accepts_ingested_data_and_flags_bad_data(
    dataset, tmp_path):
  schema = tfdv.load_schema_text(
      config_lib.PipelineConfig(dataset=dataset).schema_path)
  rng = np.random.default_rng(0)
  good = str(tmp_path / "good" / "Split-train")
  examples_io.write_split(good, rng.random((50, 784)).astype(np.float32),
                          rng.integers(0, 10, 50), num_shards=1)
  bad = str(tmp_path / "bad" / "Split-train")
  pixels = rng.random((50, 784)).astype(np.float32)
  pixels[0, 0] = 255.0  # unscaled
  examples_io.write_split(bad, pixels, np.full(50, 12), num_shards=1)

  def anomalies_of(directory):
    stats = tfdv.generate_statistics_from_tfrecord(
        os.path.join(directory, "*"))
    return tfdv.validate_statistics(stats, schema)

  assert not anomalies_of(good).anomaly_info
  lines = anomalies.describe({"train": anomalies_of(bad)})
  assert any(line.startswith("train/label:") for line in lines), lines
  assert any(line.startswith("train/image:") for line in lines), lines


def test_gate_raises_with_every_anomaly_listed(tmp_path):
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  for split, feature in (("train", "label"), ("eval", None)):
    found = anomalies_pb2.Anomalies()
    if feature:
      info = found.anomaly_info[feature]
      info.short_description = "Out-of-range values"
      info.description = "Unexpectedly large value: 12."
    os.makedirs(tmp_path / f"Split-{split}")
    with open(tmp_path / f"Split-{split}" / "SchemaDiff.pb", "wb") as f:
      f.write(found.SerializeToString())
  anomalies.check(str(tmp_path), ["eval"])  # clean split: no error
  with pytest.raises(anomalies.DataAnomaliesError) as error:
    anomalies.check(str(tmp_path), ["train", "eval"])
  assert str(error.value) == (
      "1 data anomalies, nothing pushed: train/label: Out-of-range values "
      "(Unexpectedly large value: 12.)")
