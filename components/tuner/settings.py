"""The Tuner's settings (TUNE, TUNE_TRIALS, ...; no KerasTuner import, so the
pipeline's config can hold them). A new setting: a field here and one row of
`pipeline.config.ENV_SETTINGS`; `to_custom_config` hands every field but
`enabled` and `tune_from` to `tuner_fn`, and `record` names each in
summary.json."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

ALGORITHMS = ("random", "hyperband", "bayesian")
FAMILIES = ("dense", "cnn")
# Fields that only shape the DAG: not `tuner_fn`'s, not the Tuner's cache key.
DAG_FIELDS = ("enabled", "tune_from")


@dataclasses.dataclass(frozen=True)
class TunerSettings:
  """TUNE=1: TFX's Tuner (KerasTuner) searches `trials` trials of up to
  `epochs` epochs with `algorithm` over the model `families`, and the
  Trainer trains its best hyperparameters. TUNE_FROM: an earlier Tuner's
  best_hyperparameters directory, trained without a search. The search is
  seeded with the run's SEED."""
  enabled: bool = False
  trials: int = 10
  epochs: int = 2  # per trial (Hyperband: at most)
  algorithm: str = "random"
  families: Tuple[str, ...] = FAMILIES
  tune_from: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, "families", tuple(self.families))
    if self.algorithm not in ALGORITHMS:
      raise ValueError(f"unknown tuning algorithm {self.algorithm!r}; choose "
                       f"one of {list(ALGORITHMS)}")
    unknown = set(self.families) - set(FAMILIES) or not self.families
    if unknown:
      raise ValueError(f"unknown model families {sorted(self.families)}; "
                       f"choose from {list(FAMILIES)}")
    for name in ("trials", "epochs"):
      if getattr(self, name) < 1:
        raise ValueError(f"tune {name} must be >= 1, got {getattr(self, name)}")

  @classmethod
  def search_fields(cls) -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls)
                 if f.name not in DAG_FIELDS)

  def to_custom_config(self, seed: int) -> Dict[str, Any]:
    """The search's settings and its seed, as `tuner_fn` reads them back."""
    values = {name: getattr(self, name) for name in self.search_fields()}
    return dict(values, families=list(self.families), seed=seed)

  @classmethod
  def from_custom_config(cls, custom_config: Optional[Mapping[str, Any]]
                         ) -> "TunerSettings":
    fields = cls.search_fields()
    return cls(**{k: v for k, v in (custom_config or {}).items()
                  if k in fields}, enabled=True)

  def record(self) -> Dict[str, Any]:
    """By their names in summary.json's settings (`tune`, `tune_trials`,
    ..., `tune_from`)."""
    def name(field):
      return ("tune" if field == "enabled" else
              field if field.startswith("tune_") else f"tune_{field}")
    return {name(f.name): getattr(self, f.name)
            for f in dataclasses.fields(self)}
