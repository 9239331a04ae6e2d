"""`tuner_fn`, the TFX Tuner's entry point: a KerasTuner search over the
course's knobs (`search_space`), each trial trained like the Trainer does.

The Tuner references it by name (`tuner_fn='components.tuner.task.tuner_fn'`).
Its `custom_config` is `tuner_custom_config(...)`: the search settings and the
Trainer's config (whose explicit settings pin knobs).
"""
from __future__ import annotations

import os
from typing import Any, Dict, NamedTuple

import keras_tuner
from keras_tuner.engine import base_tuner
import tf_keras as keras

from components.trainer import data
from components.trainer import hparams
from components.trainer import models
from components.tuner import search_space
from components.tuner import settings

PROJECT_NAME = "mnist_tuning"


class TunerFnResult(NamedTuple):
  """What TFX's Tuner executor expects from `tuner_fn` (tuner, fit_kwargs)."""
  tuner: base_tuner.BaseTuner
  fit_kwargs: Dict[str, Any]


# The Trainer settings a search depends on (they pin knobs, or seed it);
# the others (EPOCHS, callbacks, ...) change the Trainer, not the Tuner's cache.
TRAINER_KEYS = ("optimizer", "learning_rate", "batch_size", "seed")


def tuner_custom_config(tune: settings.TunerSettings,
                        trainer: hparams.TrainerConfig) -> Dict[str, Any]:
  """The Tuner component's `custom_config`."""
  trainer_config = trainer.to_custom_config()
  return {"tune": tune.to_custom_config(trainer.seed),
          "trainer": {k: trainer_config[k] for k in TRAINER_KEYS}}


class CourseHyperModel(keras_tuner.HyperModel):
  """Builds a trial's model from `search_space.sample`; fits it on in-memory
  splits batched with the trial's batch size."""

  def __init__(self, tune: settings.TunerSettings,
               trainer: hparams.TrainerConfig):
    super().__init__(name="course_models")
    self.tune = tune
    self.trainer = trainer

  def build(self, hp):
    values = search_space.sample(hp, self.tune.families, self.trainer)
    keras.utils.set_random_seed(self.trainer.seed)
    preset = models.tuned_preset(values)
    return models.compile_model(models.build_model(preset), preset.optimizer,
                                preset.learning_rate)

  def fit(self, hp, model, x, validation_data, **kwargs):
    batch_size = hp.get("batch_size")
    train_ds = data.dataset_from_tensors(*x, batch_size, shuffle=True,
                                         seed=self.trainer.seed)
    eval_ds = data.dataset_from_tensors(*validation_data, batch_size,
                                        shuffle=False)
    verbose = 2 if os.environ.get("KERAS_PROGRESS", "") == "epoch" else 1
    return model.fit(train_ds, validation_data=eval_ds, verbose=verbose,
                     **kwargs)


def make_tuner(tune: settings.TunerSettings, hypermodel: keras_tuner.HyperModel,
               directory: str, seed: int) -> keras_tuner.Tuner:
  """RandomSearch, Hyperband or BayesianOptimization, at most `tune.trials`
  trials (Hyperband: up to `tune.epochs` epochs a trial, brackets repeated
  until the trials are used)."""
  common = dict(hypermodel=hypermodel, objective=search_space.OBJECTIVE,
                seed=seed, directory=directory,
                project_name=PROJECT_NAME, overwrite=True)
  if tune.algorithm == "random":
    return keras_tuner.RandomSearch(max_trials=tune.trials, **common)
  if tune.algorithm == "bayesian":
    return keras_tuner.BayesianOptimization(max_trials=tune.trials, **common)
  tuner = keras_tuner.Hyperband(max_epochs=tune.epochs, factor=3,
                                hyperband_iterations=tune.trials, **common)
  tuner.oracle.max_trials = tune.trials  # caps the trials, as the others do
  return tuner


def tuner_fn(fn_args) -> TunerFnResult:
  """TFX Tuner entry point: the tuner and the arguments of its `search`."""
  custom_config = fn_args.custom_config or {}
  tune = settings.TunerSettings.from_custom_config(custom_config.get("tune"))
  trainer = hparams.TrainerConfig.from_custom_config(
      custom_config.get("trainer"))
  tuner = make_tuner(tune, CourseHyperModel(tune, trainer),
                     os.path.join(fn_args.working_dir, "keras_tuner"),
                     seed=trainer.seed)
  return TunerFnResult(tuner=tuner, fit_kwargs={
      "x": data.load_split(fn_args.train_files),
      "validation_data": data.load_split(fn_args.eval_files),
      "epochs": tune.epochs,
  })
