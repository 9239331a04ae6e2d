"""`LatestPushedModel`: the baseline for the Evaluator, on every orchestrator.

It replaces TFX's `Resolver(LatestBlessedModelStrategy)`, which needs ML
Metadata queries that the open-source Kubeflow Pipelines v2 backend does not
run. The model in service is the newest complete integer version in the
serving directory the Pusher writes; the Pusher's `registry.json` adds which
Trainer run it came from. Its output must never come from cache, because the
serving directory changes between runs: runners that build the DAG just
before running it pass `serving_state` (the version in service), which is
part of the cache key; a DAG compiled for later runs (Kubeflow) has none and
its task's caching is turned off.
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
                "serving_state": ExecutionParameter(type=str, optional=True),
                "code_fingerprint": ExecutionParameter(type=str)}
  INPUTS = {}
  OUTPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}


class LatestPushedModel(base_component.BaseComponent):
  """Outputs a `Model` holding the model in service (custom property
  `found` = 0 and no files when nothing has been pushed yet)."""
  SPEC_CLASS = LatestPushedModelSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, serving_model_dir: str,
               serving_state: Optional[str] = None):
    super().__init__(LatestPushedModelSpec(
        serving_model_dir=serving_model_dir, serving_state=serving_state,
        code_fingerprint=fingerprint.code_fingerprint(
            "components.baseline", "serving"),
        model=types.Channel(type=standard_artifacts.Model)))
