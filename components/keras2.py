"""AutoGraph and Keras 2 (`tf_keras`) under TensorFlow 2.16.

AutoGraph converts the Python code a `tf.function` calls, except libraries on
TensorFlow's do-not-convert list, which names `keras` (Keras 2 as it shipped
up to TF 2.15) but not `tf_keras`, the same code under its TF 2.16 name. So
every trace that calls a Keras 2 model (Keras' own SavedModel signature, TFMA's
Keras metrics) converted Keras' internals again: 7 of the Trainer's 8 s of
export, about 1.5 s of the Evaluator. `skip_keras_internals()` adds
`tf_keras` to the list, as TF does for `keras`; our own code still converts.
"""
from __future__ import annotations

KERAS_2_PACKAGE = "tf_keras"


def skip_keras_internals() -> None:
  """Adds `tf_keras` to AutoGraph's do-not-convert rules (once)."""
  from tensorflow.python.autograph.core import config  # pylint: disable=g-import-not-at-top
  if not any(isinstance(rule, config.DoNotConvert) and
             getattr(rule, "_prefix", None) == KERAS_2_PACKAGE
             for rule in config.CONVERSION_RULES):
    config.CONVERSION_RULES = ((config.DoNotConvert(KERAS_2_PACKAGE),) +
                               tuple(config.CONVERSION_RULES))
