"""The Tuner: its search space, TFX's Tuner executor running `tuner_fn` on
tiny synthetic data, and the Trainer training the best hyperparameters."""
import dataclasses
import json
import os
import types

import keras_tuner
import pytest
import tf_keras as keras
from tfx.components.tuner import executor as tuner_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.evaluator.settings import GateSettings
from components.ingestion import ingest
from components.ingestion.settings import IngestionSettings
from components.trainer import hparams
from components.trainer import models
from components.trainer import task as trainer_task
from components.tuner import search_space
from components.tuner import settings as tuner_settings
from components.tuner import task as tuner_task
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib


def test_search_space_covers_the_course_knobs():
  hp = keras_tuner.HyperParameters()
  values = search_space.sample(hp)
  assert set(values) == {"family", "dense_layers", "units", "activation",
                         "dropout", "optimizer", "learning_rate_scale",
                         "batch_size"}
  space = {p.name: p for p in hp.space}
  assert list(space["family"].values) == ["dense", "cnn"]
  assert set(space["optimizer"].values) == set(models.OPTIMIZERS)
  assert space["learning_rate_scale"].sampling == "log"


def test_explicit_settings_pin_their_knobs():
  hp = keras_tuner.HyperParameters()
  trainer = hparams.TrainerConfig(optimizer="adam", learning_rate=0.002,
                                  batch_size=64)
  values = search_space.sample(hp, families=("dense",), trainer=trainer)
  fixed = {p.name for p in hp.space
           if isinstance(p, keras_tuner.engine.hyperparameters.Fixed)}
  assert fixed == {"family", "optimizer", "learning_rate", "batch_size"}
  assert (values["family"], values["optimizer"], values["learning_rate"],
          values["batch_size"]) == ("dense", "adam", 0.002, 64)


def test_tuned_values_become_a_preset():
  dense = models.tuned_preset({
      "family": "dense", "dense_layers": 2, "units": 64, "activation": "tanh",
      "dropout": 0.2, "optimizer": "momentum", "learning_rate": 0.03,
      "batch_size": 20})
  model = models.build_model(dense)
  assert [l.units for l in model.layers
          if isinstance(l, keras.layers.Dense)] == [64, 64, 10]
  assert (dense.optimizer, dense.learning_rate, dense.batch_size) == (
      "momentum", 0.03, 20)
  scaled = models.tuned_preset({"optimizer": "sgd", "learning_rate_scale": 2})
  assert scaled.learning_rate == pytest.approx(0.02)  # 2 x sgd's 0.01
  cnn = models.tuned_preset({"family": "cnn", "units": 128, "dropout": 0.3})
  assert cnn.conv_layers == models.get_preset("cnn").conv_layers
  assert (cnn.hidden_units, cnn.dropout) == ((128,), 0.3)
  # The Trainer's config: tuned values replace the preset, explicit win.
  config = hparams.TrainerConfig(model="dense_512", epochs=1).with_hyperparameters(
      {"family": "dense", "units": 64, "optimizer": "sgd", "batch_size": 20})
  resolved = config.resolved()
  assert (resolved.preset.hidden_units, resolved.optimizer,
          resolved.batch_size, resolved.epochs) == ((64,), "sgd", 20, 1)


def test_bad_tune_settings_are_one_line_errors():
  with pytest.raises(ValueError, match="unknown tuning algorithm 'grid'"):
    tuner_settings.TunerSettings(algorithm="grid")
  with pytest.raises(ValueError, match="unknown model families"):
    tuner_settings.TunerSettings(families=("resnet",))
  with pytest.raises(ValueError, match="tune trials must be >= 1"):
    tuner_settings.TunerSettings(trials=0)


