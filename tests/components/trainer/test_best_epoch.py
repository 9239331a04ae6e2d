"""The exported model is the best epoch by val_accuracy, not the last."""
import json

import numpy as np
import pytest
import tf_keras as keras

from components.trainer import task


def test_best_epoch_puts_back_the_weights_of_the_best_val_accuracy():
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  best = task.BestEpoch()
  best.set_model(model)
  weights = {}
  for epoch, val_accuracy in enumerate([0.80, 0.88, 0.85, 0.79]):
    model.set_weights([np.full((2, 1), epoch, np.float32),
                       np.full((1,), epoch, np.float32)])
    weights[epoch] = model.get_weights()
    best.on_epoch_end(epoch, {"val_accuracy": val_accuracy,
                              "val_loss": 1.0 - epoch})  # loss: not the metric
  best.on_train_end()
  assert best.epoch == 1 and best.value == 0.88
  for exported, kept in zip(model.get_weights(), weights[1]):
    np.testing.assert_array_equal(exported, kept)


def test_training_records_and_exports_the_best_epoch(tmp_path, fake_data_dir):
  from components.trainer import hparams  # pylint: disable=g-import-not-at-top
  from tests.conftest import ingested_files  # pylint: disable=g-import-not-at-top
  files = ingested_files(fake_data_dir, tmp_path)
  # SGD with momentum at a learning rate of 1: val_accuracy peaks at epoch 6
  # of 8 and falls by the last.
  history = task.train(hparams.TrainerConfig(model="dense_100_relu", epochs=8,
                                             optimizer="momentum",
                                             learning_rate=1.0),
                       files["train"], files["eval"], str(tmp_path / "model"),
                       str(tmp_path / "run"))
  saved = json.load(open(tmp_path / "run" / task.HISTORY_FILE))
  best = int(np.argmax(history["val_accuracy"]))  # first of the best
  assert history["val_accuracy"][-1] < history["val_accuracy"][best]
  assert saved[task.BEST_EPOCH_KEY] == best
  # The exported SavedModel is that epoch's: it scores the eval split as
  # Keras scored it then (not as the last epoch did, when they differ).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.trainer import data, export  # pylint: disable=g-import-not-at-top
  images, labels = data.load_split(files["eval"])
  exported = tf.saved_model.load(str(tmp_path / "model"))
  probabilities = exported.signatures[export.IMAGES_SIGNATURE](
      images=images)[export.OUTPUT_KEY].numpy()
  accuracy = np.mean(probabilities.argmax(axis=1) == labels.numpy())
  assert accuracy == pytest.approx(history["val_accuracy"][best], abs=1e-6)
