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
  early_stopping_patience: int = 3  # epochs without val_loss gain; 0 = off
  reduce_lr_patience: int = 2  # halve the learning rate after as many; 0 = off
  mixed_precision: bool = False
  seed: int = 42
  gpus: int = 0  # GPUs the Trainer must see (TRAINER_GPUS); fails without

  def __post_init__(self):
    preset = models.get_preset(self.model)  # validates the name
    optimizer = self.optimizer or preset.optimizer
    if optimizer not in models.OPTIMIZERS:
      models.make_optimizer(optimizer)  # raises the one-line error
    for name in ("epochs", "batch_size"):
      value = getattr(self, name)
      if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if self.learning_rate is not None and self.learning_rate <= 0:
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

  @property
  def preset(self) -> models.ModelPreset:
    return models.get_preset(self.model)

  def resolved(self) -> "TrainerConfig":
    """This config with every `None` replaced by the preset's value."""
    preset = self.preset
    return dataclasses.replace(
        self, optimizer=self.optimizer or preset.optimizer,
        learning_rate=(self.learning_rate or preset.learning_rate or
                       models.DEFAULT_LEARNING_RATES[
                           self.optimizer or preset.optimizer]),
        epochs=self.epochs or preset.epochs,
        batch_size=self.batch_size or preset.batch_size)

  def to_custom_config(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_custom_config(cls, custom_config: Optional[Dict[str, Any]]
                         ) -> "TrainerConfig":
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (custom_config or {}).items()
                  if k in fields})
