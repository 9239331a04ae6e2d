"""Runs the pipeline on this machine: `python -m pipeline.local_runner`.

Settings come from environment variables (see `config.PipelineConfig`);
`make run-local` sets them. RUNNER=beam (default) runs the DAG with TFX's
BeamDagRunner on Beam's DirectRunner; RUNNER=local uses LocalDagRunner.
Exit status: 0 when the run finished (pushed or not), 1 on any error, 130
on Ctrl-C and 143 on SIGTERM.

Failure and recovery: one run per OUTPUT_DIR at a time (`run_lock`); a run
killed at any point leaves only unfinished executions behind, which the next
run ignores: finished components come from the cache and an interrupted
Trainer resumes from its last finished epoch (BackupAndRestore).
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import sys
import time
from typing import Any, Dict, Optional

from pipeline import config as config_lib
from pipeline import run_lock

SUMMARY_FILE = "summary.json"


def run(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Runs the DAG once and returns (and writes) the run summary.

  Raises `run_lock.AlreadyRunningError` at once if another run is using
  `config.output_dir`, PermissionError if an output cannot be written.
  """
  check_writable(config.output_dir, "OUTPUT_DIR")
  with run_lock.hold(config.output_dir):
    return _run_locked(config)


def _run_locked(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.beam import beam_dag_runner  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.local import local_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from pipeline import progress  # pylint: disable=g-import-not-at-top
  from pipeline import report  # pylint: disable=g-import-not-at-top
  from pipeline import summary as summary_lib  # pylint: disable=g-import-not-at-top

  from components import storage  # pylint: disable=g-import-not-at-top
  from components.pusher import versioning  # pylint: disable=g-import-not-at-top

  storage.enable_object_storage()  # SERVING_DIR or DATA_DIR on s3://
  if versioning.is_local(config.serving_model_dir):
    check_writable(config.serving_model_dir, "SERVING_DIR")
  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  tracker = progress.attach(quiet_tfx_logs=not os.environ.get("VERBOSE"))
  dag = pipeline_lib.create_pipeline_from_config(
      config, metadata_connection_config=(
          metadata.sqlite_metadata_connection_config(
              config.metadata_path)),
      serving_state=versioning.serving_state(config.serving_model_dir))
  ir = pipeline_lib.compile_for_local(dag, rerun_from=config.rerun_from)
  runner = (beam_dag_runner.BeamDagRunner()
            if config.runner == "beam" else
            local_dag_runner.LocalDagRunner())
  print(f"pipeline {config.pipeline_name}: {config.dataset}, model "
        f"{config.trainer.model}, runner {config.runner}, output "
        f"{config.output_dir}", flush=True)
  start = time.time()
  runner.run_with_ir(ir)
  summary, test_predictions = summary_lib.build_summary(config,
                                                         tracker.seconds)
  summary["settings"] = settings(config)
  summary["total_seconds"] = round(time.time() - start, 1)
  summary["verdict"] = summary_lib.verdict(summary)
  summary["report"] = report.write_report(
      summary, summary["verdict"], config.output_dir, test_predictions)
  summary_lib.write_summary(summary, os.path.join(config.output_dir,
                                                  SUMMARY_FILE))
  return summary


def settings(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Every setting of the run, the trainer's resolved from its preset."""
  values = dataclasses.asdict(config)
  values["trainer"] = dataclasses.asdict(config.trainer.resolved())
  return values


def check_writable(directory: str, setting: str) -> None:
  """Fails at once, in one line, if `directory` could not be written (it,
  or its nearest existing parent, is read-only or not a directory)."""
  existing = os.path.abspath(directory)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  problem = None
  if not os.path.isdir(existing):
    problem = f"{existing} is not a directory"
  elif not os.access(existing, os.W_OK):
    problem = (f"no write permission on {existing}" if not _read_only_mount(
        existing) else f"{existing} is on a read-only filesystem")
  if problem:
    raise PermissionError(f"{setting}={directory} is not writable: {problem}")


def _read_only_mount(path: str) -> bool:
  return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def _exit_on_sigterm(signum, frame):
  del signum, frame
  print("terminated (SIGTERM): the next run reuses every finished component "
        "and resumes training from its last finished epoch", file=sys.stderr,
        flush=True)
  os._exit(143)  # pylint: disable=protected-access


def root_cause(error: BaseException) -> BaseException:
  """The innermost of our own errors in a chain wrapped by Beam/TFX."""
  seen = []
  while error is not None and error not in seen:
    seen.append(error)
    error = error.__cause__ or (
        None if error.__suppress_context__ else error.__context__)
  for candidate in reversed(seen):
    if type(candidate).__module__.startswith(("components.", "pipeline.")):
      return candidate
  return seen[-1]


def one_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  line = re.sub(r" \[while running '[^']*'\]$", "", text[0] if text else "")
  return f"{type(error).__name__}: {line}"  # without Beam's step suffix


def main(argv: Optional[list] = None) -> int:
  del argv
  signal.signal(signal.SIGTERM, _exit_on_sigterm)
  try:
    config = config_lib.PipelineConfig.from_env()
    summary = run(config)
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130
  except Exception as e:  # pylint: disable=broad-except
    if os.environ.get("VERBOSE"):
      raise
    print(f"error: {one_line(root_cause(e))}", file=sys.stderr)
    return 1
  print(f"summary: {os.path.join(config.output_dir, SUMMARY_FILE)}")
  print(f"report:  {summary['report']}")
  print(summary["verdict"])
  return 0


if __name__ == "__main__":
  from components import storage  # pylint: disable=g-import-not-at-top
  storage.exit_process(main())  # no teardown abort after S3 use
