"""Training: `train` does the work; `run_fn` is the TFX Trainer entry point.

The Trainer references this module by name
(`run_fn='components.trainer.task.run_fn'`), so it runs unchanged in the
local runners and in the Kubeflow container image.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from typing import Dict, List, Optional

import tensorflow as tf
import tf_keras as keras

from components import cancellation
from components.trainer import data
from components.trainer import devices
from components.trainer import export
from components.trainer import hparams
from components.trainer import models
from components.trainer import plots

HISTORY_FILE = "history.json"
CURVES_FILE = "training_curves.png"
SUMMARY_FILE = "model_summary.txt"
CONFIG_FILE = "trainer_config.json"
EPOCHS_KEY = "epoch"  # in history.json
EPOCH_SECONDS_KEY = "epoch_seconds"
BEST_EPOCH_KEY = "best_epoch"  # in history.json: the exported epoch (0-based)
# The exported model is the epoch with the highest accuracy on `eval`.
BEST_METRIC = "val_accuracy"
# In `custom_config`: the fingerprint of the code run_fn runs (the cache key,
# and the key of the backup an interrupted training resumes from).
CODE_FINGERPRINT_KEY = "code_fingerprint"


def distribution_strategy(required_gpus: int = 0) -> tf.distribute.Strategy:
  """MirroredStrategy over the visible GPUs, or the default (CPU) strategy.

  Raises `devices.NoGpuError` if fewer than `required_gpus` are visible.
  """
  gpus = tf.config.list_physical_devices("GPU")
  devices.check_gpus(required_gpus, [g.name for g in gpus],
                     devices.cuda_libraries_installed())
  for gpu in gpus:
    try:
      tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # GPUs already initialized in this process
      pass
  if gpus:
    strategy = tf.distribute.MirroredStrategy()
    print(f"training on {strategy.num_replicas_in_sync} GPU(s) with "
          f"MirroredStrategy: {[g.name for g in gpus]}", flush=True)
    return strategy
  print("no GPU visible: training on CPU", flush=True)
  return tf.distribute.get_strategy()


class BestEpoch(keras.callbacks.Callback):
  """Keeps the weights of the epoch with the highest `BEST_METRIC` and puts
  them back when training ends: the exported model is the best epoch, not
  the last one (early stopping or not)."""

  def __init__(self):
    super().__init__()
    self.epoch: Optional[int] = None
    self.value = float("-inf")
    self._weights = None

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(BEST_METRIC)
    if value is not None and value > self.value:
      self.epoch, self.value = epoch, float(value)
      self._weights = self.model.get_weights()

  def on_train_end(self, logs=None):
    if self._weights is not None:
      self.model.set_weights(self._weights)


class EpochLine(keras.callbacks.Callback):
  """One log line per epoch, instead of Keras' carriage-return bars."""

  def __init__(self, epochs: int):
    super().__init__()
    self.epochs = epochs
    self._start = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    metrics = "  ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items())
    print(f"epoch {epoch + 1}/{self.epochs}  {metrics}  "
          f"({time.perf_counter() - self._start:.1f} s)", flush=True)


class EpochTimer(keras.callbacks.Callback):
  """Wall seconds of each epoch (training, validation and, listed last, the
  other callbacks' epoch-end work), for history.json."""

  def __init__(self):
    super().__init__()
    self.seconds: List[float] = []
    self._start = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds.append(round(time.perf_counter() - self._start, 3))


class StopWhenRunFails(keras.callbacks.Callback):
  """Ends training after the current batches (of training or of an epoch's
  validation; Keras runs `models.STEPS_PER_EXECUTION` per call, then calls
  back) once another component of the run has failed
  (`components.cancellation`; the concurrent runner runs the data checks
  beside training): the run then ends in seconds, not minutes, and exports
  nothing. BackupAndRestore keeps the finished epochs for the next run."""

  def __init__(self):
    super().__init__()
    self._supports_tf_logs = True  # no per-batch copy of the logs to numpy

  def on_train_batch_end(self, batch, logs=None):
    reason = cancellation.stop_requested()
    if reason:
      raise cancellation.RunStopped(f"training stopped: {reason}")

  on_test_batch_end = on_train_batch_end  # an epoch's validation, too


def model_summary(model: keras.Model) -> str:
  lines: List[str] = []
  model.summary(print_fn=lines.append, line_length=88)
  return "\n".join(lines)


