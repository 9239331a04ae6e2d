"""Ingestion without TFX: raw dataset -> split -> sharded gzip TFRecords."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Dict, Optional

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
           cache_dir: Optional[str] = None) -> IngestionResult:
  """Loads `dataset`, splits it and writes `output_uri/Split-<name>/`.

  Every input is read and validated before the first byte is written, so a
  bad file leaves nothing behind.
  """
  start = time.time()
  raw = sources.load_raw_dataset(dataset, data_dir=data_dir,
                                 tfds_data_dir=tfds_data_dir,
                                 cache_dir=cache_dir)
  splits = split_lib.split_dataset(
      raw.train_images, raw.train_labels, raw.test_images, raw.test_labels,
      seed=seed, train_fraction=train_fraction, max_examples=max_examples)
  for name, data in splits.items():
    examples_io.write_split(examples_io.split_dir(output_uri, name),
                            data.images, data.labels, NUM_SHARDS[name])
  result = IngestionResult(
      counts={name: len(data) for name, data in splits.items()},
      class_histograms={n: d.class_histogram() for n, d in splits.items()},
      source=raw.source, checksums=raw.checksums, verified=raw.verified,
      seconds=time.time() - start)
  logging.info("ingested %s from %s (%s) in %.1f s: %s", dataset, raw.source,
               "verified" if raw.verified else "UNVERIFIED: not the official "
               "files", result.seconds, result.counts)
  return result
