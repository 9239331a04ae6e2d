"""The unchanged-rerun short-cut: the key of everything a run's cache keys
depend on, and the bookkeeping file that remembers the last finished run's
key in OUTPUT_DIR (`LAST_RUN_FILE`)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Dict, Optional

from pipeline import config as config_lib

SUMMARY_FILE = "summary.json"  # the run's summary, copied into OUTPUT_DIR
LAST_RUN_FILE = ".last-run.json"  # the key of the last finished run


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
    data = sources.data_digest(config.dataset, config.ingestion.data_dir,
                                 config.ingestion.tfds_data_dir,
                                 config.ingestion.download_cache_dir)
  except idx.DataError as e:  # the ingestion reports it, in one line
    data = UNREADABLE + str(e)
  return RunInputs(data_digest=data, in_service=baseline.in_service(
      config.serving_model_dir).to_json())


def unchanged_run_key(config: config_lib.PipelineConfig) -> Optional[str]:
  """A digest of everything the DAG's cache keys depend on, or None when
  it cannot be known without running TFX (then nothing is read: remote data
  is not even listed)."""
  if always_runs(config):
    return None
  return digest(run_state(config, observe(config)))


def always_runs(config: config_lib.PipelineConfig) -> bool:
  """Whether a run with `config` always runs the DAG: NO_CACHE=1,
  RERUN_FROM=, or data, serving or output directories on object stores."""
  from components import storage  # pylint: disable=g-import-not-at-top
  ingestion = config.ingestion
  paths = [ingestion.data_dir, ingestion.tfds_data_dir,
           ingestion.download_cache_dir, config.serving_model_dir,
           config.output_dir]
  return (not config.enable_cache or bool(config.rerun_from) or
          any(p and storage.is_remote(p) for p in paths))


def run_state(config: config_lib.PipelineConfig, inputs: RunInputs
              ) -> Optional[Dict[str, Any]]:
  """Everything the DAG's cache keys depend on, or None (see above)."""
  from components import fingerprint  # pylint: disable=g-import-not-at-top
  if always_runs(config) or not inputs.data_readable:
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
  from serving import versions  # pylint: disable=g-import-not-at-top
  if state is None or not summary.get("pushed_to"):
    return state
  now = baseline.in_service(config.serving_model_dir)
  if versions.version_name(summary["pushed_to"]) != now.version:
    return state
  return dict(state, in_service=now.to_json())


def digest(state: Optional[Dict[str, Any]]) -> Optional[str]:
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


def remove_file(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


def finished_run(config: config_lib.PipelineConfig, key: Optional[str]
                 ) -> Optional[Dict[str, Any]]:
  """The summary of the last finished run in OUTPUT_DIR if it saw exactly
  `key`, the report there is still its report and the version it reports
  as pushed is still whole in the serving directory, else None."""
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
  from serving import versions  # pylint: disable=g-import-not-at-top
  if summary.get("pushed_to") and not versions.is_complete(
      summary["pushed_to"]):
    return None  # the version it reports is gone: run, and push again
  summary["report"] = report
  summary["unchanged"] = True
  print(f"unchanged since run {summary.get('run_id')}: same settings, code, "
        "data and model in service, so every component would come from the "
        "cache; its report stands (NO_CACHE=1 or RERUN_FROM=<component> "
        "runs the DAG)", flush=True)
  return summary