def test_the_runs_seed_seeds_the_search_and_training_and_names_stay():
  """SEED is one setting: set in code or in the environment, the Tuner's
  search and the Trainer get it; summary.json keeps the settings' names."""
  for config in (config_lib.PipelineConfig(seed=7),
                 config_lib.PipelineConfig.from_env({"SEED": "7"})):
    assert config.trainer.seed == 7
    custom_config = tuner_task.tuner_custom_config(config.tuner, config.trainer)
    assert custom_config["tune"]["seed"] == custom_config["trainer"]["seed"] == 7
  record = config_lib.PipelineConfig(seed=7).settings_record()
  assert {k: v for k, v in record.items() if k.startswith("tune")} == {
      "tune": False, "tune_trials": 10, "tune_epochs": 2,
      "tune_algorithm": "random", "tune_families": ("dense", "cnn"),
      "tune_from": None}
  assert record["seed"] == record["trainer"]["seed"] == 7


def test_tune_adds_the_tuner_before_the_trainer(tmp_path):
  config = config_lib.PipelineConfig.from_env({
      "TUNE": "1", "TUNE_TRIALS": "3", "TUNE_EPOCHS": "1",
      "TUNE_ALGORITHM": "hyperband", "TUNE_FAMILIES": "dense",
      "OUTPUT_DIR": str(tmp_path)})
  dag = pipeline_lib.create_pipeline(config)
  ids = [c.id for c in dag.components]
  assert ids.index("Tuner") < ids.index("Trainer")
  trainer = dag.components[ids.index("Trainer")]
  tuner = dag.components[ids.index("Tuner")]
  assert trainer.inputs["hyperparameters"].producer_component_id == "Tuner"
  # A search is long: it waits for the data checks (the Trainer alone would
  # run beside them).
  assert "ValidationGate" in {n.id for n in tuner.upstream_nodes}
  tune = json.loads(tuner.exec_properties["custom_config"])["tune"]
  assert tune == {"trials": 3, "epochs": 1, "algorithm": "hyperband",
                  "families": ["dense"], "seed": 42}
  frozen = pipeline_lib.create_pipeline(dataclasses.replace(
      config, tuner=dataclasses.replace(config.tuner,
                                        tune_from=str(tmp_path / "best"))))
  ids = [c.id for c in frozen.components]
  assert "Tuner" not in ids and "TunedHyperparameters" in ids
  assert frozen.components[ids.index("Trainer")].inputs[
      "hyperparameters"].producer_component_id == "TunedHyperparameters"
  untuned = pipeline_lib.create_pipeline(
      config_lib.PipelineConfig(output_dir=str(tmp_path)))
  assert "Tuner" not in [c.id for c in untuned.components]


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("tuner")
  data_dir = write_fake_dataset(root / "raw", num_train=300, num_test=50)
  artifact = standard_artifacts.Examples()
  artifact.uri = str(root / "examples")
  artifact.split_names = artifact_utils.encode_split_names(
      ["train", "eval", "test"])
  ingest.ingest(artifact.uri, dataset="mnist", seed=0, train_fraction=0.7,
                data_dir=data_dir)
  return artifact


