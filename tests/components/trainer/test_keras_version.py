"""The project runs on Keras 2 (tf-keras); Keras 3 must not sneak in."""
import os

import tensorflow as tf
import tf_keras

from components.trainer import models


def test_legacy_keras_is_selected_before_tensorflow_loads():
  assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
  assert tf_keras.__version__.startswith("2.16")
  # tf.keras resolves to the same Keras 2, so TFX/TFMA see what we build.
  assert tf.keras.Model is tf_keras.Model


def test_models_are_keras2_models():
  model = models.build_model(models.get_preset("dense_512"))
  assert isinstance(model, tf_keras.Model)
  assert type(model).__module__.startswith("tf_keras")
