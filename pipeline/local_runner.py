"""Runs the pipeline on this machine: `python -m pipeline.local_runner`.

Settings come from environment variables (see `config.PipelineConfig`);
`make run-local` sets them. RUNNER=beam (default) runs the DAG with TFX's
BeamDagRunner on Beam's DirectRunner; RUNNER=local uses LocalDagRunner.
Exit status: 0 when the run finished (pushed or not), 1 on any error, 130
on Ctrl-C and 143 on SIGTERM.

The DAG's last component (`Report`) writes the report; this runner copies
it into OUTPUT_DIR: summary.json, report.md, report.html and report/*.png.

Failure and recovery: one run per OUTPUT_DIR at a time (`hold_run_lock`); a
run killed at any point leaves only unfinished executions behind, which the
next run ignores: finished components come from the cache and an
interrupted Trainer resumes from its last finished epoch (BackupAndRestore).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import time
from typing import Any, Dict, Iterator, Optional, TextIO

from pipeline import config as config_lib

SUMMARY_FILE = "summary.json"
REPORT_FILES = ("summary.json", "report.md", "report.html", "report")
LOCK_FILE = ".run.lock"
LAST_RUN_FILE = ".last-run.json"  # the key of the last finished run


def run(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Runs the DAG once and returns (and writes) the run summary.

  Raises `AlreadyRunningError` at once if another run is using
  `config.output_dir`, PermissionError if an output cannot be written.
  """
  check_writable(config.output_dir, "OUTPUT_DIR")
  with hold_run_lock(config.output_dir):
    inputs = observe(config)
    state = run_state(config, inputs)
    key = _digest(state)
    finished = finished_run(config, key)
    if finished is not None:
      return finished
    # The report in OUTPUT_DIR is about to be replaced: whatever happens,
    # the key of the last run no longer vouches for it.
    _remove_file(os.path.join(config.output_dir, LAST_RUN_FILE))
    summary = _run_locked(config, inputs)
    if key is not None:
      write_atomically(
          os.path.join(config.output_dir, LAST_RUN_FILE),
          json.dumps({"key": _digest(state_after(config, state, summary)),
                      "run_id": summary.get("run_id")}))
    return summary


# An unchanged rerun does not start TFX. Every cache key of the DAG is made
# of the settings, the code, the schema and the data (by content, see
# `sources.data_digest`) and the model in service (with the records of the
# versions beside it); when all of these are what the last finished run in
# OUTPUT_DIR saw, every component would come from the cache and the report
# would say the same, so that run's report stands (about 2 s instead of
# 15 s: TFX, Beam and TFMA are not even imported). Not for remote data or
# serving directories, NO_CACHE=1 or RERUN_FROM=, which always run the DAG
# (and so withdraw the last run's key: the report they leave is theirs).
#
# A run whose candidate is the model in service when it ends (it pushed it,
# or it already was) is recorded as having seen that model in service: run
# again, it would compare the candidate with itself (no change passes every
# change threshold, the best-ever guard still holds as it did at the push,
# the value thresholds are the same settings) and find it already in service.


@dataclasses.dataclass(frozen=True)
class RunInputs:
  """What a run reads from outside OUTPUT_DIR, observed once when it
  starts: the DAG's cache keys are built from it (see `create_pipeline`)."""
  data_digest: str  # sources.data_digest; "unreadable: ..." if it failed
  in_service: str  # serving.baseline.InService as JSON

  @property
  def data_readable(self) -> bool:
    return not self.data_digest.startswith(UNREADABLE)


UNREADABLE = "unreadable: "


def observe(config: config_lib.PipelineConfig) -> RunInputs:
  """The data's digest and the serving directory's state, now."""
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  from components.ingestion import sources  # pylint: disable=g-import-not-at-top
  from serving import baseline  # pylint: disable=g-import-not-at-top
  try:
    digest = sources.data_digest(config.dataset, config.data_dir,
                                 config.tfds_data_dir,
                                 config.download_cache_dir)
  except idx.DataError as e:  # the ingestion reports it, in one line
    digest = UNREADABLE + str(e)
  return RunInputs(data_digest=digest, in_service=baseline.in_service(
      config.serving_model_dir).to_json())


def unchanged_run_key(config: config_lib.PipelineConfig) -> Optional[str]:
  """A digest of everything the DAG's cache keys depend on, or None when
  it cannot be known without running TFX."""
  return _digest(run_state(config, observe(config)))


