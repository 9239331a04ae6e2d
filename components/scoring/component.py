"""`TestSplitScorer`: scores the candidate and the model in service on the
official test split, for the report and the KFP UI (not for the gate)."""
import json
from typing import Sequence

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components import fingerprint
from components import artifact_types
from components.scoring import executor


class TestSplitScorerSpec(ComponentSpec):
  PARAMETERS = {"class_names": ExecutionParameter(type=str),
                "code_fingerprint": ExecutionParameter(type=str)}
  INPUTS = {
      "examples": ChannelParameter(type=standard_artifacts.Examples),
      "model": ChannelParameter(type=standard_artifacts.Model),
      "baseline_model": ChannelParameter(type=standard_artifacts.Model),
  }
  OUTPUTS = {
      "metrics": ChannelParameter(type=artifact_types.Metrics),
      "confusion_matrix": ChannelParameter(
          type=artifact_types.ClassificationMetrics),
  }


class TestSplitScorer(base_component.BaseComponent):
  """Outputs `metrics` (test accuracy of the candidate and of the baseline,
  KFP `system.Metrics`) and the candidate's `confusion_matrix` (KFP
  `system.ClassificationMetrics`, with a few sample predictions)."""
  SPEC_CLASS = TestSplitScorerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: types.BaseChannel, class_names: Sequence[str]):
    super().__init__(TestSplitScorerSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        class_names=json.dumps(list(class_names)),
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__),
        metrics=types.Channel(type=artifact_types.Metrics),
        confusion_matrix=types.Channel(
            type=artifact_types.ClassificationMetrics)))
