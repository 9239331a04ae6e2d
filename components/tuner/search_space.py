"""The Tuner's search space over the course's knobs, without TFX.

Model family (dense/cnn), dense layers and units, activation, dropout,
optimizer, learning rate and batch size. A knob the user sets explicitly
(e.g. `OPTIMIZER=adam`) is pinned, not searched. `components.trainer.models.
tuned_preset` turns the chosen values back into a model preset.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import keras_tuner

from components.trainer import hparams
from components.trainer import models
from components.tuner.settings import FAMILIES

DENSE_LAYERS = (1, 2)
UNITS = (20, 64, 100, 128, 256, 512)
ACTIVATIONS = ("relu", "sigmoid", "tanh")
DROPOUTS = (0.0, 0.2, 0.3, 0.5)
BATCH_SIZES = (20, 32, 64, 128)
# Learning rate: the optimizer's Keras default (sgd 0.01, adam 0.001, ...)
# times a log-uniform factor, so every optimizer is tried in its own range.
LEARNING_RATE_SCALES = (0.2, 5.0)
OBJECTIVE = "val_accuracy"


def sample(hp: keras_tuner.HyperParameters, families=FAMILIES,
           trainer: Optional[hparams.TrainerConfig] = None) -> Dict[str, Any]:
  """Registers the search space in `hp`; returns this trial's values.

  Knobs that `trainer` sets explicitly (optimizer, learning rate, batch
  size) are fixed to its values.
  """
  trainer = trainer or hparams.TrainerConfig()

  def choice(name, values, pinned=None):
    if pinned is not None:
      return hp.Fixed(name, pinned)
    if len(values) == 1:
      return hp.Fixed(name, values[0])
    return hp.Choice(name, list(values))

  values = {
      "family": choice("family", tuple(families)),
      "dense_layers": choice("dense_layers", DENSE_LAYERS),
      "units": choice("units", UNITS),
      "activation": choice("activation", ACTIVATIONS),
      "dropout": choice("dropout", DROPOUTS),
      "optimizer": choice("optimizer", models.OPTIMIZERS, trainer.optimizer),
      "batch_size": choice("batch_size", BATCH_SIZES, trainer.batch_size),
  }
  if trainer.learning_rate is not None:
    values["learning_rate"] = hp.Fixed("learning_rate", trainer.learning_rate)
  else:
    values["learning_rate_scale"] = hp.Float(
        "learning_rate_scale", *LEARNING_RATE_SCALES, sampling="log")
  return values