def run_state(config: config_lib.PipelineConfig, inputs: RunInputs
              ) -> Optional[Dict[str, Any]]:
  """Everything the DAG's cache keys depend on, or None (see above)."""
  from components import fingerprint  # pylint: disable=g-import-not-at-top
  from components import storage  # pylint: disable=g-import-not-at-top
  paths = [config.data_dir, config.tfds_data_dir, config.download_cache_dir,
           config.serving_model_dir, config.output_dir]
  if (not config.enable_cache or config.rerun_from or
      not inputs.data_readable or
      any(p and storage.is_remote(p) for p in paths)):
    return None
  lock = os.path.join(config_lib.REPO_ROOT, "requirements.lock")
  return {
      "settings": config.settings_record(),
      "code": fingerprint.project_fingerprint(),
      "stack": (fingerprint.file_fingerprint(lock) if os.path.exists(lock)
                else None),
      "schema": fingerprint.file_fingerprint(config.schema_path),
      "data": inputs.data_digest,
      "in_service": inputs.in_service,
  }


def state_after(config: config_lib.PipelineConfig,
                state: Optional[Dict[str, Any]], summary: Dict[str, Any]
                ) -> Optional[Dict[str, Any]]:
  """`state` as a rerun would see it once this run has finished: with the
  serving directory as it is now if its version in service holds this
  run's candidate."""
  from serving import baseline  # pylint: disable=g-import-not-at-top
  if state is None or not summary.get("pushed_to"):
    return state
  now = baseline.in_service(config.serving_model_dir)
  if os.path.basename(summary["pushed_to"].rstrip("/")) != now.version:
    return state
  return dict(state, in_service=now.to_json())


