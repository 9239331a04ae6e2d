"""The ingestion's settings: where the data comes from and how it is split
(DATA_DIR, TFDS_DATA_DIR, DOWNLOAD_CACHE_DIR, TRAIN_FRACTION, MAX_EXAMPLES).
A new setting: a field here, its parameter of `MnistExampleGen` (in
`component.py`, and passed on in `pipeline.pipeline.create_pipeline`), and
one row of `pipeline.config.ENV_SETTINGS`; a new path also belongs in
`pipeline.unchanged.always_runs`'s paths."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

from components.ingestion import split

DEFAULT_DOWNLOAD_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache",
                                          "mnist-tfx")


@dataclasses.dataclass(frozen=True)
class IngestionSettings:
  """Where `MnistExampleGen` reads the dataset (`sources.py`: IDX files in
  `data_dir`, a prepared TFDS directory, or the official files downloaded
  into `download_cache_dir`), the share of the official training set that
  trains, and MAX_EXAMPLES, a quick run's cap."""
  data_dir: Optional[str] = None
  tfds_data_dir: Optional[str] = None
  download_cache_dir: Optional[str] = DEFAULT_DOWNLOAD_CACHE_DIR
  train_fraction: float = split.DEFAULT_TRAIN_FRACTION
  max_examples: Optional[int] = None

  def __post_init__(self):
    # Checked before any work (the ingestion would refuse it only later).
    if not 0.0 < self.train_fraction < 1.0:  # NaN too
      raise ValueError(f"TRAIN_FRACTION={self.train_fraction!r} is not a "
                       "number between 0 and 1 (exclusive)")
    if self.max_examples is not None and self.max_examples < 0:
      raise ValueError(f"MAX_EXAMPLES={self.max_examples!r} must be >= 0 "
                       "(0: every example)")

  @property
  def lineage_parts(self) -> Tuple[str, ...]:
    """What makes the examples another set than the default one's, so that
    models are only compared on the same eval split: a split definition
    other than the original 7:3 (`split.lineage_part`, e.g. `split80`), and
    `quick<N>` for MAX_EXAMPLES=N runs (which N examples also depends on
    SEED: `pipeline.config.PipelineConfig.lineage_parts`)."""
    parts = []
    split_part = split.lineage_part(self.train_fraction)
    if split_part:
      parts.append(split_part)
    if self.max_examples:
      parts.append(f"quick{self.max_examples}")
    return tuple(parts)
