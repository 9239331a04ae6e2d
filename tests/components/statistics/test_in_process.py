"""In-process statistics against TFDV's Beam transform on the same files:
the same statistics (`compare`), the same anomalies against the curated
schema, on clean data and on data with planted problems."""
import functools
import os

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from apache_beam.options import pipeline_options
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.ingestion import examples_io
from components.ingestion import idx
from components.ingestion import sources
from components.statistics import in_process
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib
from tests.components.statistics import compare

NUM_REAL = 3000  # real MNIST test images: 3 shards of 1,000
BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
SCHEMA = tfdv.load_schema_text(config_lib.PipelineConfig().schema_path)


@functools.lru_cache(maxsize=None)
def _pipelines_options_json() -> str:
  dag = pipeline_lib.create_pipeline(config_lib.PipelineConfig(
      output_dir="/nonexistent"), data_digest="d")
  node = next(c for c in dag.components if c.id == "StatisticsGen")
  return node.exec_properties["stats_options_json"]


def the_pipelines_options() -> tfdv.StatsOptions:
  """The options the pipeline's StatisticsGen runs with."""
  return tfdv.StatsOptions.from_json(_pipelines_options_json())


def categorical_label_options() -> tfdv.StatsOptions:
  """The curated schema with `label` categorical: top-k and unique counts
  (the sketches of TopKUniquesSketchStatsGenerator) are computed too."""
  schema = schema_pb2.Schema()
  schema.CopyFrom(SCHEMA)
  next(f for f in schema.feature if f.name == "label"
       ).int_domain.is_categorical = True
  return tfdv.StatsOptions(schema=schema, use_sketch_based_topk_uniques=True,
                           num_top_values=5, num_rank_histogram_buckets=8)


OPTIONS = {"pipeline": the_pipelines_options,
           "categorical_label": categorical_label_options}


@pytest.fixture(scope="module")
def real_examples(mnist_dir):
  """The first NUM_REAL official test images and labels, [N,784] in [0,1]."""
  images, labels, _ = idx.read_pair(
      sources.find_idx_file(mnist_dir, "t10k-images-idx3-ubyte"),
      sources.find_idx_file(mnist_dir, "t10k-labels-idx1-ubyte"))
  return (images[:NUM_REAL].reshape(NUM_REAL, 784).astype(np.float32)
          / np.float32(255.0), labels[:NUM_REAL])


@pytest.fixture(scope="module")
def real_split(real_examples, tmp_path_factory):
  """A split directory as the ingestion writes it (gzip TFRecords)."""
  directory = str(tmp_path_factory.mktemp("examples") / "Split-test")
  examples_io.write_split(directory, *real_examples, num_shards=3)
  return directory


def beam_statistics(directory, options, tmp_path):
  return tfdv.generate_statistics_from_tfrecord(
      os.path.join(directory, "*"), stats_options=options,
      output_path=str(tmp_path / "beam" / "stats.tfrecord"),
      pipeline_options=pipeline_options.PipelineOptions(BEAM_ARGS))


def _feature(statistics, name):
  return next(f for f in statistics.datasets[0].features
              if f.path.step == [name])


@pytest.mark.slow
@pytest.mark.parametrize("options_name", sorted(OPTIONS))
def test_same_statistics_as_tfdv_beam(real_split, options_name, tmp_path):
  options = OPTIONS[options_name]()
  expected = beam_statistics(real_split, options, tmp_path)
  actual = in_process.statistics_of(os.path.join(real_split, "*"), options)
  assert compare.differences(expected, actual, options) == []
  # Not vacuous: both features, with their sketches' outputs.
  assert actual.datasets[0].num_examples == NUM_REAL
  image = _feature(actual, "image").num_stats
  assert image.common_stats.tot_num_values == NUM_REAL * 784
  assert {h.type for h in image.histograms} == {
      statistics_pb2.Histogram.STANDARD, statistics_pb2.Histogram.QUANTILES}
  if options_name == "categorical_label":
    label = _feature(actual, "label").string_stats
    assert label.unique == 10 and len(label.top_values) == 5