def _digest(state: Optional[Dict[str, Any]]) -> Optional[str]:
  if state is None:
    return None
  text = json.dumps(state, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def read_bookkeeping(path: str) -> Optional[Dict[str, Any]]:
  """A JSON bookkeeping file of ours; None if it is missing, and None with
  a one-line note if it is unreadable (truncated, edited): it is ignored."""
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    print(f"note: {path} is unreadable ({str(e).splitlines()[0][:80]}); "
          "ignored", flush=True)
    return None
  return data if isinstance(data, dict) else None


def write_atomically(path: str, text: str) -> None:
  """Writes `path` whole or not at all (a temporary file, flushed to disk,
  renamed over it)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _remove_file(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


def finished_run(config: config_lib.PipelineConfig, key: Optional[str]
                 ) -> Optional[Dict[str, Any]]:
  """The summary of the last finished run in OUTPUT_DIR if it saw exactly
  `key` and the report there is still its report, else None."""
  if key is None:
    return None
  last = read_bookkeeping(os.path.join(config.output_dir, LAST_RUN_FILE))
  if not last or last.get("key") != key:
    return None
  report = os.path.join(config.output_dir, "report.md")
  summary = read_bookkeeping(os.path.join(config.output_dir, SUMMARY_FILE))
  if (summary is None or not os.path.exists(report) or
      summary.get("run_id") != last.get("run_id")):
    return None
  summary["report"] = report
  summary["unchanged"] = True
  print(f"unchanged since run {summary.get('run_id')}: same settings, code, "
        "data and model in service, so every component would come from the "
        "cache; its report stands (NO_CACHE=1 or RERUN_FROM=<component> "
        "runs the DAG)", flush=True)
  return summary


def _run_locked(config: config_lib.PipelineConfig,
                inputs: RunInputs) -> Dict[str, Any]:
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.beam import beam_dag_runner  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.local import local_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top

  from components import storage  # pylint: disable=g-import-not-at-top

  storage.enable_object_storage()  # SERVING_DIR or DATA_DIR on s3://
  if not storage.is_remote(config.serving_model_dir):
    check_writable(config.serving_model_dir, "SERVING_DIR")
  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  show_progress(quiet_tfx_logs=not os.environ.get("VERBOSE"))
  dag = pipeline_lib.create_pipeline_from_config(
      config, metadata_connection_config=(
          metadata.sqlite_metadata_connection_config(
              config.metadata_path)),
      in_service=inputs.in_service, data_digest=inputs.data_digest,
      metadata_path=config.metadata_path)
  ir = pipeline_lib.compile_for_local(dag, rerun_from=config.rerun_from)
  runner = (beam_dag_runner.BeamDagRunner()
            if config.runner == "beam" else
            local_dag_runner.LocalDagRunner())
  print(f"pipeline {config.pipeline_name}: {config.dataset}, model "
        f"{config.trainer.model}, runner {config.runner}, output "
        f"{config.output_dir}", flush=True)
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


# One run per output directory at a time: an advisory lock file.
# `fcntl.flock` locks belong to the open file, so the kernel releases them
# when the holding process dies, however it dies (SIGKILL included): a lock
# left by a killed run never blocks the next one. The file's text (pid, host,
# start) only describes the holder, for the refusal message and to report
# that a previous run ended without cleaning up.


class AlreadyRunningError(RuntimeError):
  """Another run holds the lock of this output directory."""


def _describe(text: str) -> str:
  try:
    holder = json.loads(text)
    return (f"pid {holder['pid']} on {holder['host']}, started "
            f"{holder['started']}")
  except (ValueError, KeyError, TypeError):
    return "an unknown process"


@contextlib.contextmanager
def hold_run_lock(output_dir: str, log=print) -> Iterator[Optional[str]]:
  """Holds the lock of `output_dir` for the duration of the block.

  Yields the description of a stale holder that was cleared (or None).
  Raises AlreadyRunningError at once when a live run holds it.
  """
  os.makedirs(output_dir, exist_ok=True)
  path = os.path.join(output_dir, LOCK_FILE)
  handle = open(path, "a+")  # pylint: disable=consider-using-with
  try:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      raise AlreadyRunningError(
          f"{output_dir} is in use by another run ({_describe(handle.read())});"
          " wait for it to finish or set another OUTPUT_DIR") from None
    handle.seek(0)
    previous = handle.read().strip()
    stale = _describe(previous) if previous else None
    if stale:
      log(f"note: cleared a stale lock of {stale}, which ended without "
          "releasing it; its finished steps are reused from the cache")
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
    handle.flush()
    try:
      yield stale
    finally:
      handle.seek(0)
      handle.truncate()  # an empty file: released cleanly
      handle.flush()
      fcntl.flock(handle, fcntl.LOCK_UN)
  finally:
    handle.close()


# Per-component start/finish lines with durations, for either TFX runner:
# BeamDagRunner logs "node X is running." / "node X is finished." and
# LocalDagRunner "Component X is running." / "... is finished."; the handler
# turns those records into one readable line each. (summary.json's durations
# come from ML Metadata, through the Report component.)

_PATTERN = re.compile(r"^(?:node|Component) (\S+) is (running|finished)\.$")
# Harmless warnings that TFX 1.16 / Beam print on every run.
_NOISE = re.compile(r"ArtifactQuery.property_predicate is not supported|"
                    r"python-snappy|tf_record_iterator|is deprecated")


class _DropNoise(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return not _NOISE.search(record.getMessage())


class ComponentProgress(logging.Handler):
  """Prints `[start] X` and `[done ] X  12.3 s`; keeps `seconds` per node."""

  def __init__(self, stream: TextIO = sys.stdout):
    super().__init__(logging.INFO)
    self.stream = stream
    self.started: Dict[str, float] = {}
    self.seconds: Dict[str, float] = {}

  def emit(self, record: logging.LogRecord) -> None:
    match = _PATTERN.match(record.getMessage())
    if not match:
      return
    node, state = match.groups()
    now = time.time()
    if state == "running":
      self.started[node] = now
      self.stream.write(f"[start] {node}\n")
    else:
      self.seconds[node] = round(now - self.started.get(node, now), 2)
      self.stream.write(f"[done ] {node:<32} {self.seconds[node]:8.1f} s\n")
    self.stream.flush()


def show_progress(quiet_tfx_logs: bool = True) -> ComponentProgress:
  """Installs the handler; with `quiet_tfx_logs`, other INFO logs are hidden."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  handler = ComponentProgress()
  # Through absl's flag, not Logger.setLevel: TensorFlow's SavedModel export
  # resets the absl logger to the flag's value.
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logger = logging.getLogger("absl")
  for old in [h for h in absl_logger.handlers
              if isinstance(h, ComponentProgress)]:
    absl_logger.removeHandler(old)
  absl_logger.addHandler(handler)
  if quiet_tfx_logs:
    absl_logging.get_absl_handler().setLevel(logging.WARNING)
    for root_handler in logging.getLogger().handlers:
      root_handler.setLevel(logging.WARNING)
      root_handler.addFilter(_DropNoise())
    absl_logging.get_absl_handler().addFilter(_DropNoise())
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
  return handler


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
    if type(candidate).__module__.startswith(("components.", "pipeline.",
                                              "serving.")):
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
    if isinstance(root_cause(e), KeyboardInterrupt):  # Ctrl-C inside Beam
      print("interrupted", file=sys.stderr)
      return 130
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
