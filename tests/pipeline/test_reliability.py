"""Failure and recovery: kills, reruns, concurrent runs, disk faults.

Each test states the guarantee it demonstrates (docs/reliability.md: "Failure and
recovery").
"""
import contextlib
import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from serving import registry
from serving import versions
from components.evaluator.settings import GateSettings
from components.ingestion.settings import IngestionSettings
from components.trainer import hparams
from pipeline import config as config_lib
from pipeline import exits
from pipeline import local_runner
from pipeline import run_lock
from components.report import run_record

DATA_NODES = ("MnistExampleGen", "ImportSchemaGen", "StatisticsGen",
              "ExampleValidator", "ValidationGate")


def _env(data_dir, output_dir, **settings):
  env = dict(os.environ, DATASET="mnist", DATA_DIR=data_dir,
             OUTPUT_DIR=str(output_dir), MAX_EXAMPLES="3000",
             MODEL="dense_512", MIN_ACCURACY="0.5", KERAS_PROGRESS="epoch")
  env.pop("VERBOSE", None)
  env.update({k: str(v) for k, v in settings.items()})
  return env


def _runner(env):
  return subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-m", "pipeline.local_runner"], env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(pattern, process, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    found = glob.glob(pattern, recursive=True)
    if found:
      return found
    if process.poll() is not None:
      pytest.fail("run ended before training was checkpointed:\n" +
                  process.stdout.read()[-3000:])
    time.sleep(0.05)
  pytest.fail(f"no {pattern} after {timeout} s")


# The killed run's length. The test kills the run as soon as the backup of
# epoch 1 appears (polled every 50 ms; the kill landed within epoch 2 in
# every run seen), so epochs 2 to KILL_EPOCHS - 1, about 0.4 s each at batch
# 8 on 3,000 examples here, are the margin for the kill to land before the
# last epoch: 8 gives 6 epochs (2.4 s). (40 gave 38: 15 s of training after
# each resume, in each of three tests.)
KILL_EPOCHS = 8


@pytest.mark.slow
@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM,
                                         signal.SIGINT])  # SIGINT: Ctrl-C
@pytest.mark.e2e
def test_a_run_killed_mid_training_resumes_and_pushes(mnist_dir, tmp_path,
                                                      kill_signal):
  """Killed (or Ctrl-C: exit 130, "interrupted") after its first finished
  epoch, a run leaves no served version and no usable lock; the next run reuses the cached data components, resumes
  at the next epoch, and pushes. A second run started meanwhile is refused."""
  env = _env(mnist_dir, tmp_path, EPOCHS=KILL_EPOCHS, BATCH_SIZE=8,
             EARLY_STOPPING_PATIENCE=0, REDUCE_LR_PATIENCE=0)
  config = config_lib.PipelineConfig.from_env(env)
  first = _runner(env)
  if kill_signal == signal.SIGKILL:  # meanwhile: one run per output dir
    _wait_for(str(tmp_path / "metadata"), first)  # it holds the lock
    # Paused (still holding the lock) while the second run is refused, so
    # that it trains no epoch meanwhile: the kill below lands after epoch 1
    # however long the refused run takes to start.
    first.send_signal(signal.SIGSTOP)
    try:
      concurrent = subprocess.run(
          [sys.executable, "-m", "pipeline.local_runner"], env=env,
          capture_output=True, text=True, timeout=120, check=False)
    finally:
      first.send_signal(signal.SIGCONT)
    assert concurrent.returncode == 1
    assert (f"error: AlreadyRunningError: {tmp_path} is in use by another run"
            f" (pid {first.pid} on ") in concurrent.stderr
  # Killed right after epoch 1 is backed up: in the middle of epoch 2.
  _wait_for(os.path.join(config.pipeline_root, "Trainer", "resume", "**",
                         "checkpoint"), first)
  first.send_signal(kill_signal)
  output = first.communicate(timeout=60)[0]
  assert first.returncode == {signal.SIGKILL: -9, signal.SIGTERM: 143,
                              signal.SIGINT: 130}[kill_signal]
  if kill_signal == signal.SIGTERM:
    assert "terminated (SIGTERM): the next run reuses" in output
  if kill_signal == signal.SIGINT:
    assert output.rstrip().endswith("interrupted"), output[-2000:]
  assert not os.path.exists(config.serving_model_dir) or \
      versions.existing_versions(config.serving_model_dir) == []

  # The data checks run beside the Trainer: those the killed run finished.
  killed = run_record.RunRecord(run_record.sqlite_store(config.metadata_path),
                                config.pipeline_name)
  finished = [n for n in DATA_NODES if killed.state(n) == "COMPLETE"]
  assert "MnistExampleGen" in finished

  second = _runner(env)
  output = second.communicate(timeout=600)[0]
  assert second.returncode == 0, output[-3000:]
  # SIGKILL and SIGTERM (os._exit) leave the lock file to clear; Ctrl-C
  # unwinds and releases it.
  assert ("note: cleared a stale lock of pid" in output) == (
      kill_signal != signal.SIGINT)
  assert "resumed from the backup of an interrupted run: epochs " in output
  summary = json.load(open(tmp_path / "summary.json"))
  states = {n: c["state"] for n, c in summary["components"].items()}
  assert all(states[n] == "CACHED" for n in finished), (finished, states)
  assert states["Trainer"] == "COMPLETE"
  history = json.load(open(os.path.join(summary["run_dir"], "history.json")))
  assert 1 <= history["epoch"][0] < KILL_EPOCHS - 1  # resumed mid-training
  assert history["epoch"][-1] == KILL_EPOCHS - 1
  assert summary["pushed"] and summary["new_version"]
  serving = os.listdir(config.serving_model_dir)
  assert not [n for n in serving if n.startswith(versions.STAGING_PREFIX)]
  assert versions.latest_version_dir(config.serving_model_dir) == \
      summary["pushed_to"]


