"""`StatisticsGen`: TFX's StatisticsGen with this package's executor.

Same node id, arguments, output and files as TFX's, so ExampleValidator and
everything after it read it unchanged; the executor computes the statistics
in process unless the Beam pipeline arguments name a runner elsewhere
(`executor.choose_path`). `.with_beam_pipeline_args` works as on TFX's.
"""
import tensorflow_data_validation as tfdv
from tfx.components.statistics_gen import component as tfx_component
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components import fingerprint
from components.statistics import executor


def stats_options(sample_rate: float = 1.0) -> tfdv.StatsOptions:
  """The StatsOptions the pipeline's StatisticsGen runs with: every example
  unless `sample_rate` < 1 (STATS_SAMPLE_RATE); top-k as a sketch, which
  the in-process path needs (exact top-k runs only on Beam)."""
  return tfdv.StatsOptions(sample_rate=sample_rate,
                           use_sketch_based_topk_uniques=True)


class StatisticsGenSpec(standard_component_specs.StatisticsGenSpec):
  PARAMETERS = {**standard_component_specs.StatisticsGenSpec.PARAMETERS,
                "code_fingerprint": ExecutionParameter(type=str)}


class StatisticsGen(tfx_component.StatisticsGen):
  """TFDV statistics of every split of `examples`.

  Takes TFX StatisticsGen's arguments; the fingerprint of this package's
  code is added to its execution properties (the cache key).
  """
  SPEC_CLASS = StatisticsGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, **kwargs):
    tfx_spec = tfx_component.StatisticsGen(**kwargs).spec  # TFX's handling
    base_component.BaseComponent.__init__(self, spec=StatisticsGenSpec(
        **tfx_spec.exec_properties, **tfx_spec.inputs, **tfx_spec.outputs,
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__)))