@pytest.mark.slow
def test_no_examples_gives_beams_placeholder(tmp_path):
  """No examples: Beam's one empty dataset, not a dataset of no features."""
  directory = str(tmp_path / "Split-empty")
  examples_io.write_split(directory, np.zeros((0, 784), np.float32),
                          np.zeros(0, np.int64), num_shards=1)
  options = the_pipelines_options()
  expected = beam_statistics(directory, options, tmp_path)
  actual = in_process.statistics_of(os.path.join(directory, "*"), options)
  assert actual == expected == statistics_pb2.DatasetFeatureStatisticsList(
      datasets=[statistics_pb2.DatasetFeatureStatistics()])


def _write_short_image(path):
  """One example whose image has 700 floats instead of 784."""
  example = tf.train.Example(features=tf.train.Features(feature={
      "image": tf.train.Feature(float_list=tf.train.FloatList(
          value=[0.5] * 700)),
      "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[3]))}))
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(
      compression_type="GZIP")) as writer:
    writer.write(example.SerializeToString())


# Planted problem -> (feature, anomaly type) it must raise.
PLANTED = {
    "clean": None,
    "pixel_out_of_range": ("image", "FLOAT_TYPE_BIG_FLOAT"),
    "label_out_of_domain": ("label", "INT_TYPE_BIG_INT"),
    "short_image": ("image", "FEATURE_TYPE_LOW_NUMBER_VALUES"),
}


@pytest.mark.slow
@pytest.mark.parametrize("problem", list(PLANTED))
def test_same_anomalies_as_tfdv_beam(real_examples, problem, tmp_path):
  """ExampleValidator's check (`tfdv.validate_statistics` against the
  curated schema) finds the same anomalies in both statistics, and finds
  the planted one."""
  images, labels = real_examples[0][:1000].copy(), real_examples[1][:1000]
  labels = labels.astype(np.int64)
  if problem == "pixel_out_of_range":
    images[17, 400] = 2.0
  if problem == "label_out_of_domain":
    labels[17] = 11
  directory = str(tmp_path / "Split-train")
  examples_io.write_split(directory, images, labels, num_shards=2)
  if problem == "short_image":
    _write_short_image(os.path.join(directory, "short.gz"))
  options = the_pipelines_options()
  anomalies = [tfdv.validate_statistics(statistics, SCHEMA) for statistics in (
      beam_statistics(directory, options, tmp_path),
      in_process.statistics_of(os.path.join(directory, "*"), options))]
  assert anomalies[0] == anomalies[1]
  found = {(name, anomalies_pb2.AnomalyInfo.Type.Name(reason.type))
           for name, info in anomalies[1].anomaly_info.items()
           for reason in info.reason}
  if PLANTED[problem] is None:
    assert not found
  else:
    assert PLANTED[problem] in found, found


# --- Without Beam. ---

def _synthetic_batches(count=2500, chunk=1000, seed=0):
  """Record batches of `count` MNIST-like examples, `chunk` at a time."""
  rng = np.random.default_rng(seed)
  images = rng.random((count, 784), dtype=np.float32)
  labels = rng.integers(0, 10, count)
  for start in range(0, count, chunk):
    end = min(count, start + chunk)
    yield pa.RecordBatch.from_arrays(
        [pa.array(list(images[start:end]), pa.large_list(pa.float32())),
         pa.array([[l] for l in labels[start:end]],
                  pa.large_list(pa.int64()))],
        ["image", "label"])


def test_chunks_merge_to_the_statistics_of_one_batch():
  """Fed 1,000 at a time or all at once, the same statistics."""
  options = the_pipelines_options()
  whole = pa.Table.from_batches(list(_synthetic_batches())
                               ).combine_chunks().to_batches()
  assert len(whole) == 1
  expected = in_process.statistics_of_record_batches(whole, options)
  actual = in_process.statistics_of_record_batches(_synthetic_batches(),
                                                   options)
  assert compare.differences(expected, actual, options) == []
  assert actual.datasets[0].num_examples == 2500


def test_sample_rate_keeps_a_seeded_fraction_of_the_examples():
  options = tfdv.StatsOptions(sample_rate=0.2,
                              use_sketch_based_topk_uniques=True)
  first, again, other = (
      in_process.statistics_of_record_batches(_synthetic_batches(), options,
                                              seed=seed)
      for seed in (0, 0, 1))
  assert first == again != other
  assert 400 < first.datasets[0].num_examples < 600  # 2,500 x 0.2 = 500


def test_options_only_beam_computes_are_refused():
  assert in_process.refusal(the_pipelines_options()) is None
  assert "TopKUniquesStatsGenerator" in in_process.refusal(
      tfdv.StatsOptions())  # exact top-k: a Beam transform
  assert "slicing" in in_process.refusal(tfdv.StatsOptions(
      use_sketch_based_topk_uniques=True,
      experimental_slice_sqls=["SELECT STRUCT(label) FROM example.label"]))
  with pytest.raises(in_process.UnsupportedOptionsError, match="top-k"):
    in_process.statistics_of_record_batches(_synthetic_batches(),
                                            tfdv.StatsOptions())


# --- The comparison itself can fail. ---

@pytest.fixture(scope="module")
def synthetic_statistics():
  return in_process.statistics_of_record_batches(_synthetic_batches(),
                                                 the_pipelines_options())


def _perturbed(statistics, change):
  copy = statistics_pb2.DatasetFeatureStatisticsList()
  copy.CopyFrom(statistics)
  change(_feature(copy, "image").num_stats)
  return copy


def _move_count(histogram, count):
  histogram.buckets[0].sample_count += count
  histogram.buckets[1].sample_count -= count


@pytest.mark.parametrize("change,caught", [
    # A field no rule names: compared exactly because the walk is generic.
    pytest.param(lambda s: setattr(s.common_stats, "avg_num_values",
                                   784.0001), True, id="unnamed_field"),
    pytest.param(lambda s: setattr(s, "num_zeros", s.num_zeros + 1), True,
                 id="count"),
    pytest.param(lambda s: setattr(s, "mean", s.mean * (1 + 1e-6)), True,
                 id="mean_1e-6"),
    pytest.param(lambda s: setattr(s, "mean", s.mean * (1 + 1e-12)), False,
                 id="mean_1e-12"),
    # Quantile boundary 4 moved past boundary 5 / by 0.1%.
    pytest.param(lambda s: setattr(s.histograms[1].buckets[3], "high_value",
                                   s.histograms[1].buckets[5].high_value),
                 True, id="quantile_past_neighbour"),
    pytest.param(lambda s: setattr(
        s.histograms[1].buckets[3], "high_value",
        s.histograms[1].buckets[3].high_value * 1.001), False,
                 id="quantile_within_error"),
    pytest.param(lambda s: setattr(s, "median", s.max), True, id="median"),
    # Counts moved between standard buckets: 10% / 0.1% of 1,960,000 values.
    pytest.param(lambda s: _move_count(s.histograms[0], 196000), True,
                 id="histogram_count_10%"),
    pytest.param(lambda s: _move_count(s.histograms[0], 1960), False,
                 id="histogram_count_0.1%"),
])
def test_comparison_catches_what_it_must(synthetic_statistics, change,
                                         caught):
  options = the_pipelines_options()
  assert [h.type for h in _feature(synthetic_statistics, "image")
          .num_stats.histograms] == [statistics_pb2.Histogram.STANDARD,
                                     statistics_pb2.Histogram.QUANTILES]
  found = compare.differences(synthetic_statistics, _perturbed(
      synthetic_statistics, change), options)
  assert bool(found) == caught, found