@pytest.mark.slow
@pytest.mark.e2e
def test_same_seed_gives_identical_splits_and_accuracy(mnist_dir, tmp_path):
  """Two full runs (the second with NO_CACHE) with one seed: every component
  recomputed, byte-identical split files, test accuracy within 0.3 points,
  and the seed recorded in metadata and summary."""
  config = config_lib.PipelineConfig(
      dataset="mnist",
      ingestion=IngestionSettings(data_dir=mnist_dir, max_examples=3000),
      output_dir=str(tmp_path), gate=GateSettings(min_accuracy=0.5), seed=7,
      trainer=hparams.TrainerConfig(model="dense_512", epochs=2, seed=7))
  first = local_runner.run(config)
  second = local_runner.run(dataclasses.replace(config, enable_cache=False))
  assert second["cached_components"] == []
  assert set(second["recomputed_components"]) == set(first["components"])
  assert abs(first["test_accuracy"]["candidate"] -
             second["test_accuracy"]["candidate"]) <= 0.003

  store = run_record.sqlite_store(config.metadata_path)
  examples = [a.uri for a in store.get_artifacts_by_type("Examples")]
  assert len(examples) == 2

  def split_bytes(uri):
    return {os.path.relpath(p, uri): open(p, "rb").read()
            for p in glob.glob(os.path.join(uri, "Split-*", "*"))}
  assert split_bytes(examples[0]) == split_bytes(examples[1])
  assert len(split_bytes(examples[0])) >= 3

  executions = store.get_executions()
  trainer_configs = [json.loads(e.custom_properties["custom_config"]
                                .string_value) for e in executions
                     if "run_fn" in e.custom_properties]
  assert [c["seed"] for c in trainer_configs] == [7, 7]
  assert [e.custom_properties["seed"].int_value for e in executions
          if "train_fraction" in e.custom_properties] == [7, 7]
  assert second["settings"]["seed"] == 7
  assert second["settings"]["trainer"]["seed"] == 7


def test_a_second_run_on_the_same_output_dir_is_refused_at_once(tmp_path):
  config = config_lib.PipelineConfig(output_dir=str(tmp_path))
  with run_lock.hold_run_lock(str(tmp_path), log=lambda _: None):
    with pytest.raises(run_lock.AlreadyRunningError,
                       match=f"{tmp_path} is in use by another run \\(pid "
                       f"{os.getpid()} on "):
      local_runner.run(config)
  notes = []
  (tmp_path / run_lock.LOCK_FILE).write_text(json.dumps(
      {"pid": 999999, "host": "h", "started": "2026-01-01 00:00:00"}))
  with run_lock.hold_run_lock(str(tmp_path), log=notes.append) as stale:
    assert stale == "pid 999999 on h, started 2026-01-01 00:00:00"
  assert notes and notes[0].startswith("note: cleared a stale lock")
  assert (tmp_path / run_lock.LOCK_FILE).read_text() == ""  # clean release


@contextlib.contextmanager
def _tmpfs(path, size):
  os.makedirs(path, exist_ok=True)
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                           "tmpfs", str(path)], capture_output=True,
                          check=False)
  if result.returncode:
    pytest.skip("mounting a tmpfs needs root (simulates full and read-only "
                "disks)")
  try:
    yield str(path)
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


def _saved_model(path):
  module = tf.Module()
  module.v = tf.Variable(1.0)
  tf.saved_model.save(module, str(path))
  return str(path)


def _main(env):
  result = subprocess.run([sys.executable, "-m", "pipeline.local_runner"],
                          env=env, capture_output=True, text=True,
                          timeout=300, check=False)
  return result.returncode, [l for l in result.stderr.splitlines()
                             if l.startswith("error:")]


