"""The model in service and the best one ever pushed: what a candidate is
compared with (the Evaluator's baseline and its cumulative guard)."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from serving import registry
from serving import versions


@dataclasses.dataclass(frozen=True)
class InService:
  """What `SERVING_DIR` holds now."""
  version_dir: Optional[str]  # the newest complete version; None: nothing
  source_model: Optional[str]  # the Trainer artifact it was pushed from
  best_ever_accuracy: Optional[float]  # highest eval accuracy in the registry
  best_ever_version: Optional[str]


def in_service(serving_model_dir: str) -> InService:
  """The version in service (None if nothing was pushed) and the best
  accuracy ever pushed (None if no registry entry records one)."""
  best = registry.best_entry(serving_model_dir)
  version_dir = versions.latest_version_dir(serving_model_dir)
  entry = (registry.entry_for(serving_model_dir,
                              int(os.path.basename(version_dir)))
           if version_dir else None) or {}
  return InService(
      version_dir=version_dir,
      source_model=entry.get("source_model", version_dir),
      best_ever_accuracy=(float(best[registry.ACCURACY_KEY]) if best
                          else None),
      best_ever_version=str(best["version"]) if best else None)
