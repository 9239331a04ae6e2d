"""The model zoo: every Keras model of the course, by name, from one builder.

`MODEL=` takes a preset name (e.g. `dense_512`) or a family (`dense`, `cnn`,
which mean their default presets). Each preset is the course's recipe: the
optimizer (Keras' default, rmsprop, where the course names none), batch size,
epochs and callbacks it trains with, and the accuracy the course reports; any
setting can be overridden.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from components.ingestion import datasets

if TYPE_CHECKING:  # TensorFlow loads when a model is built, not before:
  import tf_keras as keras  # settings and the unchanged short-cut need none

NUM_CLASSES = datasets.NUM_CLASSES
IMAGE_PIXELS = datasets.IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class ModelPreset:
  """Architecture, training recipe and reported accuracy of one named model."""
  family: str  # 'dense' or 'cnn'
  description: str
  hidden_units: Tuple[int, ...] = ()
  activation: str = "relu"
  dropout: float = 0.0
  # CNN blocks: (filters, kernel size, stride, padding) per conv layer;
  # a max-pool follows every `convs_per_block` convolutions.
  conv_layers: Tuple[Tuple[int, int, int, str], ...] = ()
  convs_per_block: int = 2
  optimizer: str = "rmsprop"  # Keras' default when `compile` names none
  learning_rate: Optional[float] = None  # None: the optimizer's Keras default
  batch_size: int = 32  # Keras' `fit` default
  epochs: int = 5
  # Callbacks of the recipe (epochs without val_loss gain; 0 = none).
  early_stopping_patience: int = 0  # stop, restore the best weights
  reduce_lr_patience: int = 0  # halve the learning rate
  # What the course reports for this recipe, and on what (None: nothing).
  course_accuracy: Optional[float] = None
  course_metric: str = ""  # e.g. "fashion_mnist validation"


PRESETS: Dict[str, ModelPreset] = {
    # Fashion-MNIST notebooks: Dense(100), compiled without an optimizer
    # (rmsprop), fit with Keras' defaults (batch 32), 5 epochs.
    "dense_100_sigmoid": ModelPreset(
        "dense", "784 -> 100 sigmoid -> 10 softmax", hidden_units=(100,),
        activation="sigmoid", optimizer="rmsprop", batch_size=32, epochs=5,
        course_accuracy=0.86, course_metric="fashion_mnist validation"),
    "dense_100_relu": ModelPreset(
        "dense", "784 -> 100 relu -> 10 softmax", hidden_units=(100,),
        optimizer="rmsprop", batch_size=32, epochs=5,
        course_accuracy=0.875, course_metric="fashion_mnist validation"),
    "dense_100_relu_adam": ModelPreset(
        "dense", "784 -> 100 relu -> 10 softmax", hidden_units=(100,),
        optimizer="adam", batch_size=32, epochs=5,
        course_accuracy=0.88,
        course_metric="fashion_mnist test, plain Keras"),
    "dense_100_relu_dropout": ModelPreset(
        "dense", "784 -> 100 relu -> Dropout(0.3) -> 10 softmax",
        hidden_units=(100,), dropout=0.3, optimizer="adam", batch_size=32,
        epochs=20, early_stopping_patience=2),
    # MNIST, the first notebook.
    "dense_512": ModelPreset(
        "dense", "784 -> 512 relu -> 10 softmax",
        hidden_units=(512,), optimizer="rmsprop", batch_size=128, epochs=5,
        course_accuracy=0.981, course_metric="mnist test"),
    # MNIST, the tf.data notebook: batches of 20.
    "dense_20x2": ModelPreset(
        "dense", "784 -> 20 relu -> 20 relu -> 10 softmax",
        hidden_units=(20, 20), optimizer="sgd", batch_size=20, epochs=10),
    # Not a course recipe: the pipeline's CNN, with its own callbacks.
    "cnn": ModelPreset(
        "cnn", "2x[conv3x3 -> conv3x3 -> maxpool] (32, 64 filters, batch norm) "
        "-> 256 relu -> Dropout(0.5) -> 10 softmax",
        conv_layers=((32, 3, 1, "same"), (32, 3, 1, "same"),
                     (64, 3, 1, "same"), (64, 3, 1, "same")),
        hidden_units=(256,), dropout=0.5, optimizer="adam",
        learning_rate=1e-3, batch_size=128, epochs=15,
        early_stopping_patience=3, reduce_lr_patience=2),
}
FAMILY_DEFAULTS = {"dense": "dense_512", "cnn": "cnn"}


def layers_summary(preset: ModelPreset) -> str:
  """Hidden layers in one short line, e.g. `conv 32-32-64-64, 256 relu`."""
  parts = []
  if preset.conv_layers:
    parts.append("conv " + "-".join(str(c[0]) for c in preset.conv_layers))
  parts += [f"{units} {preset.activation}" for units in preset.hidden_units]
  if preset.dropout:
    parts.append(f"dropout {preset.dropout:g}")
  return ", ".join(parts)


def get_preset(name: str) -> ModelPreset:
  """Returns the preset called `name` (or a family's default preset)."""
  name = FAMILY_DEFAULTS.get(name, name)
  try:
    return PRESETS[name]
  except KeyError:
    choices = sorted(PRESETS) + sorted(FAMILY_DEFAULTS)
    raise ValueError(f"unknown model {name!r}; choose one of {choices}") from None


def tuned_preset(values: Mapping[str, Any]) -> ModelPreset:
  """The preset that a Tuner's hyperparameter values describe.

  The family's default preset (its convolutions, epochs and callbacks) with
  the tuned dense head (`dense_layers` x `units`, `activation`, `dropout`),
  `optimizer`, `learning_rate` (or `learning_rate_scale` x the optimizer's
  default) and `batch_size`; missing keys keep its values.
  """
  base = get_preset(values.get("family", "dense"))
  layers = int(values.get("dense_layers", len(base.hidden_units)))
  units = int(values.get("units", base.hidden_units[0]))
  preset = dataclasses.replace(
      base, hidden_units=(units,) * layers,
      activation=values.get("activation", base.activation),
      dropout=float(values.get("dropout", base.dropout)),
      optimizer=values.get("optimizer", base.optimizer),
      learning_rate=_tuned_learning_rate(values, base),
      batch_size=int(values.get("batch_size", base.batch_size)),
      course_accuracy=None, course_metric="")
  return dataclasses.replace(
      preset, description=f"tuned {preset.family}: {layers_summary(preset)}")


def _tuned_learning_rate(values: Mapping[str, Any], base: ModelPreset
                         ) -> Optional[float]:
  """`learning_rate`, or `learning_rate_scale` x the optimizer's default."""
  if "learning_rate" in values:
    return float(values["learning_rate"])
  if "learning_rate_scale" in values:
    optimizer = values.get("optimizer", base.optimizer)
    return (float(values["learning_rate_scale"]) *
            DEFAULT_LEARNING_RATES[optimizer])
  return base.learning_rate


def build_model(preset: ModelPreset) -> keras.Sequential:
  """Builds the (uncompiled) Sequential model of `preset`.

  Input: `image`, 784 floats in [0,1]; output: 10 class probabilities.
  """
  import tf_keras as keras  # pylint: disable=g-import-not-at-top,redefined-outer-name
  layers = [keras.Input(shape=(IMAGE_PIXELS,), name="image")]
  if preset.family == "dense":
    layers.append(keras.layers.Reshape((28, 28)))
    layers.append(keras.layers.Flatten())
  elif preset.family == "cnn":
    layers.append(keras.layers.Reshape((28, 28, 1)))
    for i, (filters, kernel, stride, padding) in enumerate(preset.conv_layers):
      layers += [
          keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding,
                              use_bias=False),
          keras.layers.BatchNormalization(),
          keras.layers.Activation("relu"),
      ]
      if (i + 1) % preset.convs_per_block == 0:
        layers += [keras.layers.MaxPooling2D(), keras.layers.Dropout(0.25)]
    layers.append(keras.layers.Flatten())
  else:
    raise ValueError(f"unknown model family {preset.family!r}")
  for units in preset.hidden_units:
    layers.append(keras.layers.Dense(units, activation=preset.activation))
  if preset.dropout:
    layers.append(keras.layers.Dropout(preset.dropout))
  # float32 output keeps softmax stable under mixed precision.
  layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax",
                                   dtype="float32", name="probabilities"))
  return keras.Sequential(layers, name=f"{preset.family}_model")


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01,
                          "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001}


