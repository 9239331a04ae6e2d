"""Executor of `StatisticsGen`: TFX's, computing in process when Beam would
run in this process anyway.

TFX's executor runs TFDV's Beam transform on a Beam pipeline of its own; on
Beam's DirectRunner (the pipeline's default) that pipeline cost more than
the statistics (~6 s of a full-MNIST run). `choose_path` decides:

- Beam (TFX's executor, unchanged) when the Beam pipeline arguments name a
  runner other than Beam's in-process DirectRunner (Dataflow, Flink, Spark,
  Portable, Prism, ...), when the StatsOptions ask for something only Beam
  computes (`in_process.refusal`), for sharded output, for examples that
  are not tf.Example records, or when the caller made the Beam pipeline;
- else in process (`in_process`: TFDV's generators, no Beam). The Beam
  arguments are then not used: `--direct_num_workers` and the like do not
  apply, and the files are read through tf.io.gfile (`s3://` through
  tensorflow-io, as every task reads them), not Beam's file systems.

Either way one line is printed in the run's log: which path ran and why.
In process, the outputs are TFX's executor's: the artifact's `split_names`
and `span`, its custom properties `stats_dashboard_link` and
`sample_rate_by_split`, and per split `Split-<name>/FeatureStats.pb` (one serialized
DatasetFeatureStatisticsList); the same exec properties are honoured
(`stats_options_json`, `exclude_splits`, `sample_rate_by_split`, the
optional `schema` input).
"""
from __future__ import annotations

import dataclasses
import os
import time
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging
from apache_beam.options import pipeline_options
import tensorflow_data_validation as tfdv
from tfx import types
from tfx.components.statistics_gen import executor as tfx_executor
from tfx.components.util import examples_utils
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import stats_utils
from tfx_bsl.tfxio import tf_example_record
from tfx_bsl.tfxio import tfxio as tfxio_lib

from components.statistics import in_process

STATS_FILE_NAME = tfx_executor.DEFAULT_FILE_NAME  # FeatureStats.pb
# Beam runners that run in this process: `--runner` names matched without
# case, package or "Runner" suffix (DirectRunner, direct, ...).
IN_PROCESS_RUNNERS = ("direct", "switchingdirect", "bundlebaseddirect",
                      "fnapi")
_TELEMETRY_DESCRIPTORS = ["StatisticsGen"]


def beam_runner(beam_pipeline_args: Sequence[str]) -> Optional[str]:
  """The `--runner` the Beam pipeline arguments name, or None."""
  return pipeline_options.PipelineOptions(list(beam_pipeline_args)).view_as(
      pipeline_options.StandardOptions).runner


def runs_in_process(runner: Optional[str]) -> bool:
  """Whether Beam runner `runner` (None: Beam's default, the DirectRunner)
  runs in this process."""
  if not runner:
    return True
  name = runner.rsplit(".", 1)[-1].lower()
  if name.endswith("runner"):
    name = name[:-len("runner")]
  return name in IN_PROCESS_RUNNERS


def choose_path(beam_pipeline_args: Sequence[str],
                stats_options: tfdv.StatsOptions, *,
                examples_are_tf_example: bool = True,
                sharded_output: bool = False,
                custom_beam_pipeline: bool = False) -> Tuple[bool, str]:
  """(in process?, why), for the log line."""
  runner = beam_runner(beam_pipeline_args)
  if not runs_in_process(runner):
    return False, f"on the Beam runner {runner}"
  beam_here = f"on Beam ({runner or 'DirectRunner'})"
  if custom_beam_pipeline:
    return False, f"{beam_here}: the caller made the Beam pipeline"
  if sharded_output:
    return False, f"{beam_here}: sharded statistics output asked for"
  if not examples_are_tf_example:
    return False, f"{beam_here}: the examples are not tf.Example records"
  reason = in_process.refusal(stats_options)
  if reason:
    return False, f"{beam_here}: the StatsOptions ask for {reason}"
  return True, (f"in process (TFDV generators, no Beam; Beam runner "
                f"{runner or 'none named'})")


@dataclasses.dataclass
class _Plan:
  """What TFX's executor reads from its inputs, before it runs Beam."""
  split_names: List[str]
  stats_options: tfdv.StatsOptions
  sample_rate_by_split: Dict[str, float]
  tfxios: Dict[str, tfxio_lib.TFXIO]


