"""What ML Metadata records of one pipeline run: each component's state and
duration, and its output artifacts."""
from __future__ import annotations

import collections
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def sqlite_store(path: str) -> metadata_store.MetadataStore:
  """A read-only connection to a local runner's ML Metadata file."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


class RunRecord:
  """The executions of one run of a pipeline (the latest if no `run_id`)."""

  def __init__(self, store: metadata_store.MetadataStore, pipeline_name: str,
               run_id: Optional[str] = None):
    self.store = store
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
      raise LookupError(f"no runs of pipeline {pipeline_name} in metadata")
    node_type = store.get_context_type("node").id
    run_type = store.get_context_type("pipeline_run").id
    runs = collections.defaultdict(list)
    node_of = {}
    for execution in store.get_executions_by_context(pipeline_ctx.id):
      for ctx in store.get_contexts_by_execution(execution.id):
        if ctx.type_id == node_type:
          node_of[execution.id] = ctx.name[len(pipeline_name) + 1:]
        elif ctx.type_id == run_type:
          runs[ctx.name].append(execution)
    if run_id is None:
      if not runs:
        raise LookupError(f"no runs of pipeline {pipeline_name} in metadata")
      run_id = max(runs, key=lambda r: max(e.create_time_since_epoch
                                           for e in runs[r]))
    self.run_id = run_id
    self.executions = {node_of.get(e.id, str(e.id)): e
                       for e in sorted(runs[run_id], key=lambda e: e.id)}

  def state(self, node: str) -> Optional[str]:
    execution = self.executions.get(node)
    return STATES.get(execution.last_known_state) if execution else None

  def seconds(self, node: str) -> Optional[float]:
    """From the execution's registration to its last update (publishing)."""
    execution = self.executions.get(node)
    if execution is None or STATES.get(execution.last_known_state) in (
        "NEW", "RUNNING"):
      return None
    return round((execution.last_update_time_since_epoch -
                  execution.create_time_since_epoch) / 1000, 2)

  def started(self, node: str) -> Optional[float]:
    """Seconds from the run's first registered execution to this one's
    (components that ran side by side overlap)."""
    execution = self.executions.get(node)
    if execution is None:
      return None
    first = min(e.create_time_since_epoch for e in self.executions.values())
    return round((execution.create_time_since_epoch - first) / 1000, 2)

  def components(self) -> Dict[str, Dict[str, object]]:
    """{node: {"state": "COMPLETE" | "CACHED" | ..., "started": s after the
    run's first component, "seconds": ...}}."""
    return {node: {"state": self.state(node), "started": self.started(node),
                   "seconds": self.seconds(node)}
            for node in self.executions}

  def outputs(self, node: str, key: str) -> List[metadata_store_pb2.Artifact]:
    execution = self.executions.get(node)
    if execution is None:
      return []
    kinds = (metadata_store_pb2.Event.OUTPUT,
             metadata_store_pb2.Event.DECLARED_OUTPUT)
    ids = [e.artifact_id for e in
           self.store.get_events_by_execution_ids([execution.id])
           if e.type in kinds and e.path.steps and e.path.steps[0].key == key]
    return self.store.get_artifacts_by_id(ids) if ids else []