def make_optimizer(name: str, learning_rate: Optional[float] = None
                   ) -> keras.optimizers.Optimizer:
  """One of the course's optimizers: sgd, momentum (sgd+momentum 0.9),
  nesterov, adagrad, rmsprop, adam."""
  if name not in OPTIMIZERS:
    raise ValueError(f"unknown optimizer {name!r}; choose one of "
                     f"{list(OPTIMIZERS)}")
  import tf_keras as keras  # pylint: disable=g-import-not-at-top,redefined-outer-name
  lr = learning_rate or DEFAULT_LEARNING_RATES[name]
  if name == "sgd":
    return keras.optimizers.SGD(lr)
  if name == "momentum":
    return keras.optimizers.SGD(lr, momentum=0.9)
  if name == "nesterov":
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
  if name == "adagrad":
    return keras.optimizers.Adagrad(lr)
  if name == "rmsprop":
    return keras.optimizers.RMSprop(lr)
  return keras.optimizers.Adam(lr)


# Batches Keras runs per call into TensorFlow (`steps_per_execution`): the
# same batches, updates and losses to the bit as one at a time
# (`tests/components/trainer/test_trainer.py`), without Python between
# batches: `dense_512`'s 5 epochs on MNIST took 3.9 s instead of 4.75 on 2
# CPUs (3 interleaved runs each; 128 took 3.7 s). Batch callbacks run once
# per call, so a run whose data checks failed stops training within this
# many batches (`task.StopWhenRunFails`).
STEPS_PER_EXECUTION = 32


def compile_model(model: keras.Model, optimizer: str,
                  learning_rate: Optional[float] = None) -> keras.Model:
  """Compiles for sparse labels, `STEPS_PER_EXECUTION` batches per call
  (train with `fit`: Keras 2's `train_on_batch` then asks its one batch for
  32); traces Keras' steps without AutoGraph.

  Keras' train/test/predict steps have no Python control flow on tensors, so
  tracing them as plain Python gives the same graph (the same losses, to the
  bit, in `tests/components/trainer/test_trainer.py`). AutoGraph's source
  conversion of them and of every layer, loss and metric they call took
  8-10 s (CNN: 10 s) per process here, a fifth of a whole `dense_512` run.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model.compile(optimizer=make_optimizer(optimizer, learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                steps_per_execution=STEPS_PER_EXECUTION)
  for step in ("train_step", "test_step", "predict_step"):
    setattr(model, step, tf.autograph.experimental.do_not_convert(
        getattr(model, step)))
  return model
