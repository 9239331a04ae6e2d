"""The model in service and the best one ever pushed: what a candidate is
compared with (the Evaluator's baseline and its cumulative guard)."""
from __future__ import annotations

import dataclasses
import json
from typing import Optional, Tuple

from serving import registry
from serving import versions


@dataclasses.dataclass(frozen=True)
class InService:
  """What `SERVING_DIR` holds: the version in service and the best ever.

  As JSON (`to_json`) it is the baseline lookup's cache key: the lookup
  outputs exactly what the key says, whatever the directory holds by the
  time it runs (see `components.baseline`).
  """
  version_dir: Optional[str]  # the newest complete version; None: nothing
  source_model: Optional[str]  # the Trainer artifact it was pushed from
  best_ever_accuracy: Optional[float]  # highest eval accuracy recorded
  best_ever_version: Optional[str]
  # Complete versions whose accuracy is unknown (no record): the best-ever
  # guard cannot count them.
  unrecorded: Tuple[int, ...] = ()

  @property
  def version(self) -> str:
    """The version in service, as `versions.serving_state` names it."""
    return (versions.version_name(self.version_dir)
            if self.version_dir else versions.NO_VERSION)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "InService":
    values = json.loads(text)
    values["unrecorded"] = tuple(values.get("unrecorded") or ())
    return cls(**values)


def in_service(serving_model_dir: str) -> InService:
  """The version in service (None if nothing was pushed) and the best
  accuracy recorded among the versions there (None if none records one)."""
  records = registry.records(serving_model_dir)
  best = registry.best_record(records)
  latest = records[-1] if records else None
  return InService(
      version_dir=latest["path"] if latest else None,
      source_model=(latest.get("source_model") or latest["path"]
                    if latest else None),
      best_ever_accuracy=(float(best[registry.ACCURACY_KEY]) if best
                          else None),
      best_ever_version=str(best["version"]) if best else None,
      unrecorded=tuple(r["version"] for r in records
                       if not isinstance(r.get(registry.ACCURACY_KEY),
                                         (int, float))))