@pytest.mark.e2e
def test_unwritable_output_or_serving_dir_fails_fast_and_keeps_service(
    tmp_path):
  """A read-only output or serving directory stops the run before any work,
  in one line; the model in service stays."""
  with _tmpfs(tmp_path / "ro", "4m") as mount:
    serving_root = os.path.join(mount, "serving")
    model_name = config_lib.PipelineConfig.from_env(
        _env("/nonexistent", tmp_path)).model_name
    previous, _ = versions.push(_saved_model(tmp_path / "m"),
                                  os.path.join(serving_root, model_name),
                                  now=1)
    subprocess.run(["mount", "-o", "remount,ro", mount], check=True)
    code, errors = _main(_env("/nonexistent", os.path.join(mount, "out")))
    assert code == 1
    assert errors == [f"error: PermissionError: OUTPUT_DIR={mount}/out is not "
                      f"writable: {mount} is on a read-only filesystem"]
    code, errors = _main(_env("/nonexistent", tmp_path / "out",
                              SERVING_DIR=serving_root))
    assert code == 1
    assert errors == [f"error: PermissionError: SERVING_DIR={serving_root}/"
                      f"{model_name} is not writable: {serving_root}/"
                      f"{model_name} is on a read-only filesystem"]
    assert tf.saved_model.load(previous) is not None
  (tmp_path / "file").write_text("x")
  code, errors = _main(_env("/nonexistent", tmp_path / "file" / "out"))
  assert errors == [f"error: PermissionError: OUTPUT_DIR={tmp_path}/file/out "
                    f"is not writable: {tmp_path}/file is not a directory"]
  code, errors = _main(_env("/nonexistent", tmp_path / "out",
                            SERVING_DIR=tmp_path / "file"))
  assert code == 1
  assert errors == [f"error: PermissionError: SERVING_DIR={tmp_path}/file/"
                    f"{model_name} is not writable: {tmp_path}/file is not a "
                    "directory"]


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
  """A small pipeline run whose model is in its own serving directory."""
  config = config_lib.PipelineConfig(
      dataset="mnist",
      ingestion=IngestionSettings(data_dir=mnist_dir, max_examples=1200),
      output_dir=str(tmp_path_factory.mktemp("faults")),
      # Every candidate is blessed: the faults, not the gate, are tested.
      gate=GateSettings(min_accuracy=0.3, max_accuracy_drop=1.0,
                        min_class_accuracy=0.0, max_class_accuracy_drop=1.0),
      trainer=hparams.TrainerConfig(model="dense_100_relu", epochs=1))
  return config, local_runner.run(config)


@pytest.mark.e2e
def test_full_disk_during_push_leaves_the_model_in_service(trained,
                                                           tmp_path):
  """The Pusher runs out of space: the run fails in one line, no partial
  version or staging copy remains, and the previous version still loads."""
  config, first = trained
  previous_model = first["pushed_to"]
  size = sum(os.path.getsize(p) for p in glob.glob(
      os.path.join(previous_model, "**"), recursive=True) if os.path.isfile(p))
  with _tmpfs(tmp_path / "disk", f"{size + 64 * 1024}") as mount:
    serving = os.path.join(mount, config.model_name)
    shutil.copytree(previous_model, os.path.join(serving, "1"))
    registry.rebuild_index(serving)
    registry_before = open(registry.registry_path(serving)).read()
    faulty = dataclasses.replace(
        config, serving_dir=mount,
        trainer=dataclasses.replace(config.trainer, epochs=2))
    with pytest.raises(Exception) as error:
      local_runner.run(faulty)
    message = exits.one_line(exits.root_cause(error.value))
    assert message == (f"PushError: {serving}: push failed (No space left on "
                       "device); the versions in service are untouched")
    assert versions.existing_versions(serving) == [1]
    assert not [n for n in os.listdir(serving)
                if n.startswith(versions.STAGING_PREFIX)]
    assert open(registry.registry_path(serving)).read() == registry_before
    loaded = tf.saved_model.load(os.path.join(serving, "1"))
    assert "serving_images" in loaded.signatures


@pytest.mark.e2e
def test_an_evaluator_failure_pushes_nothing(trained, monkeypatch):
  """Whatever breaks in the Evaluator, the model in service stays."""
  config, first = trained
  from components.evaluator import executor as evaluator_executor  # pylint: disable=g-import-not-at-top

  def crash(*args, **kwargs):
    raise RuntimeError("simulated Evaluator crash")
  monkeypatch.setattr(evaluator_executor.Executor, "Do", crash)
  before = versions.existing_versions(config.serving_model_dir)
  with pytest.raises(Exception) as error:
    local_runner.run(dataclasses.replace(config, rerun_from="Evaluator"))
  assert "simulated Evaluator crash" in str(exits.root_cause(
      error.value))
  assert versions.existing_versions(config.serving_model_dir) == before
  assert tf.saved_model.load(first["pushed_to"]) is not None