@pytest.mark.parametrize("algorithm", ["random", "hyperband", "bayesian"])
@pytest.mark.slow
def test_tfx_tuner_picks_the_best_trial_and_the_trainer_trains_it(
    algorithm, examples, tmp_path, monkeypatch):
  monkeypatch.setenv("KERAS_PROGRESS", "epoch")
  tune = tuner_settings.TunerSettings(trials=3, epochs=2, algorithm=algorithm,
                                      families=("dense",))
  trainer_config = hparams.TrainerConfig(model="dense_20x2", epochs=2)
  best_hp = standard_artifacts.HyperParameters()
  best_hp.uri = str(tmp_path / "best")
  results = standard_artifacts.TunerResults()
  results.uri = str(tmp_path / "results")
  for artifact in (best_hp, results):
    os.makedirs(artifact.uri)
  tuner_executor.Executor(
      tuner_executor.base_executor.BaseExecutor.Context(
          tmp_dir=str(tmp_path / "tmp"), unique_id="1")).Do(
      {"examples": [examples]},
      {"best_hyperparameters": [best_hp], "tuner_results": [results]},
      {"tuner_fn": pipeline_lib.TUNER_FN,
       "train_args": json.dumps({"splits": ["train"]}),
       "eval_args": json.dumps({"splits": ["eval"]}),
       "custom_config": json.dumps(
           tuner_task.tuner_custom_config(tune, trainer_config))})

  trials = json.load(open(os.path.join(results.uri, "tuner_results.json")))
  best = json.load(open(os.path.join(best_hp.uri,
                                     "best_hyperparameters.txt")))["values"]
  assert 1 <= len(trials) <= 3
  top = max(trials, key=lambda t: t["score"])
  assert {k: top[k] for k in best} == best  # the best trial's values
  assert best["family"] == "dense"

  # The Trainer's run_fn trains exactly those hyperparameters.
  fn_args = types.SimpleNamespace(
      custom_config=trainer_config.to_custom_config(),
      hyperparameters={"space": [], "values": best},
      train_files=[os.path.join(examples.uri, "Split-train", "*")],
      eval_files=[os.path.join(examples.uri, "Split-eval", "*")],
      serving_model_dir=str(tmp_path / "trainer" / "serving"),
      model_run_dir=str(tmp_path / "trainer" / "run"))
  trainer_task.run_fn(fn_args)
  written = json.load(open(os.path.join(fn_args.model_run_dir,
                                        trainer_task.CONFIG_FILE)))
  assert written["hyperparameters"] == best
  assert (written["optimizer"], written["batch_size"], written["epochs"]) == (
      best["optimizer"], best["batch_size"], 2)
  assert written["learning_rate"] == pytest.approx(
      best["learning_rate_scale"] *
      models.DEFAULT_LEARNING_RATES[best["optimizer"]])
  summary = open(os.path.join(fn_args.model_run_dir,
                              trainer_task.SUMMARY_FILE)).read()
  assert f"(None, {best['units']})" in summary


def test_report_shows_the_trials(tmp_path):
  from components.report import render as report  # pylint: disable=g-import-not-at-top
  trials = [{"trial_id": "0", "score": 0.81, "family": "dense", "units": 64,
             "optimizer": "sgd", "learning_rate_scale": 2.0},
            {"trial_id": "1", "score": 0.86, "family": "dense", "units": 100,
             "optimizer": "adam", "learning_rate": 0.001}]
  text = report._trials_table({"objective": "val_accuracy",  # pylint: disable=protected-access
                               "best_hyperparameters": trials[1],
                               "trials": trials})
  rows = [l for l in text if l.startswith("| 0 ") or l.startswith("| 1 ")]
  assert "| 0.8100 | dense | – | 64 |" in rows[0]
  assert "| sgd | 0.02 |" in rows[0]  # 2 x sgd's default learning rate
  report.plot_trials(trials, str(tmp_path / "trials.png"))
  assert (tmp_path / "trials.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.e2e
def test_tuned_pipeline_runs_end_to_end(mnist_dir, tmp_path):
  """`make run-local TUNE=1 ...` on a slice of MNIST: the Tuner runs, the
  Trainer trains its best values, summary.json and report.md show the
  trials."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(
      dataset="mnist", output_dir=str(tmp_path),
      ingestion=IngestionSettings(data_dir=mnist_dir, max_examples=1500),
      gate=GateSettings(min_accuracy=0.1),
      tuner=tuner_settings.TunerSettings(enabled=True, trials=2, epochs=1,
                                         families=("dense",)),
      trainer=hparams.TrainerConfig(epochs=1))
  summary = local_runner.run(config)
  assert summary["components"]["Tuner"]["state"] == "COMPLETE"
  tuning = summary["tuning"]
  assert len(tuning["trials"]) == 2
  assert tuning["trials"][0]["score"] >= tuning["trials"][1]["score"]
  best = tuning["best_hyperparameters"]
  assert summary["model"]["hyperparameters"] == best
  assert summary["model"]["optimizer"] == best["optimizer"]
  written = json.load(open(os.path.join(summary["run_dir"],
                                        trainer_task.CONFIG_FILE)))
  assert written["hyperparameters"] == best
  report_text = open(os.path.join(str(tmp_path), "report.md")).read()
  assert "## Tuning" in report_text and "tuner_trials.png" in report_text
