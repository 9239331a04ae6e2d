"""Executor of `LatestPushedModel`: copies the model in service into a
`Model` artifact, so the Evaluator can compare the candidate with it, and
notes on it the best eval accuracy ever pushed (the cumulative guard's)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components.pusher import registry
from components.pusher import versioning

FOUND_KEY = "found"  # 1: the artifact holds the model in service; 0: none
VERSION_DIR_KEY = "version_dir"
SOURCE_MODEL_KEY = "source_model"  # the Trainer's artifact that was pushed
# The highest eval accuracy in `registry.json` and its version; absent when
# no entry records one (nothing pushed yet, or only before it was recorded).
BEST_EVER_ACCURACY_KEY = "best_ever_accuracy"
BEST_EVER_VERSION_KEY = "best_ever_version"


def has_model(artifact: types.Artifact) -> bool:
  return bool(artifact.get_int_custom_property(FOUND_KEY))


def best_ever(artifact: types.Artifact) -> Optional[Tuple[float, str]]:
  """(best accuracy ever pushed, its version) noted on `artifact`, or None."""
  if not artifact.has_custom_property(BEST_EVER_ACCURACY_KEY):
    return None
  return (artifact.get_float_custom_property(BEST_EVER_ACCURACY_KEY),
          artifact.get_string_custom_property(BEST_EVER_VERSION_KEY))


class Executor(base_executor.BaseExecutor):
  """Fills the output `Model` with the newest complete serving version."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del input_dict
    model = artifact_utils.get_single_instance(output_dict["model"])
    serving_model_dir = exec_properties["serving_model_dir"]
    best = registry.best_entry(serving_model_dir)
    if best:
      model.set_float_custom_property(BEST_EVER_ACCURACY_KEY,
                                      float(best[registry.ACCURACY_KEY]))
      model.set_string_custom_property(BEST_EVER_VERSION_KEY,
                                       str(best["version"]))
    version_dir = versioning.latest_version_dir(serving_model_dir)
    if version_dir is None:
      logging.info("no model in service under %s: no baseline",
                   serving_model_dir)
      model.set_int_custom_property(FOUND_KEY, 0)
      return
    io_utils.copy_dir(version_dir, path_utils.serving_model_dir(model.uri))
    entry = registry.entry_for(serving_model_dir,
                               int(os.path.basename(version_dir))) or {}
    model.set_int_custom_property(FOUND_KEY, 1)
    model.set_string_custom_property(VERSION_DIR_KEY, version_dir)
    model.set_string_custom_property(SOURCE_MODEL_KEY,
                                     entry.get("source_model", version_dir))
    logging.info("baseline: %s", version_dir)