def train(config: hparams.TrainerConfig, train_files: List[str],
          eval_files: List[str], serving_model_dir: str, run_dir: str,
          backup_dir: Optional[str] = None) -> Dict[str, List[float]]:
  """Trains the configured model, exports it and writes the run artifacts.

  Writes to `run_dir`: TensorBoard logs, the best checkpoint, history.json,
  training_curves.png, model_summary.txt. `backup_dir` (stable across
  retries) lets a restarted training resume from its last finished epoch.
  Returns the Keras history.
  """
  config = config.resolved()
  keras.utils.set_random_seed(config.seed)
  strategy = distribution_strategy(config.gpus)
  if config.mixed_precision and tf.config.list_physical_devices("GPU"):
    keras.mixed_precision.set_global_policy("mixed_float16")
  global_batch = config.batch_size * strategy.num_replicas_in_sync
  train_ds = data.make_dataset(train_files, global_batch, shuffle=True,
                               seed=config.seed)
  eval_ds = data.make_dataset(eval_files, global_batch, shuffle=False)

  with strategy.scope():
    model = models.build_model(config.preset)
    models.compile_model(model, config.optimizer, config.learning_rate)
  summary = model_summary(model)
  logging.info("model %s:\n%s", config.model_label, summary)
  print(summary, flush=True)

  tf.io.gfile.makedirs(run_dir)
  callbacks = [
      keras.callbacks.TensorBoard(log_dir=run_dir),
      keras.callbacks.ModelCheckpoint(
          os.path.join(run_dir, "checkpoints", "best"), monitor="val_accuracy",
          save_best_only=True, save_weights_only=True),
  ]
  if backup_dir:
    callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
  if config.reduce_lr_patience:
    callbacks.append(keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=config.reduce_lr_patience,
        min_lr=1e-5))
  if config.early_stopping_patience:
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.early_stopping_patience,
        restore_best_weights=True))
  best = BestEpoch()  # it restores the best weights after the others
  timer = EpochTimer()  # after every other epoch-end step (checkpoint, logs)
  callbacks = [StopWhenRunFails()] + callbacks + [best, timer] + (
      [EpochLine(config.epochs)] if _quiet() else [])
  history = model.fit(train_ds, validation_data=eval_ds, epochs=config.epochs,
                      callbacks=callbacks, verbose=0 if _quiet() else 1)
  history_dict = {k: [float(v) for v in vs] for k, vs in
                  history.history.items()}
  # 0-based epochs this fit ran; starts above 0 when resumed from a backup.
  history_dict[EPOCHS_KEY] = [int(e) for e in history.epoch]
  history_dict[EPOCH_SECONDS_KEY] = timer.seconds
  if history.epoch and history.epoch[0] > 0:
    print(f"resumed from the backup of an interrupted run: epochs "
          f"{history.epoch[0] + 1}-{history.epoch[-1] + 1} of {config.epochs} "
          "ran now", flush=True)
  if best.epoch is not None:
    history_dict[BEST_EPOCH_KEY] = best.epoch
    print(f"exporting epoch {best.epoch + 1}, the best by {BEST_METRIC} "
          f"({best.value:.4f})", flush=True)

  export.export_saved_model(model, serving_model_dir)
  _write(run_dir, HISTORY_FILE, json.dumps(history_dict, indent=2))
  _write(run_dir, devices.DEVICES_FILE, json.dumps(
      devices.describe(strategy.num_replicas_in_sync), indent=2))
  _write(run_dir, SUMMARY_FILE, summary)
  _write(run_dir, CONFIG_FILE,
         json.dumps(dataclasses.asdict(config), indent=2))
  plots.plot_history(history_dict, os.path.join(run_dir, CURVES_FILE),
                     title=f"{config.model_label} ({config.optimizer})")
  return history_dict


def run_fn(fn_args) -> None:
  """TFX Trainer entry point (GenericExecutor).

  With a Tuner upstream, `fn_args.hyperparameters` (its best values) replace
  the preset's layers, optimizer, learning rate and batch size.
  """
  config = hparams.TrainerConfig.from_custom_config(fn_args.custom_config)
  tuned = _hyperparameter_values(getattr(fn_args, "hyperparameters", None))
  if tuned:
    print(f"training the Tuner's best hyperparameters: {tuned}", flush=True)
    config = config.with_hyperparameters(tuned)
  train(config, fn_args.train_files, fn_args.eval_files,
        fn_args.serving_model_dir, fn_args.model_run_dir,
        backup_dir=_backup_dir(fn_args, config))


def _backup_dir(fn_args, config: hparams.TrainerConfig) -> str:
  """A directory that is the same for a retry of the same training: the
  same data, settings and code (the Trainer's code fingerprint), so a
  backup of other code's training is never resumed."""
  code = (fn_args.custom_config or {}).get(CODE_FINGERPRINT_KEY)
  key = hashlib.sha1(json.dumps(
      [sorted(fn_args.train_files), dataclasses.asdict(config),
       code]).encode())
  trainer_root = os.path.dirname(os.path.dirname(
      fn_args.model_run_dir.rstrip("/")))
  return os.path.join(trainer_root, "resume", key.hexdigest()[:16])


def _hyperparameter_values(config) -> Optional[Dict]:
  """Values of a `HyperParameters.get_config()` dict (or a values dict)."""
  if not config:
    return None
  values = config.get("values", config)
  return dict(values) if isinstance(values, dict) else None


def _write(directory: str, name: str, text: str) -> None:
  with tf.io.gfile.GFile(os.path.join(directory, name), "w") as f:
    f.write(text)


def _quiet() -> bool:
  """Keras progress bars only on a terminal; one line per epoch in logs
  (pod logs, CI). KERAS_PROGRESS=bar or =epoch forces either."""
  choice = os.environ.get("KERAS_PROGRESS", "")
  if choice in ("bar", "epoch"):
    return choice == "epoch"
  return not sys.stdout.isatty()
