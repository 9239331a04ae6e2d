"""`Report`: the run report, the last component of the DAG on every
orchestrator. Never cached: it describes this run."""
import json
from typing import Any, Dict, Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components import artifact_types
from components import fingerprint
from components.report import executor


class ReportSpec(ComponentSpec):
  PARAMETERS = {
      "run_settings": ExecutionParameter(type=str),
      "metadata_path": ExecutionParameter(type=str, optional=True),
      "code_fingerprint": ExecutionParameter(type=str),
  }
  INPUTS = {
      "examples": ChannelParameter(type=standard_artifacts.Examples),
      "model": ChannelParameter(type=standard_artifacts.Model),
      "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
      "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
      "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
      "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
      "test_metrics": ChannelParameter(type=artifact_types.Metrics),
      "confusion_matrix": ChannelParameter(
          type=artifact_types.ClassificationMetrics),
      "hyperparameters": ChannelParameter(
          type=standard_artifacts.HyperParameters, optional=True),
      "tuner_results": ChannelParameter(
          type=standard_artifacts.TunerResults, optional=True),
  }
  OUTPUTS = {
      "report": ChannelParameter(type=artifact_types.RunReport),
      "report_markdown": ChannelParameter(type=artifact_types.Markdown),
      "report_html": ChannelParameter(type=artifact_types.HTML),
  }


class Report(base_component.BaseComponent):
  """Writes `report` (a directory: summary.json, report.md, report.html and
  report/*.png), and the same report as `report_markdown` and `report_html`
  (single self-contained files, KFP `system.Markdown` / `system.HTML`, which
  the KFP UI displays).

  `run_settings`: the pipeline's settings (pipeline_name, dataset,
  serving_model_dir, min_accuracy, max_accuracy_drop, trainer: the Trainer's
  custom_config, settings: everything, for the record). `metadata_path`: the
  local runner's ML Metadata file, read for each component's state and
  duration (Kubeflow shows them in its UI).
  """
  SPEC_CLASS = ReportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, *, run_settings: Dict[str, Any],
               metadata_path: Optional[str] = None, **inputs: types.BaseChannel):
    super().__init__(ReportSpec(
        run_settings=json.dumps(run_settings, sort_keys=True, default=str),
        metadata_path=metadata_path,
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__),
        report=types.Channel(type=artifact_types.RunReport),
        report_markdown=types.Channel(type=artifact_types.Markdown),
        report_html=types.Channel(type=artifact_types.HTML),
        **inputs))
