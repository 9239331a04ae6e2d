"""A Trainer whose run has failed elsewhere (the concurrent runner's data
checks) stops within 32 batches and exports nothing."""
import os

import numpy as np
import pytest
import tf_keras as keras

from components import cancellation
from components.trainer import hparams
from components.trainer import models
from components.trainer import task
from tests.conftest import ingested_files


def test_training_stops_after_a_batch_once_the_run_has_failed(
    tmp_path, fake_data_dir):
  files = ingested_files(fake_data_dir, tmp_path)
  cancellation.request_stop("ValidationGate failed")
  try:
    with pytest.raises(cancellation.RunStopped,
                       match="^training stopped: ValidationGate failed$"):
      task.train(hparams.TrainerConfig(model="dense_100_relu", epochs=200),
                 files["train"], files["eval"], str(tmp_path / "model"),
                 str(tmp_path / "run"))
  finally:
    cancellation.clear()
  assert not os.path.exists(tmp_path / "model")
  assert not os.path.exists(tmp_path / "run" / task.HISTORY_FILE)


def test_training_stops_within_32_batches():
  """Keras calls back after each call of `STEPS_PER_EXECUTION` batches:
  a stop requested during the first call ends training after it."""
  model = models.compile_model(keras.Sequential([
      keras.Input((4,)), keras.layers.Dense(2)]), "sgd")
  x, y = np.zeros((8 * 100, 4), np.float32), np.zeros((8 * 100,), np.int64)

  class StopRequestedAtStart(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
      cancellation.request_stop("ValidationGate failed")

  try:
    with pytest.raises(cancellation.RunStopped):
      model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[
          StopRequestedAtStart(), task.StopWhenRunFails()])
  finally:
    cancellation.clear()
  # 100 batches in the epoch; the first call ran 32 of them, then it stopped.
  assert int(model.optimizer.iterations) == models.STEPS_PER_EXECUTION == 32


def test_a_stop_requested_during_validation_ends_the_epoch_there():
  class StopAtValidation(keras.callbacks.Callback):
    def on_test_begin(self, logs=None):
      cancellation.request_stop("ValidationGate failed")

  ended = []
  model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
  model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
  x, y = np.zeros((64, 4), np.float32), np.zeros((64,), np.int64)
  try:
    with pytest.raises(cancellation.RunStopped):
      model.fit(x, y, validation_data=(x, y), epochs=3, batch_size=8,
                verbose=0, callbacks=[
                    StopAtValidation(), task.StopWhenRunFails(),
                    keras.callbacks.LambdaCallback(
                        on_epoch_end=lambda epoch, logs: ended.append(epoch))])
  finally:
    cancellation.clear()
  assert ended == []  # not even the first epoch's end: stopped mid-check
