"""TFDV statistics of tf.Example files in this process, without Beam.

`tfdv.GenerateStatistics`, which TFX's StatisticsGen runs, wraps TFDV's
combiner generators (`stats_impl.get_generators`) in one Beam CombineFn; on
one machine the pipeline around them cost more than the statistics. Here
the same generators are fed directly: tfx_bsl's TFXIO decodes the files
`chunk_size` examples at a time into Arrow RecordBatches
(`TFExampleRecord.RecordBatches`, the C++ decoder of its Beam source); each
chunk's accumulators (`stats_impl.generate_partial_statistics_in_memory`)
are merged into the running ones, so memory is one chunk's plus the
generators' sketches; TFDV's `extract_statistics_output` and tfx_bsl's
`merge_util` then build the result as the Beam transform does.

The result is the Beam transform's: counts, minima and maxima equal; top-k
and unique counts equal while a feature's distinct values fit the sketch
(MNIST's labels do; beyond that the Misra-Gries sketch depends on merge
order, in Beam too); means and standard deviations to the last bits (float
sums in another order); quantiles and histograms from the same sketches,
within their error (`StatsOptions.epsilon`).

Sampling (`sample_rate` < 1): each example is kept with probability
`sample_rate`, drawn by a numpy Generator seeded with `seed`, so a rerun
takes the same sample (TFDV's Beam transform keeps or drops whole record
batches, a different sample on every run).

What only Beam computes is refused (`UnsupportedOptionsError`; `refusal`
says why): slicing, result partitions, and generators that are not
combiners: exact top-k (`use_sketch_based_topk_uniques` unset or False),
lift (`label_feature` with a schema), custom transform generators.
"""
from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_data_validation import constants
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_data_validation.statistics.generators import stats_generator
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.statistics import merge_util
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record
from tfx_bsl.tfxio import tfxio as tfxio_lib

# Examples decoded and added at a time unless `StatsOptions.
# desired_batch_size` says otherwise: the batch TFDV's Beam CombineFn feeds
# its generators (3 MB of MNIST records). Measured on full MNIST: 1.8-2.3 s
# with 500 or 1000, 2.6-4.6 s with 2048-8192 (larger arrays, slower numpy).
DEFAULT_CHUNK_SIZE = constants.DEFAULT_DESIRED_INPUT_BATCH_SIZE


class UnsupportedOptionsError(ValueError):
  """The StatsOptions ask for something only TFDV's Beam transform does."""


def refusal(options: tfdv.StatsOptions) -> Optional[str]:
  """Why `options` need TFDV's Beam transform, or None if they do not."""
  if (options.experimental_slice_functions or
      options.experimental_slice_sqls or options.slicing_config):
    return "slicing (slice functions, slice SQL or slicing_config)"
  if options.experimental_result_partitions != 1:
    return (f"experimental_result_partitions="
            f"{options.experimental_result_partitions}")
  beam_only = [type(g).__name__ for g in stats_impl.get_generators(options)
               if not isinstance(g, stats_generator.CombinerStatsGenerator)]
  if beam_only:
    return ("generators that run only on Beam: " + ", ".join(beam_only) +
            " (exact top-k: use_sketch_based_topk_uniques=False; lift: "
            "label_feature with a schema)")
  return None


def record_batches(tfxio: tfxio_lib.TFXIO,
                   chunk_size: int) -> Iterator[pa.RecordBatch]:
  """Every example of `tfxio` once, in file order, `chunk_size` at a time."""
  return tfxio.RecordBatches(dataset_options.RecordBatchesOptions(
      batch_size=chunk_size, num_epochs=1, shuffle=False))


def sample(batches: Iterable[pa.RecordBatch], sample_rate: Optional[float],
           seed: int = 0) -> Iterator[pa.RecordBatch]:
  """Each example kept with probability `sample_rate` (all if None or >= 1),
  the same ones for the same `seed` and batches."""
  if sample_rate is None or sample_rate >= 1:
    yield from batches
    return
  rng = np.random.default_rng(seed)
  for batch in batches:
    keep = rng.random(batch.num_rows) < sample_rate
    if keep.any():
      yield batch.filter(pa.array(keep))


def statistics_of_record_batches(
    batches: Iterable[pa.RecordBatch], options: tfdv.StatsOptions,
    seed: int = 0) -> statistics_pb2.DatasetFeatureStatisticsList:
  """The statistics `tfdv.GenerateStatistics(options)` computes of
  `batches`, computed here (see the module's docstring)."""
  reason = refusal(options)
  if reason:
    raise UnsupportedOptionsError(
        f"in-process statistics cannot compute {reason}; use TFDV's Beam "
        "transform (tfdv.GenerateStatistics)")
  generators = stats_impl.get_generators(options)
  for generator in generators:
    generator.setup()  # as the Beam CombineFn does
  accumulators: Optional[List] = None
  for batch in sample(batches, options.sample_rate, seed):
    chunk = stats_impl.generate_partial_statistics_in_memory(
        batch, options, generators)
    accumulators = chunk if accumulators is None else [
        generator.merge_accumulators([running, new]) for
        generator, running, new in zip(generators, accumulators, chunk)]
  if accumulators is None:  # as the Beam transform: one empty dataset
    return statistics_pb2.DatasetFeatureStatisticsList(
        datasets=[statistics_pb2.DatasetFeatureStatistics()])
  statistics = stats_impl.extract_statistics_output(accumulators, generators)
  # The Beam transform's last step (`MergeStatsProtos`).
  return merge_util.merge_dataset_feature_statistics_list([statistics])


def statistics_of_tfxio(tfxio: tfxio_lib.TFXIO, options: tfdv.StatsOptions,
                        seed: int = 0
                        ) -> statistics_pb2.DatasetFeatureStatisticsList:
  """Statistics of every example `tfxio` reads (one that implements
  `RecordBatches`, as `TFExampleRecord` does)."""
  chunk_size = options.desired_batch_size or DEFAULT_CHUNK_SIZE
  return statistics_of_record_batches(record_batches(tfxio, chunk_size),
                                      options, seed)


def statistics_of(file_pattern: Union[str, Sequence[str]],
                  options: tfdv.StatsOptions,
                  schema: Optional[schema_pb2.Schema] = None,
                  seed: int = 0) -> statistics_pb2.DatasetFeatureStatisticsList:
  """Statistics of the tf.Example TFRecord files (gzip or not) matching
  `file_pattern` (one glob or several), as
  `tfdv.generate_statistics_from_tfrecord(file_pattern, options)` computes
  them with Beam. `schema`: decode with it (else types as found)."""
  patterns = [file_pattern] if isinstance(file_pattern, str) else list(
      file_pattern)
  return statistics_of_tfxio(
      tf_example_record.TFExampleRecord(file_pattern=patterns, schema=schema),
      options, seed)
