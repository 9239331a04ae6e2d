"""`BaselineEvaluator`: TFX's Evaluator whose baseline may be "none yet"."""
from tfx.components import Evaluator
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components import fingerprint
from components.evaluator import executor


class BaselineEvaluatorSpec(standard_component_specs.EvaluatorSpec):
  PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS,
                "code_fingerprint": ExecutionParameter(type=str)}


class BaselineEvaluator(Evaluator):
  """TFMA evaluation and blessing against `LatestPushedModel`'s output.

  Takes TFX Evaluator's arguments; the fingerprint of this package's code
  is added to its execution properties (the cache key).
  """
  SPEC_CLASS = BaselineEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, **kwargs):
    tfx_spec = Evaluator(**kwargs).spec  # TFX's argument handling
    base_component.BaseComponent.__init__(self, spec=BaselineEvaluatorSpec(
        **tfx_spec.exec_properties, **tfx_spec.inputs, **tfx_spec.outputs,
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__)))
