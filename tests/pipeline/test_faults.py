"""The gate's promise under the faults a user meets, through the local
runner (docs/reliability.md: "What the gate promises"): data replaced in place, another
run's report, a damaged bookkeeping file, a push between the start of a run
and its comparison, a loosened gate."""
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from components.evaluator.settings import GateSettings
from components.ingestion import idx
from components.ingestion.settings import IngestionSettings
from components.trainer import hparams
from pipeline import config as config_lib
from pipeline import exits
from pipeline import local_runner
from pipeline import unchanged
from pipeline import pipeline as pipeline_lib
from serving import versions
from tests.conftest import write_fake_dataset


def _config(data_dir, output_dir, **settings):
  return config_lib.PipelineConfig(
      dataset="mnist", ingestion=IngestionSettings(data_dir=str(data_dir)),
      output_dir=str(output_dir),
      gate=GateSettings(min_accuracy=0.0),
      trainer=hparams.TrainerConfig(model="dense_100_relu", epochs=1),
      **settings)


@pytest.mark.e2e
def test_the_report_in_output_dir_is_always_the_last_runs(tmp_path, capsys):
  """A run that cannot be skipped (NO_CACHE=1, another dataset) replaces the
  report: rerunning the first settings must not call it theirs (before: `unchanged since
  run …` with the other dataset's verdict). A truncated `.last-run.json`
  is ignored with a note naming it (before: `error: JSONDecodeError` on
  every later run)."""
  data = write_fake_dataset(tmp_path / "data")
  mnist = _config(data, tmp_path / "out")
  first = local_runner.run(mnist)
  fashion = local_runner.run(dataclasses.replace(
      mnist, dataset="fashion_mnist", enable_cache=False))
  assert fashion["dataset"] == "fashion_mnist"
  again = local_runner.run(mnist)
  assert "unchanged" not in again
  assert again["dataset"] == "mnist" and again["run_id"] != first["run_id"]
  with open(tmp_path / "out" / "summary.json") as f:
    assert json.load(f)["pushed_to"] == first["pushed_to"]
  last_run = tmp_path / "out" / unchanged.LAST_RUN_FILE
  last_run.write_text(last_run.read_text()[:9])  # a crash mid-write
  capsys.readouterr()
  after_damage = local_runner.run(mnist)
  assert "unchanged" not in after_damage  # the key could not be trusted
  assert f"note: {last_run} is unreadable" in capsys.readouterr().out
  assert local_runner.run(mnist)["unchanged"]


def _invert_first_image(path):
  """Rewrites a raw IDX images file in place: the first image inverted,
  size and modification time kept (as a copy tool that keeps times does)."""
  stat = os.stat(path)
  with open(path, "r+b") as f:
    f.seek(16)
    pixels = np.frombuffer(f.read(784), np.uint8)
    f.seek(16)
    f.write((255 - pixels).tobytes())
  os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
  assert os.path.getsize(path) == stat.st_size


@pytest.mark.e2e
def test_data_replaced_in_place_is_ingested_again(tmp_path):
  """Raw IDX files, one training image changed with size and time kept: the
  rerun ingests and trains again (before: `unchanged since run …`, and
  TFX's cache would have reused the old examples too). Stray files in the
  data directory (a dangling link, a download's `.part`) change nothing
  (before: they crashed the check)."""
  data = write_fake_dataset(tmp_path / "data", gz=False)
  os.symlink(tmp_path / "nowhere", os.path.join(data, "dangling"))
  (tmp_path / "data" / "train-images-idx3-ubyte.part").write_bytes(b"x")
  config = _config(data, tmp_path / "out")
  first = local_runner.run(config)
  assert first["data_digest"]
  (tmp_path / "data" / "train-images-idx3-ubyte.part").unlink()
  assert local_runner.run(config)["unchanged"]
  _invert_first_image(os.path.join(data, "train-images-idx3-ubyte"))
  second = local_runner.run(config)
  assert "unchanged" not in second
  assert {"MnistExampleGen", "Trainer"} <= set(
      second["recomputed_components"])
  assert second["data_digest"] != first["data_digest"]


