"""SavedModel export with two serving signatures.

- `serving_default`: serialized tf.Example (`examples`, string [N]) — what
  TFMA and TF Serving's classify/predict-with-examples call.
- `serving_images`: raw pixels (`images`, float32 in [0,1], shape [N,28,28]
  or [N,784]) — for REST clients.

Both return `{'probabilities': float32 [N,10]}`.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.ingestion import examples_io

IMAGES_SIGNATURE = "serving_images"
OUTPUT_KEY = "probabilities"


def serving_signatures(model: keras.Model):
  """Returns the signatures dict for `model.save`."""

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name="examples")])
  def serve_examples(examples):
    features = tf.io.parse_example(
        examples, {examples_io.IMAGE_KEY:
                   examples_io.FEATURE_SPEC[examples_io.IMAGE_KEY]})
    return {OUTPUT_KEY: model(features[examples_io.IMAGE_KEY], training=False)}

  @tf.function(input_signature=[
      tf.TensorSpec(None, tf.float32, name="images")])
  def serve_images(images):
    pixels = tf.reshape(images, [-1, 784])
    return {OUTPUT_KEY: model(pixels, training=False)}

  return {"serving_default": serve_examples, IMAGES_SIGNATURE: serve_images}


def export_saved_model(model: keras.Model, export_dir: str) -> None:
  model.save(export_dir, save_format="tf",
             signatures=serving_signatures(model))
