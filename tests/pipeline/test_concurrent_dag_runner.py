"""The concurrent runner's scheduling, with stand-in components (no TFX):
what runs side by side, what never starts after a failure, and that running
work is asked to stop. No sleeps: the stand-ins wait on each other's events."""
import signal
import sys
import threading

import pytest
from tfx.proto.orchestration import pipeline_pb2

from components import cancellation
from pipeline import concurrent_dag_runner

WAIT = 60  # seconds: only a broken runner ever waits this long


def _nodes(edges):
  """PipelineNodes from {node: [upstream nodes]}, in the given order."""
  nodes = []
  for node_id, upstream in edges.items():
    node = pipeline_pb2.PipelineNode()
    node.node_info.id = node_id
    node.upstream_nodes.extend(upstream)
    nodes.append(node)
  return nodes


# The pipeline's shape: the data checks and the Trainer both after the
# ingestion; the push after both.
# The Trainer listed first: a runner taking one node at a time, in this
# order, would train before checking.
EDGES = {"ingest": [], "train": ["ingest"], "stats": ["ingest"],
         "gate": ["stats"], "evaluate": ["train"],
         "push": ["evaluate", "gate"]}


def test_independent_components_run_side_by_side_and_in_dag_order():
  finished, order = {n: threading.Event() for n in EDGES}, []
  lock = threading.Lock()

  def launch(node):
    name = node.node_info.id
    with lock:
      assert all(u in order for u in node.upstream_nodes), (name, order)
    if name == "train":  # still training when the data checks finish
      assert finished["gate"].wait(WAIT), "the checks waited for training"
    with lock:
      order.append(name)
    finished[name].set()

  failures = concurrent_dag_runner.run_ready_nodes(_nodes(EDGES), launch)
  assert failures == []
  assert order.index("gate") < order.index("train") < order.index("evaluate")
  assert order[-1] == "push"


def test_a_failed_check_stops_training_and_nothing_after_it_starts():
  launched = []

  def launch(node):
    name = node.node_info.id
    launched.append(name)
    if name == "gate":
      raise RuntimeError("3 data anomalies")
    if name == "train":  # trains until the run asks it to stop
      for _ in range(WAIT * 100):
        reason = cancellation.stop_requested()
        if reason:
          raise cancellation.RunStopped(f"training stopped: {reason}")
        threading.Event().wait(0.01)
      raise AssertionError("training was never asked to stop")

  failures = concurrent_dag_runner.run_ready_nodes(_nodes(EDGES), launch)
  assert [(n, str(e)) for n, e in failures] == [
      ("gate", "3 data anomalies"),
      ("train", "training stopped: gate failed")]
  assert "evaluate" not in launched and "push" not in launched
  # Withdrawn once every component has returned: a next run in this
  # process (on any runner) trains to the end.
  assert cancellation.stop_requested() is None


def test_a_new_run_starts_without_the_last_runs_stop_request():
  cancellation.request_stop("an earlier run failed")
  seen = []
  concurrent_dag_runner.run_ready_nodes(
      _nodes({"only": []}),
      lambda node: seen.append(cancellation.stop_requested()))
  assert seen == [None]


class _Signalled(Exception):
  pass


def _main_thread_waits():
  frame = sys._current_frames()[threading.main_thread().ident]  # pylint: disable=protected-access
  return (frame.f_code.co_name == "wait" and
          frame.f_code.co_filename == threading.__file__)


def test_a_signal_that_reaches_another_thread_still_stops_the_wait():
  """Ctrl-C lands in whichever thread the kernel picks (TensorFlow has
  many); the waiting main thread must still run Python's handler at once,
  not when the running component ends."""
  def handler(signum, frame):
    raise _Signalled()

  release, signalled_early = threading.Event(), []

  def launch(node):
    del node
    while not _main_thread_waits():  # signalled once the runner waits
      threading.Event().wait(0.01)
    threading.Event().wait(0.2)  # ... blocked inside its wait, not entering it
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # this thread
    if release.wait(WAIT):  # the component ends only once the test says so
      return
    signalled_early.append(False)

  previous = signal.signal(signal.SIGUSR1, handler)
  try:
    with pytest.raises(_Signalled):
      concurrent_dag_runner.run_ready_nodes(_nodes({"train": []}), launch)
    signalled_early.append(not release.is_set())
  finally:
    release.set()
    signal.signal(signal.SIGUSR1, previous)
    cancellation.clear()
  assert signalled_early == [True]
