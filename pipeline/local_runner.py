"""Runs the pipeline on this machine: `python -m pipeline.local_runner`.

Settings come from environment variables (see `config.PipelineConfig`);
`make run-local` sets them. RUNNER=concurrent (default) runs each component
as soon as its inputs are ready, side by side (`concurrent_dag_runner`);
RUNNER=beam runs one at a time with TFX's BeamDagRunner on Beam's
DirectRunner, RUNNER=local with TFX's LocalDagRunner.
Exit status: 0 when the run finished (pushed or not), 1 on any error, 130
on Ctrl-C and 143 on SIGTERM.

The DAG's last component (`Report`) writes the report; this runner copies
it into OUTPUT_DIR: summary.json, report.md, report.html and report/*.png.

Beside it, by job: `run_lock` (one run per OUTPUT_DIR), `unchanged` (the
unchanged-rerun short-cut), `progress` (a line per component), `exits`
(one-line errors and exit statuses), `heap` (no garbage collection over the
libraries' start-up objects).

Failure and recovery: one run per OUTPUT_DIR at a time (`hold_run_lock`); a
run killed at any point leaves only unfinished executions behind, which the
next run ignores: finished components come from the cache and an
interrupted Trainer resumes from its last finished epoch (BackupAndRestore).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from typing import Any, Dict, Optional

from components import storage
from pipeline import config as config_lib
from pipeline import exits
from pipeline import heap
from pipeline import progress
from pipeline import run_lock
from pipeline import unchanged

SUMMARY_FILE = unchanged.SUMMARY_FILE
REPORT_FILES = (SUMMARY_FILE, "report.md", "report.html", "report")


def run(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Runs the DAG once and returns (and writes) the run summary.

  Raises `AlreadyRunningError` at once if another run is using
  `config.output_dir`, PermissionError if an output cannot be written.
  """
  exits.check_writable(config.output_dir, "OUTPUT_DIR")
  with run_lock.hold_run_lock(config.output_dir):
    inputs = unchanged.observe(config)
    state = unchanged.run_state(config, inputs)
    key = unchanged.digest(state)
    finished = unchanged.finished_run(config, key)
    if finished is not None:
      return finished
    # The report in OUTPUT_DIR is about to be replaced: whatever happens,
    # the key of the last run no longer vouches for it.
    last_run = os.path.join(config.output_dir, unchanged.LAST_RUN_FILE)
    unchanged.remove_file(last_run)
    summary = _run_locked(config, inputs)
    if key is not None:
      storage.write_atomically(last_run, json.dumps({
          "key": unchanged.digest(unchanged.state_after(config, state,
                                                        summary)),
          "run_id": summary.get("run_id")}))
    return summary


def _run_locked(config: config_lib.PipelineConfig,
                inputs: unchanged.RunInputs) -> Dict[str, Any]:
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.beam import beam_dag_runner  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.local import local_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import concurrent_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top

  storage.enable_object_storage()  # SERVING_DIR or DATA_DIR on s3://
  if not storage.is_remote(config.serving_model_dir):
    exits.check_writable(config.serving_model_dir, "SERVING_DIR")
  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  progress.show_progress(quiet_tfx_logs=not os.environ.get("VERBOSE"))
  dag = pipeline_lib.create_pipeline(
      config, metadata_connection_config=(
          metadata.sqlite_metadata_connection_config(
              config.metadata_path)),
      in_service=inputs.in_service, data_digest=inputs.data_digest,
      metadata_path=config.metadata_path)
  ir = pipeline_lib.compile_for_local(dag, rerun_from=config.rerun_from)
  runner = {"concurrent": concurrent_dag_runner.ConcurrentDagRunner,
            "beam": beam_dag_runner.BeamDagRunner,
            "local": local_dag_runner.LocalDagRunner}[config.runner]()
  print(f"pipeline {config.pipeline_name}: {config.dataset}, model "
        f"{config.trainer.model}, runner {config.runner}, output "
        f"{config.output_dir}", flush=True)
  heap.resume_collection()  # start-up objects frozen, collector on
  start = time.time()
  runner.run_with_ir(ir)
  summary = copy_report(config)
  print(f"finished in {time.time() - start:.1f} s", flush=True)
  return summary


def copy_report(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Copies the latest run's report (the `Report` component's `report`
  artifact) into `config.output_dir`; returns its summary, with `report`:
  the path of report.md there."""
  from components.report import run_record  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  record = run_record.RunRecord(run_record.sqlite_store(config.metadata_path),
                                config.pipeline_name)
  reports = record.outputs(pipeline_lib.REPORT_NODE_ID, "report")
  if not reports:
    raise RuntimeError(f"run {record.run_id} of {config.pipeline_name} wrote "
                       "no report")
  source = reports[0].uri
  for name in REPORT_FILES:
    target = os.path.join(config.output_dir, name)
    if os.path.isdir(target):
      shutil.rmtree(target)
    elif os.path.exists(target):
      os.remove(target)
    if os.path.isdir(os.path.join(source, name)):
      shutil.copytree(os.path.join(source, name), target)
    elif os.path.exists(os.path.join(source, name)):
      shutil.copy(os.path.join(source, name), target + ".tmp")
      os.replace(target + ".tmp", target)
  with open(os.path.join(config.output_dir, SUMMARY_FILE)) as f:
    summary = json.load(f)
  summary["report"] = os.path.join(config.output_dir, "report.md")
  return summary


def main(argv: Optional[list] = None) -> int:
  del argv
  heap.pause_collection()  # until the DAG starts, or main returns
  try:
    return _main()
  finally:
    heap.resume_collection()


def _main() -> int:
  signal.signal(signal.SIGTERM, exits.exit_on_sigterm)
  signal.signal(signal.SIGINT, exits.interrupt)
  try:
    config = config_lib.PipelineConfig.from_env()
    summary = run(config)
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return exits.EXIT_INTERRUPTED
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(exits.root_cause(e), KeyboardInterrupt):  # Ctrl-C in Beam
      print("interrupted", file=sys.stderr)
      return exits.EXIT_INTERRUPTED
    if os.environ.get("VERBOSE"):
      raise
    print(f"error: {exits.one_line(exits.root_cause(e))}", file=sys.stderr)
    return exits.EXIT_ERROR
  print(f"summary: {os.path.join(config.output_dir, SUMMARY_FILE)}")
  print(f"report:  {summary['report']}")
  print(summary["verdict"])
  return 0


if __name__ == "__main__":
  storage.exit_process(main())  # no teardown abort after S3 use
