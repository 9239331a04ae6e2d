"""Trainer logic without TFX: the model zoo, optimizers, export, resume."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.ingestion import examples_io
from components.ingestion import ingest
from components.trainer import export
from components.trainer import hparams
from components.trainer import models
from components.trainer import task


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory):
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("trainer")
  data_dir = write_fake_dataset(root / "raw", num_train=300, num_test=50)
  out = str(root / "examples")
  ingest.ingest(out, dataset="mnist", seed=0, train_fraction=0.7,
                data_dir=data_dir)
  return out


def _files(examples_dir, split):
  return [os.path.join(examples_io.split_dir(examples_dir, split), "*")]


@pytest.mark.parametrize("name", sorted(models.PRESETS))
@pytest.mark.slow
def test_every_preset_builds_trains_exports_and_reloads(name, tmp_path):
  preset = models.get_preset(name)
  model = models.compile_model(models.build_model(preset), preset.optimizer)
  x = np.random.rand(16, 784).astype(np.float32)
  model.fit(x, np.arange(16) % 10, batch_size=16, verbose=0)  # one step
  probs = model.predict(x, verbose=0)
  assert probs.shape == (16, 10)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  export.export_saved_model(model, str(tmp_path / "model"))
  reloaded = tf.saved_model.load(str(tmp_path / "model"))
  served = reloaded.signatures[export.IMAGES_SIGNATURE](
      images=tf.constant(x))[export.OUTPUT_KEY].numpy()
  np.testing.assert_allclose(served, probs, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn", "dense_100_relu_dropout"])
@pytest.mark.slow
def test_compiled_steps_train_exactly_as_keras_one_batch_at_a_time(name):
  """`compile_model` skips AutoGraph (8-10 s per process) and runs
  `STEPS_PER_EXECUTION` batches per call; batch norm and dropout included,
  training gives the same losses to the bit as plain Keras, one batch per
  call. 41 batches an epoch: one whole call, then 9 batches, the last
  one short."""
  assert models.STEPS_PER_EXECUTION == 32
  x = np.random.default_rng(0).random((648, 784), dtype=np.float32)
  y = np.arange(648) % 10
  preset = models.get_preset(name)
  losses = []
  for fast in (True, False):
    keras.utils.set_random_seed(1)
    model = models.build_model(preset)
    if fast:
      models.compile_model(model, preset.optimizer)
    else:
      model.compile(optimizer=models.make_optimizer(preset.optimizer),
                    loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                        validation_data=(x[:16], y[:16]))
    losses.append((history.history["loss"], history.history["val_loss"]))
  assert losses[0] == losses[1]


def test_course_architectures():
  def dense_units(name):
    model = models.build_model(models.get_preset(name))
    return [l.units for l in model.layers if isinstance(l, keras.layers.Dense)]
  assert dense_units("dense_100_sigmoid") == [100, 10]
  assert dense_units("dense_512") == [512, 10]
  assert dense_units("dense_20x2") == [20, 20, 10]
  sigmoid = models.build_model(models.get_preset("dense_100_sigmoid"))
  assert sigmoid.layers[2].activation.__name__ == "sigmoid"
  dropout = models.build_model(models.get_preset("dense_100_relu_dropout"))
  assert [l.rate for l in dropout.layers
          if isinstance(l, keras.layers.Dropout)] == [0.3]
  cnn = models.build_model(models.get_preset("cnn"))
  assert sum(isinstance(l, keras.layers.Conv2D) for l in cnn.layers) == 4
  assert models.get_preset("dense") == models.get_preset("dense_512")


@pytest.mark.parametrize("optimizer", models.OPTIMIZERS)
def test_every_optimizer_trains_a_step(optimizer):
  model = models.compile_model(
      models.build_model(models.get_preset("dense_20x2")), optimizer, 0.01)
  x = np.random.rand(32, 784).astype(np.float32)
  y = np.random.randint(0, 10, 32)
  before = [w.copy() for w in model.get_weights()]
  model.fit(x, y, batch_size=32, verbose=0)  # one step
  assert any(not np.array_equal(a, b) for a, b in
             zip(before, model.get_weights()))


def test_momentum_and_nesterov_are_configured():
  assert models.make_optimizer("momentum").momentum == 0.9
  assert models.make_optimizer("nesterov").nesterov
  assert float(models.make_optimizer("adam", 0.05).learning_rate) == \
      pytest.approx(0.05)


def test_unknown_names_are_one_line_errors():
  with pytest.raises(ValueError, match="unknown model 'resnet'"):
    hparams.TrainerConfig(model="resnet")
  with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
    hparams.TrainerConfig(optimizer="lion")
  with pytest.raises(ValueError, match="epochs must be >= 1"):
    hparams.TrainerConfig(epochs=0)


def test_config_round_trips_through_custom_config_and_resolves_presets():
  config = hparams.TrainerConfig(model="dense_100_sigmoid", epochs=2)
  assert hparams.TrainerConfig.from_custom_config(
      config.to_custom_config()) == config
  resolved = config.resolved()
  assert (resolved.optimizer, resolved.batch_size, resolved.epochs) == (
      "rmsprop", 32, 2)


def test_presets_are_the_course_recipes():
  """Keras' defaults where the course names none: rmsprop, batch 32."""
  def recipe(name):
    c = hparams.TrainerConfig(model=name).resolved()
    return (c.optimizer, c.learning_rate, c.batch_size, c.epochs,
            c.early_stopping_patience, c.reduce_lr_patience)
  assert recipe("dense_100_sigmoid") == ("rmsprop", 0.001, 32, 5, 0, 0)
  assert recipe("dense_100_relu") == ("rmsprop", 0.001, 32, 5, 0, 0)
  assert recipe("dense_100_relu_adam") == ("adam", 0.001, 32, 5, 0, 0)
  assert recipe("dense_100_relu_dropout") == ("adam", 0.001, 32, 20, 2, 0)
  assert recipe("dense_512") == ("rmsprop", 0.001, 128, 5, 0, 0)
  assert recipe("dense_20x2") == ("sgd", 0.01, 20, 10, 0, 0)
  assert models.get_preset("dense_512").course_accuracy == 0.981
  assert all(p.course_metric for p in models.PRESETS.values()
             if p.course_accuracy)


