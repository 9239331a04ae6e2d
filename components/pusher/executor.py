"""TFX Pusher executor that pushes with `versions.push`: atomic, with the
version's record inside it (`serving.registry`: the candidate's eval
accuracy from the blessing, its source, what it was compared with), and
compare-and-swap: only if the version in service is still the one the
Evaluator compared the candidate with; otherwise `ServingChangedError`, in
one line, and nothing is pushed. `registry.json`, the index of the records,
is rebuilt after the push."""
from __future__ import annotations

import os
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from components.evaluator import blessing as blessing_lib
from serving import registry
from serving import versions


NEW_VERSION_KEY = "new_version"
# Set when the version this Pusher reports is no longer the one in service:
# a retry whose push had happened, since succeeded by another run's push.
SUCCEEDED_BY_KEY = "succeeded_by"


def push_record(model: types.Artifact, blessing: types.Artifact,
                pipeline_run_id: str = "") -> Dict[str, Any]:
  """What a pushed version's record says about it."""
  record = {"source_model": model.uri,
            "compared_with": blessing_lib.compared_with(blessing)}
  accuracy = blessing_lib.candidate_accuracy(blessing)
  if accuracy is not None:
    record[registry.ACCURACY_KEY] = accuracy
  if pipeline_run_id:
    record["run_id"] = pipeline_run_id
  return record


class Executor(tfx_pusher_executor.Executor):
  """Like TFX's filesystem Pusher, but staged + renamed, never overwriting."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    model_path = self.GetModelPath(input_dict)
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        destination)
    serving_model_dir = destination.filesystem.base_directory
    blessing = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.MODEL_BLESSING_KEY])
    model = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.MODEL_KEY])
    context = getattr(self, "_context", None)
    record = push_record(model, blessing,
                         getattr(context, "pipeline_run_id", "") or "")
    with versions.serving_lock(serving_model_dir):
      serving_path, created = versions.push(
          model_path, serving_model_dir, record,
          expected=blessing_lib.compared_with(blessing))
      in_service = versions.serving_state(serving_model_dir)
      registry.rebuild_index(serving_model_dir)
    io_utils.copy_dir(model_path, model_push.uri)  # archive, as TFX does
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=versions.version_name(serving_path))
    # 0: this exact model was already the latest version in service.
    model_push.set_int_custom_property(NEW_VERSION_KEY, int(created))
    if versions.version_name(serving_path) != in_service:
      model_push.set_string_custom_property(SUCCEEDED_BY_KEY, in_service)
