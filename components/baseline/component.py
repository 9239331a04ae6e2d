"""`LatestPushedModel`: the baseline for the Evaluator, on every orchestrator.

It replaces TFX's `Resolver(LatestBlessedModelStrategy)`, which needs ML
Metadata queries that the open-source Kubeflow Pipelines v2 backend does not
run. The model in service is the newest complete integer version in the
serving directory the Pusher writes; each version's record
(`serving.registry`) adds which Trainer run it came from, and the best
accuracy among them is the cumulative guard's.

Its output must never stand for another state of the serving directory than
the one it describes. Runners that build the DAG just before running it
(local) pass `in_service`, the state read then (`serving.baseline.InService`
as JSON), which is the cache key and exactly what the executor outputs: the
version it names, even if another run pushes between the build and the
lookup (the Pusher's compare-and-swap then refuses, and the next run
compares with the new version). A DAG compiled for later runs (Kubeflow)
has none: its task reads the directory when it runs and is never cached.
"""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components import fingerprint
from components.baseline import executor


class LatestPushedModelSpec(ComponentSpec):
  PARAMETERS = {"serving_model_dir": ExecutionParameter(type=str),
                "in_service": ExecutionParameter(type=str, optional=True),
                "code_fingerprint": ExecutionParameter(type=str)}
  INPUTS = {}
  OUTPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}


class LatestPushedModel(base_component.BaseComponent):
  """Outputs a `Model` holding the model in service (custom property
  `found` = 0 and no files when nothing has been pushed yet)."""
  SPEC_CLASS = LatestPushedModelSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, serving_model_dir: str,
               in_service: Optional[str] = None):
    super().__init__(LatestPushedModelSpec(
        serving_model_dir=serving_model_dir, in_service=in_service,
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__),
        model=types.Channel(type=standard_artifacts.Model)))
