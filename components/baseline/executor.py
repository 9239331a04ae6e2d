"""Executor of `LatestPushedModel`: copies the model in service into a
`Model` artifact, so the Evaluator can compare the candidate with it, and
notes on it the best eval accuracy ever pushed (the cumulative guard's)."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components import artifact_properties
from serving import baseline
from serving import versions

FOUND_KEY = "found"  # 1: the artifact holds the model in service; 0: none
VERSION_DIR_KEY = "version_dir"
SOURCE_MODEL_KEY = "source_model"  # the Trainer's artifact that was pushed
# The highest eval accuracy among the versions' records and its version;
# absent when none records one (nothing pushed yet).
BEST_EVER_ACCURACY_KEY = artifact_properties.BEST_EVER_ACCURACY_KEY
BEST_EVER_VERSION_KEY = artifact_properties.BEST_EVER_VERSION_KEY
# The directories of versions whose accuracy no record states, as a JSON
# list: the Evaluator scores them for the best-ever guard.
UNRECORDED_KEY = "unrecorded_version_dirs"


class BaselineGoneError(RuntimeError):
  """The version in service when the run started was removed since."""


def has_model(artifact: types.Artifact) -> bool:
  return bool(artifact.get_int_custom_property(FOUND_KEY))


def unrecorded_version_dirs(artifact: types.Artifact) -> List[str]:
  """The versions noted on `artifact` whose accuracy no record states."""
  if not artifact.has_custom_property(UNRECORDED_KEY):
    return []
  return json.loads(artifact.get_string_custom_property(UNRECORDED_KEY))


def best_ever(artifact: types.Artifact) -> Optional[Tuple[float, str]]:
  """(best accuracy ever pushed, its version) noted on `artifact`, or None."""
  if not artifact.has_custom_property(BEST_EVER_ACCURACY_KEY):
    return None
  return (artifact.get_float_custom_property(BEST_EVER_ACCURACY_KEY),
          artifact.get_string_custom_property(BEST_EVER_VERSION_KEY))


class Executor(base_executor.BaseExecutor):
  """Fills the output `Model` with the model in service: the state named by
  `in_service` when given (the cache key), else the directory as it is."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del input_dict
    model = artifact_utils.get_single_instance(output_dict["model"])
    serving_model_dir = exec_properties["serving_model_dir"]
    keyed = exec_properties.get("in_service")
    found = (baseline.InService.from_json(keyed) if keyed else
             baseline.in_service(serving_model_dir))
    if found.best_ever_accuracy is not None:
      model.set_float_custom_property(BEST_EVER_ACCURACY_KEY,
                                      found.best_ever_accuracy)
      model.set_string_custom_property(BEST_EVER_VERSION_KEY,
                                       found.best_ever_version)
    if found.unrecorded:
      model.set_string_custom_property(UNRECORDED_KEY, json.dumps([
          versions.version_dir(serving_model_dir, v)
          for v in found.unrecorded]))
    if found.version_dir is None:
      logging.info("no model in service under %s: no baseline",
                   serving_model_dir)
      model.set_int_custom_property(FOUND_KEY, 0)
      return
    if not versions.is_complete(found.version_dir):
      raise BaselineGoneError(
          f"{found.version_dir}: the version in service when this run "
          "started is gone (removed or rolled back meanwhile); rerun to "
          "compare with the model in service now")
    io_utils.copy_dir(found.version_dir,
                      path_utils.serving_model_dir(model.uri))
    model.set_int_custom_property(FOUND_KEY, 1)
    model.set_string_custom_property(VERSION_DIR_KEY, found.version_dir)
    model.set_string_custom_property(SOURCE_MODEL_KEY, found.source_model)
    logging.info("baseline: %s", found.version_dir)