def test_callback_settings_default_to_the_preset_and_can_be_overridden():
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  resolved = config_lib.PipelineConfig.from_env(
      {"MODEL": "dense_100_relu"}).trainer.resolved()
  assert (resolved.early_stopping_patience, resolved.reduce_lr_patience) == (
      0, 0)
  resolved = config_lib.PipelineConfig.from_env(
      {"MODEL": "dense_100_relu", "EARLY_STOPPING_PATIENCE": "3",
       "REDUCE_LR_PATIENCE": "2"}).trainer.resolved()
  assert (resolved.early_stopping_patience, resolved.reduce_lr_patience) == (
      3, 2)
  resolved = hparams.TrainerConfig(model="dense_100_relu_dropout",
                                   early_stopping_patience=0).resolved()
  assert resolved.early_stopping_patience == 0
  with pytest.raises(ValueError, match="early_stopping_patience must be >= 0"):
    hparams.TrainerConfig(early_stopping_patience=-1)


def test_models_table_lists_every_preset_with_its_course_accuracy():
  import mnist_tfx as cli  # pylint: disable=g-import-not-at-top
  table = cli.list_models()
  assert "course accuracy" in table
  for name in models.PRESETS:
    assert name in table
  row = next(l for l in table.splitlines() if l.split()[:1] == ["dense_512"])
  assert row.split()[3:6] == ["rmsprop", "128", "5"]
  assert "0.981 mnist test" in row


@pytest.fixture(scope="module")
def trained(examples_dir, tmp_path_factory):
  root = tmp_path_factory.mktemp("trained")
  config = hparams.TrainerConfig(model="dense_512", epochs=3, batch_size=32)
  history = task.train(config, _files(examples_dir, "train"),
                       _files(examples_dir, "eval"), str(root / "serving"),
                       str(root / "run"))
  return root, history


def test_training_learns_and_writes_run_artifacts(trained):
  root, history = trained
  assert history["val_accuracy"][-1] > 0.8  # the fake classes are easy
  run = root / "run"
  saved = json.loads((run / task.HISTORY_FILE).read_text())
  assert saved["loss"] == history["loss"] and len(saved["loss"]) == 3
  assert (run / task.CURVES_FILE).read_bytes()[:4] == b"\x89PNG"
  assert "dense" in (run / task.SUMMARY_FILE).read_text()
  assert any(name.startswith("events.out") for _, _, files in os.walk(run)
             for name in files)  # TensorBoard
  assert any(f.startswith("best") for f in os.listdir(run / "checkpoints"))


def test_both_signatures_give_the_same_probabilities(trained, examples_dir):
  root, _ = trained
  loaded = tf.saved_model.load(str(root / "serving"))
  assert set(loaded.signatures) == {"serving_default",
                                    export.IMAGES_SIGNATURE,
                                    export.PIXELS_SIGNATURE}
  images, labels = next(examples_io.read_split(
      examples_io.split_dir(examples_dir, "test")))
  serialized = examples_io.serialize(images, labels)
  by_example = loaded.signatures["serving_default"](
      examples=tf.constant(serialized))[export.OUTPUT_KEY].numpy()
  by_pixels = loaded.signatures[export.IMAGES_SIGNATURE](
      images=tf.constant(images.reshape(-1, 28, 28)))[export.OUTPUT_KEY].numpy()
  flat = loaded.signatures[export.IMAGES_SIGNATURE](
      images=tf.constant(images))[export.OUTPUT_KEY].numpy()
  assert by_example.shape == (len(labels), 10)
  np.testing.assert_allclose(by_example, by_pixels, atol=1e-6)
  np.testing.assert_allclose(flat, by_pixels, atol=1e-6)


