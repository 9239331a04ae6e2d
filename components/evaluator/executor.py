"""TFX's Evaluator executor, told "no baseline" by `LatestPushedModel`.

`LatestPushedModel` always emits a `Model` artifact; when nothing is in
service yet it is empty (`found` = 0). TFX's Evaluator treats any baseline
artifact as a model to load, so this executor drops an empty one first (TFMA
then ignores the change threshold and the value threshold alone decides),
and records on the blessing which pushed version was the baseline.
"""
from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components.baseline import executor as baseline_executor

BASELINE_KEY = standard_component_specs.BASELINE_MODEL_KEY
# Custom properties of the blessing: the pushed version the candidate was
# compared with, and the Trainer artifact that version came from.
BASELINE_VERSION_DIR_KEY = "baseline_version_dir"
BASELINE_SOURCE_MODEL_KEY = "baseline_source_model"


class Executor(tfx_evaluator_executor.Executor):
  """Evaluates the candidate, against the model in service if there is one."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    input_dict = dict(input_dict)
    baseline = [a for a in input_dict.pop(BASELINE_KEY, [])
                if baseline_executor.has_model(a)]
    if baseline:
      input_dict[BASELINE_KEY] = baseline
    super().Do(input_dict, output_dict, exec_properties)
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    if baseline:
      blessing.set_string_custom_property(
          BASELINE_VERSION_DIR_KEY, baseline[0].get_string_custom_property(
              baseline_executor.VERSION_DIR_KEY))
      blessing.set_string_custom_property(
          BASELINE_SOURCE_MODEL_KEY, baseline[0].get_string_custom_property(
              baseline_executor.SOURCE_MODEL_KEY))
