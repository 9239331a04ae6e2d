"""TFX components of the MNIST / Fashion-MNIST pipeline.

Keras: this project uses Keras 2 (the `tf-keras` package), the Keras that
TFX 1.16, TFMA 0.47 and tensorflow-transform are built and tested with. The
choice is made here, once, before anything imports TensorFlow, and our code
imports `tf_keras` directly, so import order elsewhere cannot switch it.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