def test_early_stopping_and_learning_rate_reduction(examples_dir, tmp_path):
  """A diverged run (SGD at learning rate 1e6) halves its learning rate after
  one bad epoch and stops after two, instead of running all 10 epochs."""
  config = hparams.TrainerConfig(model="dense_20x2", optimizer="sgd",
                                 learning_rate=1e6, epochs=10, batch_size=32,
                                 early_stopping_patience=2,
                                 reduce_lr_patience=1)
  history = task.train(config, _files(examples_dir, "train"),
                       _files(examples_dir, "eval"), str(tmp_path / "s"),
                       str(tmp_path / "r"))
  assert len(history["loss"]) < 10
  assert history["lr"][-1] < history["lr"][0]


def test_restarted_training_resumes_from_its_backup(examples_dir, tmp_path):
  """A Trainer killed after finishing epoch 2 of 4 goes on with epoch 3."""
  backup = str(tmp_path / "backup")
  config = hparams.TrainerConfig(model="dense_20x2", epochs=4, batch_size=32,
                                 early_stopping_patience=0)

  class Crash(keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      if epoch == 1:
        raise RuntimeError("simulated crash")

  original = keras.callbacks.BackupAndRestore
  epochs_run = []

  class Recording(original):

    def on_epoch_begin(self, epoch, logs=None):
      epochs_run.append(epoch)
      super().on_epoch_begin(epoch, logs)

  keras.callbacks.BackupAndRestore = Recording
  real_fit = keras.Model.fit

  def crashing_fit(self, *args, callbacks=(), **kwargs):
    return real_fit(self, *args, callbacks=list(callbacks) + [Crash()],
                    **kwargs)
  try:
    keras.Model.fit = crashing_fit
    with pytest.raises(RuntimeError, match="simulated crash"):
      task.train(config, _files(examples_dir, "train"),
                 _files(examples_dir, "eval"), str(tmp_path / "s1"),
                 str(tmp_path / "r1"), backup_dir=backup)
    keras.Model.fit = real_fit
    epochs_run.clear()
    history = task.train(config, _files(examples_dir, "train"),
                         _files(examples_dir, "eval"), str(tmp_path / "s2"),
                         str(tmp_path / "r2"), backup_dir=backup)
  finally:
    keras.Model.fit = real_fit
    keras.callbacks.BackupAndRestore = original
  assert epochs_run == [2, 3]  # epochs 0 and 1 were not trained again
  assert len(history["loss"]) == 2
  assert history["epoch"] == [2, 3]  # recorded in history.json


@pytest.mark.slow
def test_a_backup_of_other_code_is_never_resumed(examples_dir, tmp_path,
                                                 monkeypatch):
  """The Trainer (`run_fn`) killed after epoch 2 of 4 resumes at epoch 3
  when rerun with the same data, settings and code; after an edit of the
  code (another code fingerprint in its cache key) it trains from epoch 1
  (before: it went on from the old code's weights)."""
  from tfx.components.trainer import fn_args_utils  # pylint: disable=g-import-not-at-top
  config = hparams.TrainerConfig(model="dense_20x2", epochs=4, batch_size=32,
                                 early_stopping_patience=0)

  def fn_args(run, code):
    trainer_root = tmp_path / "Trainer"
    return fn_args_utils.FnArgs(
        train_files=_files(examples_dir, "train"),
        eval_files=_files(examples_dir, "eval"),
        serving_model_dir=str(trainer_root / "model" / run / "Format-Serving"),
        model_run_dir=str(trainer_root / "model_run" / run),
        custom_config={**config.to_custom_config(),
                       "code_fingerprint": code})

  class Crash(keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      if epoch == 1:
        raise RuntimeError("simulated kill")

  real_fit = keras.Model.fit

  def crashing_fit(self, *args, callbacks=(), **kwargs):
    return real_fit(self, *args, callbacks=list(callbacks) + [Crash()],
                    **kwargs)

  def epochs_of(run):
    with open(tmp_path / "Trainer" / "model_run" / run /
              task.HISTORY_FILE) as f:
      return json.load(f)["epoch"]

  monkeypatch.setattr(keras.Model, "fit", crashing_fit)
  with pytest.raises(RuntimeError, match="simulated kill"):
    task.run_fn(fn_args("1", "original"))
  monkeypatch.setattr(keras.Model, "fit", real_fit)
  for code, epochs in (("edited", [0, 1, 2, 3]), ("original", [2, 3])):
    task.run_fn(fn_args(code, code))
    assert epochs_of(code) == epochs, code
