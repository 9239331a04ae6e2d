"""The Tuner's settings (TUNE, TUNE_TRIALS, ...; no KerasTuner import, so the
pipeline's config can hold them). A new setting: a field here, and one row
of `pipeline.config.ENV_SETTINGS`; `to_custom_config` hands the search's
part to `tuner_fn`."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

ALGORITHMS = ("random", "hyperband", "bayesian")
FAMILIES = ("dense", "cnn")
# What `tuner_fn` needs of them; `enabled` and `tune_from` only shape the
# DAG, so they stay out of the Tuner's custom_config (its cache key).
SEARCH_FIELDS = ("trials", "epochs", "algorithm", "families", "seed")


@dataclasses.dataclass(frozen=True)
class TunerSettings:
  """TUNE=1: TFX's Tuner (KerasTuner) searches `trials` trials of up to
  `epochs` epochs with `algorithm` over the model `families`, and the
  Trainer trains its best hyperparameters. TUNE_FROM: an earlier Tuner's
  best_hyperparameters directory, trained without a search."""
  enabled: bool = False
  trials: int = 10
  epochs: int = 2  # per trial (Hyperband: at most)
  algorithm: str = "random"
  families: Tuple[str, ...] = FAMILIES
  seed: int = 42
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

  def to_custom_config(self) -> Dict[str, Any]:
    """The search's settings, as `tuner_fn` reads them back."""
    values = {name: getattr(self, name) for name in SEARCH_FIELDS}
    return dict(values, families=list(self.families))

  @classmethod
  def from_custom_config(cls, custom_config: Optional[Mapping[str, Any]]
                         ) -> "TunerSettings":
    return cls(**{k: v for k, v in (custom_config or {}).items()
                  if k in SEARCH_FIELDS}, enabled=True)

  def record(self) -> Dict[str, Any]:
    """By their names of old in summary.json's settings (`tune`,
    `tune_trials`, ...); the seed is the run's."""
    return {"tune": self.enabled, "tune_trials": self.trials,
            "tune_epochs": self.epochs, "tune_algorithm": self.algorithm,
            "tune_families": self.families, "tune_from": self.tune_from}
