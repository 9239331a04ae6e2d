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
