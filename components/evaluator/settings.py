"""The gate's settings: the one home of every rule's number (no TFMA import,
so the pipeline's config can hold it). A dataset's own defaults
(MIN_ACCURACY, MAX_CLASS_ACCURACY_DROP) are facts of the dataset, in its
`components.ingestion.datasets.DatasetInfo`.

A new rule: a field here (its default, its resolution for a dataset, and
whether a value is looser than the default), its threshold in
`eval_config.make_eval_config`, and one row of `pipeline.config.ENV_SETTINGS`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

from components.ingestion import datasets

DEFAULT_MAX_ACCURACY_DROP = 0.002
# The class floor when MIN_CLASS_ACCURACY is not given: MIN_ACCURACY − 0.3.
# On three retrainings (seeds 1-3) of a dense_512-like net, 5 epochs, 18,000
# held-out images, the hardest class scored 0.585-0.679 on Fashion-MNIST
# (shirt; 0.87-0.88 overall) and 0.952-0.962 on MNIST, so the floor (fashion
# 0.50, mnist 0.60) refuses a collapsed class, not an ordinary hard one.
CLASS_ACCURACY_MARGIN = 0.3
# `eval_config.make_eval_config`'s per-class drop when its caller gives none
# (MNIST's; a pipeline's comes from MAX_CLASS_ACCURACY_DROP or the dataset).
DEFAULT_MAX_CLASS_ACCURACY_DROP = 0.05
# Each rule's field and its setting's name (`pipeline.config.ENV_SETTINGS`).
ENV_NAMES = {"min_accuracy": "MIN_ACCURACY",
             "max_accuracy_drop": "MAX_ACCURACY_DROP",
             "min_class_accuracy": "MIN_CLASS_ACCURACY",
             "max_class_accuracy_drop": "MAX_CLASS_ACCURACY_DROP"}


def is_fraction(value: float) -> bool:
  """Whether `value` is a number in [0, 1] (an accuracy, or a drop of one):
  NaN, which no comparison refuses, is not."""
  return isinstance(value, (int, float)) and math.isfinite(value) and \
      0 <= value <= 1


def default_min_class_accuracy(min_accuracy: float) -> float:
  """The class floor when MIN_CLASS_ACCURACY is not given."""
  return round(max(0.0, min_accuracy - CLASS_ACCURACY_MARGIN), 6)


@dataclasses.dataclass(frozen=True)
class GateSettings:
  """What a candidate must score to be pushed (None: the dataset's default).

  MIN_ACCURACY, MAX_ACCURACY_DROP (below the model in service, and below
  the best ever pushed), MIN_CLASS_ACCURACY (None: MIN_ACCURACY − 0.3),
  MAX_CLASS_ACCURACY_DROP; a gate looser than the defaults pushes into a
  lineage of its own (`-loose`) unless ALLOW_LOOSE_GATE=1.
  """
  min_accuracy: Optional[float] = None
  max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
  min_class_accuracy: Optional[float] = None
  max_class_accuracy_drop: Optional[float] = None
  allow_loose_gate: bool = False

  def __post_init__(self):
    # A NaN threshold passes no candidate and is not "looser" either: it
    # would freeze a lineage silently. Refused before any work.
    for field, name in ENV_NAMES.items():
      value = getattr(self, field)
      if value is not None and not is_fraction(value):
        raise ValueError(f"{name}={value!r} is not a number between 0 and 1")

  def accuracy_threshold(self, dataset: str) -> float:
    if self.min_accuracy is not None:
      return self.min_accuracy
    return datasets.get_dataset_info(dataset).min_accuracy

  def class_accuracy_threshold(self, dataset: str) -> float:
    if self.min_class_accuracy is not None:
      return self.min_class_accuracy
    return default_min_class_accuracy(self.accuracy_threshold(dataset))

  def class_drop_threshold(self, dataset: str) -> float:
    """MAX_CLASS_ACCURACY_DROP, or the dataset's default (`DatasetInfo`)."""
    if self.max_class_accuracy_drop is not None:
      return self.max_class_accuracy_drop
    return datasets.get_dataset_info(dataset).max_class_accuracy_drop

  def loose_settings(self, dataset: str) -> Tuple[str, ...]:
    """The settings set looser than the dataset's defaults (a lower floor
    or a larger allowed drop), by their environment names."""
    default = GateSettings()
    default_min = default.accuracy_threshold(dataset)
    loose = []
    if self.accuracy_threshold(dataset) < default_min:
      loose.append("MIN_ACCURACY")
    if self.max_accuracy_drop > DEFAULT_MAX_ACCURACY_DROP:
      loose.append("MAX_ACCURACY_DROP")
    if (self.class_accuracy_threshold(dataset) <
        default_min_class_accuracy(default_min)):
      loose.append("MIN_CLASS_ACCURACY")
    if (self.class_drop_threshold(dataset) >
        default.class_drop_threshold(dataset)):
      loose.append("MAX_CLASS_ACCURACY_DROP")
    return tuple(loose)

  def eval_config(self, dataset: str):
    """The TFMA EvalConfig these settings make for `dataset`."""
    from components.evaluator import eval_config  # pylint: disable=g-import-not-at-top
    return eval_config.make_eval_config(
        self.accuracy_threshold(dataset), self.max_accuracy_drop,
        min_class_accuracy=self.min_class_accuracy,
        max_class_accuracy_drop=self.class_drop_threshold(dataset))