def _plan(input_dict: Dict[str, List[types.Artifact]],
          exec_properties: Dict[str, Any]) -> _Plan:
  """Reads the inputs as TFX 1.16's executor does (its `Do` up to the Beam
  pipeline; tfx/components/statistics_gen/executor.py), without writing."""
  exclude_splits = json_utils.loads(
      exec_properties.get(specs.EXCLUDE_SPLITS_KEY, "null")) or []
  if not isinstance(exclude_splits, list):
    raise ValueError("exclude_splits in execution properties needs to be a "
                     f"list. Got {type(exclude_splits)} instead.")
  sample_rate_by_split = json_utils.loads(
      exec_properties.get(specs.SAMPLE_RATE_BY_SPLIT_KEY, "null")) or {}
  examples = artifact_utils.get_single_instance(
      input_dict[specs.EXAMPLES_KEY])
  if examples.has_custom_property(
      examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME):
    splits = list(json_utils.loads(examples.get_string_custom_property(
        examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME)).keys())
  else:
    splits = artifact_utils.decode_split_names(examples.split_names)
  split_names = [split for split in splits if split not in exclude_splits]

  stats_options = tfdv.StatsOptions()
  if exec_properties.get(specs.STATS_OPTIONS_JSON_KEY):
    stats_options = tfdv.StatsOptions.from_json(
        exec_properties[specs.STATS_OPTIONS_JSON_KEY])
  if input_dict.get(specs.SCHEMA_KEY):
    if stats_options.schema:
      raise ValueError(
          "A schema was provided as an input and the stats_options "
          "exec_property also contains a schema value. At most one of these "
          "may be set.")
    stats_options.schema = io_utils.SchemaReader().read(
        io_utils.get_only_uri_in_dir(artifact_utils.get_single_uri(
            input_dict[specs.SCHEMA_KEY])))

  tfxio_schema = None
  if stats_options.experimental_filter_read_paths:
    if stats_options.feature_allowlist:
      for path in stats_options.feature_allowlist:
        if isinstance(path, str):
          raise ValueError("experimental_filter_read_paths requires allowlist "
                           "passed as paths.")
      tfxio_schema = tfdv.generate_dummy_schema_with_paths(
          stats_options.feature_allowlist)
    elif stats_options.schema is None:
      raise ValueError("experimental_filter_read_paths requires allowlist "
                       "features or schema.")
    else:
      tfxio_schema = stats_options.schema
  if not split_names:
    raise ValueError(f"No splits for examples artifact: {examples}")
  tfxios = {split: tfxio_utils.get_split_tfxio(
      examples=[examples], split=split,
      telemetry_descriptors=_TELEMETRY_DESCRIPTORS, schema=tfxio_schema)
            for split in split_names}
  return _Plan(split_names, stats_options, sample_rate_by_split, tfxios)


def _split_options(plan: _Plan, split: str) -> tfdv.StatsOptions:
  """The split's StatsOptions: its own sample rate if one is given."""
  options = tfdv.StatsOptions.from_json(plan.stats_options.to_json())
  if plan.sample_rate_by_split.get(split) is not None:
    options.sample_rate = plan.sample_rate_by_split[split]
  return options


def _describe(counts: Dict[str, int]) -> str:
  """`42,000 + 18,000 examples (train, eval)`."""
  return (" + ".join(f"{n:,}" for n in counts.values()) +
          f" examples ({', '.join(counts)})")


class Executor(tfx_executor.Executor):
  """TFX's StatisticsGen executor, in process unless `choose_path` picks
  Beam."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    start = time.perf_counter()
    plan = _plan(input_dict, exec_properties)
    sharded_output = bool(exec_properties.get(specs.SHARDED_STATS_OUTPUT_KEY))
    here, why = choose_path(
        self._beam_pipeline_args, plan.stats_options,
        examples_are_tf_example=all(
            isinstance(t, tf_example_record.TFExampleRecord)
            for t in plan.tfxios.values()),
        sharded_output=sharded_output and
        tfdv.default_sharded_output_supported(),
        custom_beam_pipeline=self._make_beam_pipeline_fn is not None)
    if not here:
      print(f"statistics: {why}", flush=True)  # the run's log, as epochs
      super().Do(input_dict, output_dict, exec_properties)
      return
    self._log_startup(input_dict, output_dict, exec_properties)
    if sharded_output:  # asked for, not supported: as TFX's executor
      raise ValueError("Sharded output requested but not supported.")
    self._write_properties(input_dict, output_dict, plan)
    counts = {}
    for split in plan.split_names:
      statistics = in_process.statistics_of_tfxio(
          plan.tfxios[split], _split_options(plan, split),
          seed=zlib.crc32(split.encode()))  # each split its own sample
      counts[split] = sum(d.num_examples for d in statistics.datasets)
      output_uri = artifact_utils.get_split_uri(
          output_dict[specs.STATISTICS_KEY], split)
      io_utils.write_bytes_file(os.path.join(output_uri, STATS_FILE_NAME),
                                statistics.SerializeToString())
    print(f"statistics: {why}, {_describe(counts)}, "
          f"{time.perf_counter() - start:.1f} s", flush=True)

  def _write_properties(self, input_dict: Dict[str, List[types.Artifact]],
                        output_dict: Dict[str, List[types.Artifact]],
                        plan: _Plan) -> None:
    """The output artifact's properties, as TFX's executor sets them."""
    examples = artifact_utils.get_single_instance(
        input_dict[specs.EXAMPLES_KEY])
    statistics = artifact_utils.get_single_instance(
        output_dict[specs.STATISTICS_KEY])
    statistics.split_names = artifact_utils.encode_split_names(
        plan.split_names)
    statistics.span = examples.span
    try:
      link = stats_utils.generate_stats_dashboard_link(statistics)
    except Exception as e:  # pylint: disable=broad-except
      logging.exception("Failed to generate stats dashboard link because %s",
                        e)
      link = ""
    statistics.set_string_custom_property(tfx_executor.STATS_DASHBOARD_LINK,
                                          link)
    rates = {split: plan.stats_options.sample_rate or 1.0
             for split in plan.split_names}
    for split, rate in plan.sample_rate_by_split.items():
      if split not in plan.split_names:
        logging.error("Split %s provided in sample_rate_by_split is not "
                      "valid.", split)
        continue
      rates[split] = rate
    statistics.set_json_value_custom_property(
        tfx_executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME,
        json_utils.dumps(rates))
