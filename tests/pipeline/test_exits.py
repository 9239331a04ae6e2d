"""Ctrl-C once ends a local run with 130, even when a library catches the
interrupt and waits (Beam can wait for a worker thread still training: a
full test run once saw a Ctrl-C'd run go on training for a minute)."""
import os
import signal
import subprocess
import sys

from pipeline import run_lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

HELD_MAIN_THREAD = r"""
import signal, sys, time
from pipeline import exits, run_lock
exits.INTERRUPT_GRACE_SECONDS = 1
signal.signal(signal.SIGINT, exits.interrupt)
with run_lock.hold_run_lock(sys.argv[1]):
  try:
    print("ready", flush=True)
    time.sleep(600)
  except KeyboardInterrupt:
    time.sleep(600)  # a library that caught it, waiting for its worker
"""


def test_ctrl_c_ends_the_run_even_when_a_library_holds_on(tmp_path):
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-c", HELD_MAIN_THREAD, str(tmp_path)], cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  assert process.stdout.readline().strip() == "ready"
  process.send_signal(signal.SIGINT)
  output = process.communicate(timeout=120)[0]
  assert process.returncode == 130
  assert output.strip().endswith("interrupted")
  # Released cleanly: the next run finds no stale holder to clear.
  with open(tmp_path / run_lock.LOCK_FILE) as f:
    assert f.read() == ""


def test_nonsense_gate_settings_stop_in_one_line_before_any_work(tmp_path):
  """`make run-local` with a threshold no candidate can meet or no
  comparison refuses: one line naming the setting, exit 1, nothing written
  (before: MIN_ACCURACY=1.5 or =nan ran the whole DAG and was refused only
  at the gate; MAX_ACCURACY_DROP=nan refused every later candidate of the
  production lineage, silently)."""
  for name, value in (("MAX_ACCURACY_DROP", "nan"), ("MIN_ACCURACY", "1.5"),
                      ("MIN_ACCURACY", "nan"), ("MIN_CLASS_ACCURACY", "-1"),
                      ("MAX_CLASS_ACCURACY_DROP", "inf")):
    output_dir = tmp_path / f"{name}-{value}"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner"], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO, OUTPUT_DIR=str(output_dir),
                 DATA_DIR=str(tmp_path / "no-data"), **{name: value}),
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"error: ValueError: {name}={value!r} is not a valid number between "
        "0 and 1"), done.stderr
    assert not output_dir.exists()
  # The README's other examples of a setting the run cannot use.
  for name, value, error in (
      ("TRAIN_FRACTION", "nan", "TRAIN_FRACTION=nan is not a number between "
       "0 and 1 (exclusive)"),
      ("MODEL", "resnet", "unknown model 'resnet'")):
    output_dir = tmp_path / f"{name}-{value}"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner"], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO, OUTPUT_DIR=str(output_dir),
                 **{name: value}),
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: ValueError: {error}"), done.stderr
    assert not output_dir.exists()


def test_settings_built_in_code_are_checked_alike():
  from components.evaluator.settings import GateSettings  # pylint: disable=g-import-not-at-top
  from components.ingestion.settings import IngestionSettings  # pylint: disable=g-import-not-at-top
  from components.trainer.hparams import TrainerConfig  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=r"^MAX_ACCURACY_DROP=nan is not a "
                     "number between 0 and 1$"):
    GateSettings(max_accuracy_drop=float("nan"))
  with pytest.raises(ValueError, match=r"^MIN_ACCURACY=1.5 is not"):
    GateSettings(min_accuracy=1.5)
  with pytest.raises(ValueError, match=r"^TRAIN_FRACTION=nan is not"):
    IngestionSettings(train_fraction=float("nan"))
  with pytest.raises(ValueError, match="learning_rate must be > 0"):
    TrainerConfig(learning_rate=float("nan"))
  assert GateSettings(min_accuracy=0.0, max_accuracy_drop=1.0)  # the edges
