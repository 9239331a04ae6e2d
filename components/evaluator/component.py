"""`BaselineEvaluator`: TFX's Evaluator whose baseline may be "none yet"."""
from tfx.components import Evaluator
from tfx.dsl.components.base import executor_spec

from components.evaluator import executor


class BaselineEvaluator(Evaluator):
  """TFMA evaluation and blessing against `LatestPushedModel`'s output."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
