"""Training settings, passed from the pipeline to `run_fn` as `custom_config`."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

from components.trainer import models


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
  """What to train and how. `None` means "the model preset's default"."""
  model: str = "dense_512"
  optimizer: Optional[str] = None
  learning_rate: Optional[float] = None
  epochs: Optional[int] = None
  batch_size: Optional[int] = None
  # Epochs without val_loss gain before stopping (and restoring the best
  # weights) / halving the learning rate; 0 = off, None = the preset's.
  early_stopping_patience: Optional[int] = None
  reduce_lr_patience: Optional[int] = None
  mixed_precision: bool = False
  seed: int = 42  # in a pipeline, the run's SEED (PipelineConfig sets it)
  gpus: int = 0  # GPUs the Trainer must see (TRAINER_GPUS); fails without
  # The Tuner's best hyperparameter values (`models.tuned_preset`); they
  # replace the preset's layers, optimizer, learning rate and batch size.
  hyperparameters: Optional[Dict[str, Any]] = None

  def __post_init__(self):
    preset = models.get_preset(self.model)  # validates the name
    if self.hyperparameters:
      preset = models.tuned_preset(self.hyperparameters)
    optimizer = self.optimizer or preset.optimizer
    if optimizer not in models.OPTIMIZERS:
      models.make_optimizer(optimizer)  # raises the one-line error
    for name in ("epochs", "batch_size"):
      value = getattr(self, name)
      if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    for name in ("early_stopping_patience", "reduce_lr_patience"):
      value = getattr(self, name)
      if value is not None and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if self.learning_rate is not None and not 0 < self.learning_rate < float(
        "inf"):  # NaN too
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

  @property
  def preset(self) -> models.ModelPreset:
    if self.hyperparameters:
      return models.tuned_preset(self.hyperparameters)
    return models.get_preset(self.model)

  @property
  def model_label(self) -> str:
    """`dense_512`, or `tuned dense` when trained from tuned values."""
    if self.hyperparameters:
      return f"tuned {self.preset.family}"
    return self.model

  def with_hyperparameters(self, values: Optional[Dict[str, Any]]
                           ) -> "TrainerConfig":
    """This config training the Tuner's values (explicit settings win)."""
    return dataclasses.replace(self, hyperparameters=dict(values)
                               if values else None)

  def resolved(self) -> "TrainerConfig":
    """This config with every `None` replaced by the preset's value."""
    preset = self.preset
    return dataclasses.replace(
        self, optimizer=self.optimizer or preset.optimizer,
        learning_rate=(self.learning_rate or preset.learning_rate or
                       models.DEFAULT_LEARNING_RATES[
                           self.optimizer or preset.optimizer]),
        epochs=self.epochs or preset.epochs,
        batch_size=self.batch_size or preset.batch_size,
        early_stopping_patience=_default(self.early_stopping_patience,
                                         preset.early_stopping_patience),
        reduce_lr_patience=_default(self.reduce_lr_patience,
                                    preset.reduce_lr_patience))

  def to_custom_config(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_custom_config(cls, custom_config: Optional[Dict[str, Any]]
                         ) -> "TrainerConfig":
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (custom_config or {}).items()
                  if k in fields})


def _default(value, preset_value):
  return preset_value if value is None else value
