"""The start-up heap: no full garbage collection while the libraries import,
and what they built frozen before the DAG runs (`pipeline.heap`). Each test
runs in a process of its own, as the collector's state is the process's."""
import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT


# Defined in each child: what the collector's state is at that moment.
_RECORD_HEAP = """
import gc as _gc, json as _json, os as _os, sys as _sys
def record_heap(modules):
  _json.dump({"enabled": _gc.isenabled(), "frozen": _gc.get_freeze_count(),
              "full_collections": _gc.get_stats()[2]["collections"],
              "imported": sorted(m for m in modules if m in _sys.modules)},
             open(_os.environ["RESULT"], "w"))
"""


def _python(code: str, tmp_path, **env) -> dict:
  """Runs `code` in a fresh interpreter (with `record_heap` defined);
  returns the JSON it wrote to $RESULT."""
  result = tmp_path / "result.json"
  done = subprocess.run(
      [sys.executable, "-c", _RECORD_HEAP + textwrap.dedent(code)],
      cwd=REPO_ROOT,
      env=dict(os.environ, PYTHONPATH=REPO_ROOT, RESULT=str(result), **env),
      capture_output=True, text=True, timeout=300, check=False)
  assert result.exists(), done.stderr[-3000:]
  return json.loads(result.read_text())


def test_objects_built_while_paused_are_frozen_and_the_collector_runs_after(
    tmp_path):
  seen = _python("""
      import gc, json, os
      from pipeline import heap
      full, collected = [], []
      def watch(phase, info):
        if phase == "stop":
          collected.append(info["collected"])
          if info["generation"] == 2:
            full.append(1)
      gc.callbacks.append(watch)
      heap.pause_collection()
      # Start-up: plenty of long-lived objects, cycles among them.
      kept = []
      for _ in range(200_000):
        pair = [None]
        pair[0] = pair
        kept.append(pair)
      paused = {"enabled": gc.isenabled(), "full_collections": len(full)}
      heap.resume_collection()
      frozen = gc.get_freeze_count()
      del collected[:]
      heap.resume_collection()  # a second call changes nothing
      # The run's own garbage is still collected.
      for _ in range(1000):
        cycle = [None]
        cycle[0] = cycle
      del cycle
      gc.collect()
      json.dump({"paused": paused, "enabled": gc.isenabled(),
                 "frozen": frozen, "frozen_after_second": gc.get_freeze_count(),
                 "collected": sum(collected)}, open(os.environ["RESULT"], "w"))
      """, tmp_path)
  assert seen["paused"] == {"enabled": False, "full_collections": 0}
  assert seen["enabled"]
  assert seen["frozen"] >= 200_000
  assert seen["frozen_after_second"] == seen["frozen"]
  assert seen["collected"] >= 1000


def test_without_a_pause_nothing_is_frozen(tmp_path):
  """A library caller (tests, `make compare`'s later runs) freezes nothing:
  an earlier run's garbage is never kept."""
  seen = _python("""
      import gc, json, os
      from pipeline import heap
      heap.resume_collection()
      json.dump({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()},
                open(os.environ["RESULT"], "w"))
      """, tmp_path)
  assert seen == {"enabled": True, "frozen": 0}


def test_the_dag_starts_with_the_start_up_heap_frozen(tmp_path,
                                                      fake_data_dir):
  """`python -m pipeline.local_runner` as `make run-local` runs it, up to
  the moment the runner gets the DAG: TensorFlow and TFX are imported,
  no full collection has run, their objects are frozen, the collector is
  on."""
  seen = _python("""
      import sys, types
      import pipeline
      from pipeline import local_runner
      # The runner, which gets the DAG; importing the real one here would
      # import TFX before main() starts.
      class ConcurrentDagRunner:
        def run_with_ir(self, ir):
          record_heap(("tensorflow", "tfx", "apache_beam"))
          raise RuntimeError("stopped before the first component")
      runner = types.ModuleType("pipeline.concurrent_dag_runner")
      runner.ConcurrentDagRunner = ConcurrentDagRunner
      sys.modules[runner.__name__] = pipeline.concurrent_dag_runner = runner
      sys.exit(local_runner.main())
      """, tmp_path, DATA_DIR=fake_data_dir, OUTPUT_DIR=str(tmp_path / "out"))
  assert seen["imported"] == ["apache_beam", "tensorflow", "tfx"]
  assert seen["full_collections"] == 0
  assert seen["frozen"] > 500_000  # the libraries' objects
  assert seen["enabled"]


def test_a_run_stopped_before_the_dag_leaves_the_collector_on(tmp_path):
  """`main` turns the collector back on however it returns: here a setting
  the run cannot use (exit 1 before any import of TFX)."""
  seen = _python("""
      import gc, json, os
      from pipeline import local_runner
      status = local_runner.main()
      json.dump({"status": status, "enabled": gc.isenabled()},
                open(os.environ["RESULT"], "w"))
      """, tmp_path, MIN_ACCURACY="nan", OUTPUT_DIR=str(tmp_path / "out"))
  assert seen == {"status": 1, "enabled": True}


def test_a_kubeflow_task_runs_its_executor_with_the_start_up_heap_frozen(
    tmp_path):
  """Each Kubeflow task is a process of its own with the same start-up:
  when TFX's entrypoint gets the task, what the task imported (TensorFlow,
  TFX) is frozen, no full collection has run and the collector is on."""
  output_file = tmp_path / "executor_output.json"
  seen = _python("""
      import json, os, sys, types
      # TFX's entrypoint, which would import the executor and run it.
      tfx_entrypoint = types.ModuleType(
          "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
      def parse_flags(argv):
        from absl.flags import argparse_flags
        return argparse_flags.ArgumentParser().parse_known_args(argv)
      tfx_entrypoint._parse_flags = parse_flags
      def main(argv):
        record_heap(("tensorflow", "tfx"))
        open(os.environ["OUTPUT_FILE"], "w").write("{}")
      tfx_entrypoint.main = main
      sys.modules[tfx_entrypoint.__name__] = tfx_entrypoint
      from pipeline import kubeflow_entrypoint
      kubeflow_entrypoint.main([
          "--json_serialized_invocation_args",
          json.dumps({"outputs": {"outputFile": os.environ["OUTPUT_FILE"]}}),
          "--json_serialized_inputs_spec_args", "{}"])
      """, tmp_path, OUTPUT_FILE=str(output_file))
  assert seen["imported"] == ["tensorflow", "tfx"]
  assert seen["full_collections"] == 0
  assert seen["frozen"] > 200_000
  assert seen["enabled"]
