"""Runs the pipeline on this machine: `python -m pipeline.local_runner`.

Settings come from environment variables (see `config.PipelineConfig`);
`make run-local` sets them. RUNNER=beam (default) runs the DAG with TFX's
BeamDagRunner on Beam's DirectRunner; RUNNER=local uses LocalDagRunner.
Exit status: 0 when the run finished (pushed or not), 1 on any error.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, Optional

from pipeline import config as config_lib

SUMMARY_FILE = "summary.json"


def run(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Runs the DAG once and returns (and writes) the run summary."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.beam import beam_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from pipeline import progress  # pylint: disable=g-import-not-at-top
  from pipeline import report  # pylint: disable=g-import-not-at-top
  from pipeline import summary as summary_lib  # pylint: disable=g-import-not-at-top

  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  tracker = progress.attach(quiet_tfx_logs=not os.environ.get("VERBOSE"))
  dag = pipeline_lib.create_pipeline_from_config(
      config, metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              config.metadata_path)))
  runner = (beam_dag_runner.BeamDagRunner()
            if config.runner == "beam" else
            tfx.orchestration.LocalDagRunner())
  print(f"pipeline {config.pipeline_name}: {config.dataset}, model "
        f"{config.trainer.model}, runner {config.runner}, output "
        f"{config.output_dir}", flush=True)
  start = time.time()
  runner.run_with_ir(pipeline_lib.compile_for_local(dag))
  summary, test_predictions = summary_lib.build_summary(config,
                                                         tracker.seconds)
  summary["total_seconds"] = round(time.time() - start, 1)
  summary["verdict"] = summary_lib.verdict(summary)
  summary["report"] = report.write_report(
      summary, summary["verdict"], config.output_dir, test_predictions)
  summary_lib.write_summary(summary, os.path.join(config.output_dir,
                                                  SUMMARY_FILE))
  return summary


def root_cause(error: BaseException) -> BaseException:
  """The innermost of our own errors in a chain wrapped by Beam/TFX."""
  seen = []
  while error is not None and error not in seen:
    seen.append(error)
    error = error.__cause__ or error.__context__
  for candidate in seen:
    if type(candidate).__module__.startswith("components."):
      return candidate
  return seen[-1]


def one_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"


def main(argv: Optional[list] = None) -> int:
  del argv
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
  sys.exit(main())
