"""Differences between two DatasetFeatureStatisticsList protos, field by field.

Every field of every message is walked (so a field nobody listed here is
still compared), and equal unless it is one of these, which two correct
computations of the same examples may give differently:

- `mean` and `std_dev` (of any message): float sums in another order;
  equal to `MEAN_RTOL` relative.
- `Histogram` messages and `median`: TFDV reads them off its quantiles
  sketch, `tfx_bsl.sketches.QuantilesSketch(eps=StatsOptions.epsilon)`
  (basic_stats_generator.py). Its guarantee, as tfx_bsl's own test states it
  (quantiles_sketch_test.py, `assert_quantiles_accuracy`): each quantile
  returned for level q has a true CDF within eps of q, and each cumulative
  weight reported is within eps*N of the true count. Two sketches of the
  same N values, fed in other batches, may each be off by that much:
  * a QUANTILES histogram's boundary i (level i/k) lies, in the other
    histogram, between boundaries i-1 and i+1: both true CDFs are within
    eps of i/k, and 2*eps < 1/k (checked), so neither passes a neighbour of
    the other. `median` (level 1/2): between the other's boundaries k/2-1
    and k/2+1.
  * bucket counts, summed along the buckets (the cumulative count at each
    edge): each within 2*eps*N of the true count (eps*N of a reported
    weight, plus eps in level), and STANDARD histograms interpolate between
    100*k quantiles (TFDV's `_NUM_QUANTILES_FACTOR_FOR_STD_HISTOGRAM`), one
    step off at most: |a - b| <= 4*eps*N + 2*N/(100*k). Buckets with equal
    bounds share their count evenly, a linear interpolation, which keeps
    the bound.
  * STANDARD bucket bounds split [min, max] evenly: min and max are exact,
    so the bounds are equal.
"""
from __future__ import annotations

import math
from typing import List, Optional

from google.protobuf import descriptor
from google.protobuf import message
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

MEAN_RTOL = 1e-9
MEAN_FIELDS = ("mean", "std_dev")
STD_HISTOGRAM_QUANTILES_FACTOR = 100  # TFDV's, basic_stats_generator.py
_HISTOGRAM = statistics_pb2.Histogram.DESCRIPTOR.full_name
_REPEATED = descriptor.FieldDescriptor.LABEL_REPEATED
_MESSAGE = descriptor.FieldDescriptor.TYPE_MESSAGE


def _equal(a, b) -> bool:
  if isinstance(a, float) and isinstance(b, float):
    return a == b or (math.isnan(a) and math.isnan(b))
  return a == b


def _quantile_boundaries(histograms) -> Optional[List[float]]:
  for histogram in histograms:
    if histogram.type == statistics_pb2.Histogram.QUANTILES and \
        histogram.buckets:
      return ([histogram.buckets[0].low_value] +
              [b.high_value for b in histogram.buckets])
  return None


def _between_neighbours(value: float, boundaries: List[float],
                        index: int) -> bool:
  low = boundaries[max(index - 1, 0)]
  high = boundaries[min(index + 1, len(boundaries) - 1)]
  return low <= value <= high