@pytest.mark.e2e
def test_a_push_during_the_runs_start_is_never_cached_as_the_baseline(
    tmp_path, monkeypatch):
  """Another run pushes version B after this run read the serving directory
  (A in service) and before its baseline lookup: this run compares with A,
  its push is refused in one line, and after a rollback to A (B deleted)
  the next run compares with A again (before: the lookup cached "A in
  service" holding B's model, and every later run compared with the deleted
  B and was refused, until NO_CACHE=1)."""
  config = _config(write_fake_dataset(tmp_path / "data"), tmp_path / "out")
  first = local_runner.run(config)
  version_a = first["pushed_to"]
  version_b = os.path.join(config.serving_model_dir,
                           str(int(os.path.basename(version_a)) + 1))
  real_build = pipeline_lib.create_pipeline

  def build_then_another_run_pushes(*args, **kwargs):
    dag = real_build(*args, **kwargs)
    other = tmp_path / "other_model"  # another model: A plus an asset
    shutil.copytree(version_a, other, ignore=shutil.ignore_patterns(
        versions.RECORD_FILE))
    (other / "assets" / "note.txt").write_text("another run's model")
    versions.push(str(other), config.serving_model_dir,
                  {"accuracy": 0.5}, now=int(os.path.basename(version_b)))
    return dag

  monkeypatch.setattr(pipeline_lib, "create_pipeline",
                      build_then_another_run_pushes)
  retrained = dataclasses.replace(config, trainer=dataclasses.replace(
      config.trainer, epochs=2))
  with pytest.raises(Exception) as error:
    local_runner.run(retrained)
  assert exits.one_line(exits.root_cause(error.value)) == (
      f"ServingChangedError: {config.serving_model_dir}: the model in service"
      f" changed since the Evaluator compared with it (version "
      f"{os.path.basename(version_a)} then, version "
      f"{os.path.basename(version_b)} now); not pushed, rerun to compare with"
      f" version {os.path.basename(version_b)}")
  monkeypatch.setattr(pipeline_lib, "create_pipeline", real_build)
  assert versions.serving_state(config.serving_model_dir) == \
      os.path.basename(version_b)
  versions_dir = config.serving_model_dir
  shutil.rmtree(version_b)  # rolled back to A
  rerun = local_runner.run(retrained)
  assert rerun["compared_with"] == os.path.basename(version_a)
  assert rerun["baseline_version"] == version_a
  assert versions.existing_versions(versions_dir)[0] == int(
      os.path.basename(version_a))


@pytest.mark.e2e
def test_a_loosened_gate_never_pushes_into_the_production_lineage(tmp_path):
  """Gate settings looser than the dataset's defaults push into a lineage
  of their own, unless ALLOW_LOOSE_GATE=1 says otherwise (before: a
  debugging run with MIN_ACCURACY=0 MAX_ACCURACY_DROP=1 replaced the
  production model)."""
  data = write_fake_dataset(tmp_path / "data")
  env = {"DATASET": "mnist", "DATA_DIR": data, "OUTPUT_DIR": str(tmp_path),
         "MIN_ACCURACY": "0", "MAX_ACCURACY_DROP": "1", "EPOCHS": "1",
         "MODEL": "dense_100_relu"}
  loose = config_lib.PipelineConfig.from_env(env)
  assert loose.loose_gate_settings == ("MIN_ACCURACY", "MAX_ACCURACY_DROP",
                                       "MIN_CLASS_ACCURACY")
  summary = local_runner.run(loose)
  assert os.path.dirname(summary["pushed_to"]) == os.path.join(
      str(tmp_path), "serving", "mnist_loose")
  assert not os.path.exists(tmp_path / "serving" / "mnist")
  allowed = config_lib.PipelineConfig.from_env(
      dict(env, ALLOW_LOOSE_GATE="1"))
  assert allowed.serving_model_dir == os.path.join(str(tmp_path), "serving",
                                                   "mnist")


def _in_service(summary):
  """Whether the version a run reports as pushed is whole in the serving
  directory and is the one in service there."""
  pushed = summary["pushed_to"]
  serving = os.path.dirname(pushed)
  return (versions.is_complete(pushed) and
          versions.serving_state(serving) == os.path.basename(pushed))


@pytest.mark.e2e
def test_a_removed_push_is_put_back_not_reported(tmp_path):
  """The serving directory removed after a push (a cleanup, a lost volume),
  or its newest version rolled back: the next run with the same settings
  puts its model back in service and reports that version (before: every
  later run printed `pushed to …/<V>` from the cache while nothing was in
  service, and the unchanged short-cut then repeated it)."""
  config = _config(write_fake_dataset(tmp_path / "data"), tmp_path / "out")
  first = local_runner.run(config)
  assert _in_service(first)
  shutil.rmtree(config.serving_model_dir)
  again = local_runner.run(config)
  assert "unchanged" not in again
  assert again["compared_with"] == versions.NO_VERSION
  assert _in_service(again), again["pushed_to"]
  assert "Pusher" in again["recomputed_components"]
  assert local_runner.run(config)["unchanged"]  # its push is there now
  # A second model pushed on top, then rolled back: back to the state that
  # run started from, and its rerun must not report the removed version.
  better = dataclasses.replace(
      config, gate=dataclasses.replace(config.gate, max_accuracy_drop=1.0),
      trainer=dataclasses.replace(config.trainer, epochs=2))
  newer = local_runner.run(better)
  assert _in_service(newer) and newer["pushed_to"] != again["pushed_to"]
  shutil.rmtree(newer["pushed_to"])
  rerun = local_runner.run(better)
  assert rerun["compared_with"] == os.path.basename(again["pushed_to"])
  assert _in_service(rerun), rerun["pushed_to"]
