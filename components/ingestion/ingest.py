"""Ingestion without TFX: raw dataset -> split -> sharded gzip TFRecords.

`ingest` streams: the IDX files are decompressed a chunk at a time into raw
uint8 files in a local temporary directory (checked and hashed on the way),
the split is decided from each image's hash alone (`split.split_indices`),
and each shard is gathered, scaled, serialized and written `CHUNK` examples
at a time. Memory holds a few bytes per image (labels, hashes, the order),
never the images as float32, so it stays bounded as the data grows; the
local disk holds the uncompressed uint8 pixels (47 MB for MNIST) meanwhile.
The whole-array form it replaced lives on as the reference it is tested
against (`ingest_in_memory` in tests/components/ingestion/test_streaming.py):
both write the same bytes.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from typing import Dict, Optional

import numpy as np

from components.ingestion import datasets
from components.ingestion import examples_io
from components.ingestion import sources
from components.ingestion import split as split_lib

# Shards per split for ~1,000-2,000 examples each on the full dataset.
NUM_SHARDS = {"train": 4, "eval": 2, "test": 1}


@dataclasses.dataclass
class IngestionResult:
  counts: Dict[str, int]
  class_histograms: Dict[str, list]
  source: str
  checksums: Dict[str, str]
  verified: bool  # the named dataset's official files (sources.check_identity)
  seconds: float


def ingest(output_uri: str, *, dataset: str, seed: int, train_fraction: float,
           max_examples: Optional[int] = None, data_dir: Optional[str] = None,
           tfds_data_dir: Optional[str] = None,
           cache_dir: Optional[str] = None,
           staging_dir: Optional[str] = None) -> IngestionResult:
  """Loads `dataset`, splits it and writes `output_uri/Split-<name>/`.

  Every input is read and validated before the first byte is written, so a
  bad file leaves nothing behind. `staging_dir`: a local directory for the
  uncompressed pixels (default: a temporary directory, removed after).
  """
  start = time.time()
  with tempfile.TemporaryDirectory(prefix="mnist-ingest-",
                                   dir=staging_dir) as staging:
    raw = sources.stage_raw_dataset(dataset, staging, data_dir=data_dir,
                                    tfds_data_dir=tfds_data_dir,
                                    cache_dir=cache_dir)
    indices = split_lib.split_indices(
        raw.train_positions, len(raw.test_labels), seed=seed,
        train_fraction=train_fraction, max_examples=max_examples)
    pixels = {"train": raw.train_pixels, "eval": raw.train_pixels,
              "test": raw.test_pixels}
    labels = {"train": raw.train_labels, "eval": raw.train_labels,
              "test": raw.test_labels}
    examples_io.write_splits([
        examples_io.SplitSource(
            examples_io.split_dir(output_uri, name), pixels[name],
            labels[name].astype(np.int64), indices[name], NUM_SHARDS[name])
        for name in split_lib.SPLIT_NAMES])
  result = IngestionResult(
      counts={name: len(indices[name]) for name in split_lib.SPLIT_NAMES},
      class_histograms={
          name: np.bincount(labels[name][indices[name]],
                            minlength=datasets.NUM_CLASSES).tolist()
          for name in split_lib.SPLIT_NAMES},
      source=raw.source, checksums=raw.checksums, verified=raw.verified,
      seconds=time.time() - start)
  _log(dataset, result)
  return result


def _log(dataset: str, result: IngestionResult) -> None:
  logging.info("ingested %s from %s (%s) in %.1f s: %s", dataset,
               result.source, "verified" if result.verified else
               "UNVERIFIED: not the official files", result.seconds,
               result.counts)