class _Walk:
  """Collects differences as 'path: expected vs actual' lines."""

  def __init__(self, options: tfdv.StatsOptions):
    self.epsilon = options.epsilon
    self.quantile_buckets = options.num_quantiles_histogram_buckets
    assert 2 * self.epsilon < 1 / self.quantile_buckets, (
        "the neighbour rule needs 2*eps < 1/num_quantiles_histogram_buckets")
    self.found: List[str] = []

  def differ(self, path: str, expected, actual, why: str = "") -> None:
    self.found.append(f"{path}: {expected!r} vs {actual!r}"
                      + (f" ({why})" if why else ""))

  def message(self, path: str, expected: message.Message,
              actual: message.Message) -> None:
    if expected.DESCRIPTOR.full_name == _HISTOGRAM:
      self.histogram(path, expected, actual)
      return
    for field in expected.DESCRIPTOR.fields:
      name, where = field.name, f"{path}.{field.name}"
      a, b = getattr(expected, name), getattr(actual, name)
      if field.label == _REPEATED:
        if len(a) != len(b):
          self.differ(f"{where} (length)", len(a), len(b))
        elif field.type == _MESSAGE:
          for i, (x, y) in enumerate(zip(a, b)):
            self.message(f"{where}[{i}]", x, y)
        else:
          for i, (x, y) in enumerate(zip(a, b)):
            if not _equal(x, y):
              self.differ(f"{where}[{i}]", x, y)
      elif field.type == _MESSAGE:
        if expected.HasField(name) != actual.HasField(name):
          self.differ(f"{where} (present)", expected.HasField(name),
                      actual.HasField(name))
        else:
          self.message(where, a, b)
      elif name in MEAN_FIELDS:
        if not math.isclose(a, b, rel_tol=MEAN_RTOL, abs_tol=1e-300) and \
            not _equal(a, b):
          self.differ(where, a, b, f"beyond {MEAN_RTOL} relative")
      elif name == "median" and hasattr(expected, "histograms"):
        self.median(where, expected, actual)
      elif not _equal(a, b):
        self.differ(where, a, b)

  def median(self, path: str, expected, actual) -> None:
    ours = _quantile_boundaries(expected.histograms)
    theirs = _quantile_boundaries(actual.histograms)
    if ours is None or theirs is None:
      if not _equal(expected.median, actual.median):
        self.differ(path, expected.median, actual.median)
      return
    middle = (len(ours) - 1) // 2
    if not (_between_neighbours(actual.median, ours, middle) and
            _between_neighbours(expected.median, theirs, middle)):
      self.differ(path, expected.median, actual.median,
                  "beyond the quantiles sketch's error")

  def histogram(self, path: str, expected: statistics_pb2.Histogram,
                actual: statistics_pb2.Histogram) -> None:
    for name in ("num_nan", "num_undefined", "type", "name"):
      if not _equal(getattr(expected, name), getattr(actual, name)):
        self.differ(f"{path}.{name}", getattr(expected, name),
                    getattr(actual, name))
    if len(expected.buckets) != len(actual.buckets):
      self.differ(f"{path}.buckets (length)", len(expected.buckets),
                  len(actual.buckets))
      return
    if not expected.buckets:
      return
    quantiles = expected.type == statistics_pb2.Histogram.QUANTILES
    if quantiles:
      ours = _quantile_boundaries([expected])
      theirs = _quantile_boundaries([actual])
      for i, (a, b) in enumerate(zip(ours, theirs)):
        if not (_between_neighbours(b, ours, i) and
                _between_neighbours(a, theirs, i)):
          self.differ(f"{path} boundary {i}", a, b,
                      "beyond the quantiles sketch's error")
    else:
      for i, (a, b) in enumerate(zip(expected.buckets, actual.buckets)):
        if (a.low_value, a.high_value) != (b.low_value, b.high_value):
          self.differ(f"{path}.buckets[{i}] bounds",
                      (a.low_value, a.high_value), (b.low_value, b.high_value))
    total = sum(b.sample_count for b in expected.buckets)
    steps = 0 if quantiles else 2 / (
        STD_HISTOGRAM_QUANTILES_FACTOR * self.quantile_buckets)
    tolerance = (4 * self.epsilon + steps) * total
    cumulative_a = cumulative_b = 0.0
    for i, (a, b) in enumerate(zip(expected.buckets, actual.buckets)):
      cumulative_a += a.sample_count
      cumulative_b += b.sample_count
      if abs(cumulative_a - cumulative_b) > tolerance:
        self.differ(f"{path}.buckets[:{i + 1}] count", cumulative_a,
                    cumulative_b, f"beyond {tolerance:.1f}")


def differences(expected: statistics_pb2.DatasetFeatureStatisticsList,
                actual: statistics_pb2.DatasetFeatureStatisticsList,
                options: tfdv.StatsOptions) -> List[str]:
  """Every difference between `expected` and `actual` beyond what two
  correct computations with `options` may give (the module's docstring)."""
  walk = _Walk(options)
  walk.message("statistics", expected, actual)
  return walk.found
