"""What the Evaluator records on its blessing, for the Pusher and the report.

Light on purpose (no TFMA import): the Pusher reads it.
"""
from __future__ import annotations

from typing import Optional

from tfx import types

from components import artifact_properties
from serving import versions

# The pushed version the candidate was compared with, and the Trainer
# artifact that version came from (set only when there was a baseline).
BASELINE_VERSION_DIR_KEY = "baseline_version_dir"
BASELINE_SOURCE_MODEL_KEY = "baseline_source_model"
# The version in service when evaluated, as `versions.serving_state` says
# it ("none" when nothing was): the Pusher pushes only if it still is.
COMPARED_WITH_KEY = "compared_with"
CANDIDATE_ACCURACY_KEY = "candidate_accuracy"  # overall, on the eval split
RESCORED_KEY = "rescored_versions"  # JSON {version: eval accuracy}
# The best ever, as the baseline lookup found it (the same keys).
BEST_EVER_ACCURACY_KEY = artifact_properties.BEST_EVER_ACCURACY_KEY
BEST_EVER_VERSION_KEY = artifact_properties.BEST_EVER_VERSION_KEY
NO_VERSION = versions.NO_VERSION


version_name = versions.version_name


def compared_with(blessing: types.Artifact) -> str:
  """The version in service when `blessing` was made ("none": nothing).

  Blessings made before `compared_with` was recorded have only
  `baseline_version_dir`, set when there was a baseline.
  """
  if blessing.has_custom_property(COMPARED_WITH_KEY):
    return blessing.get_string_custom_property(COMPARED_WITH_KEY)
  if blessing.has_custom_property(BASELINE_VERSION_DIR_KEY):
    version_dir = blessing.get_string_custom_property(BASELINE_VERSION_DIR_KEY)
    if version_dir:
      return version_name(version_dir)
  return NO_VERSION


def candidate_accuracy(blessing: types.Artifact) -> Optional[float]:
  if not blessing.has_custom_property(CANDIDATE_ACCURACY_KEY):
    return None
  return blessing.get_float_custom_property(CANDIDATE_ACCURACY_KEY)


def best_ever_accuracy(blessing: types.Artifact) -> Optional[float]:
  if not blessing.has_custom_property(BEST_EVER_ACCURACY_KEY):
    return None
  return blessing.get_float_custom_property(BEST_EVER_ACCURACY_KEY)
