"""Ingestion sources beyond a data directory, and the schema/validator gate."""
import os
import shutil

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
      "1 data anomalies, training stopped: train/label: Out-of-range values "
      "(Unexpectedly large value: 12.)")
