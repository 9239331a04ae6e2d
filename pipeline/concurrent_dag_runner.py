"""`ConcurrentDagRunner`: TFX's LocalDagRunner, running every component whose
upstream components have finished at once, each in a thread of its own.

TFX's LocalDagRunner (and BeamDagRunner on the DirectRunner) runs one
component at a time, in topological order; its own TODO (b/171319478) plans
this. Here StatisticsGen, ExampleValidator and ValidationGate run while the
Trainer trains: alone, the Trainer keeps 1.3 of 2 cores busy, and the run
is about 1.4 s shorter than one component at a time (docs/benchmarks.md).
Kubeflow runs the same DAG this way.

Each component is launched as LocalDagRunner launches it: TFX's `Launcher`,
with a connection to ML Metadata of its own (ML Metadata's SQLite store
waits for another writer's lock). When a component fails, no other component
starts, the others are asked to stop (`components.cancellation`: the Trainer
stops within 32 batches), and once they have ended the first failure
is raised. On Ctrl-C, whichever thread the signal reaches, the runner stops
waiting within `SIGNAL_CHECK_SECONDS` and `pipeline.local_runner` ends the
process (SIGTERM ends it at once); the next run treats the unfinished
components as a killed run's.
"""
from __future__ import annotations

from concurrent import futures
import datetime
from typing import Dict, List, Optional, Set, Tuple

from absl import logging
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher
from tfx.orchestration.portable import partial_run_utils
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.proto.orchestration import pipeline_pb2

from components import cancellation


# The waiting main thread wakes this often: Ctrl-C or SIGTERM may reach any
# of the process's threads (TensorFlow starts many), and Python runs its
# handler only in the main thread, once that thread runs again; an untimed
# wait would run it when the running component ends (after training).
SIGNAL_CHECK_SECONDS = 0.1


class ConcurrentDagRunner(local_dag_runner.LocalDagRunner):
  """Runs a compiled pipeline on this machine, independent components at
  once."""

  def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                  run_options: Optional[pipeline_pb2.RunOptions] = None
                  ) -> None:
    # As LocalDagRunner.run_with_ir does before its loop over the nodes.
    runtime_parameter_utils.substitute_runtime_parameter(pipeline, {
        constants.PIPELINE_RUN_ID_PARAMETER_NAME:
            datetime.datetime.now().isoformat()})
    deployment_config = runner_utils.extract_local_deployment_config(pipeline)
    connection_config = getattr(
        deployment_config.metadata_connection_config,
        deployment_config.metadata_connection_config.WhichOneof(
            "connection_config"))
    if run_options:
      partial_run_utils.mark_pipeline(
          pipeline, from_nodes=run_options.partial_run.from_nodes or None,
          to_nodes=run_options.partial_run.to_nodes or None,
          snapshot_settings=run_options.partial_run.snapshot_settings)

    def launch(node: pipeline_pb2.PipelineNode) -> None:
      node_id = node.node_info.id
      component_launcher = launcher.Launcher(
          pipeline_node=node,
          mlmd_connection=metadata.Metadata(connection_config),
          pipeline_info=pipeline.pipeline_info,
          pipeline_runtime_spec=pipeline.runtime_spec,
          executor_spec=runner_utils.extract_executor_spec(
              deployment_config, node_id),
          custom_driver_spec=runner_utils.extract_custom_driver_spec(
              deployment_config, node_id))
      logging.info("Component %s is running.", node_id)
      if node.execution_options.run.perform_snapshot:
        with metadata.Metadata(connection_config) as mlmd_handle:
          partial_run_utils.snapshot(mlmd_handle, pipeline)
      component_launcher.launch()
      logging.info("Component %s is finished.", node_id)

    nodes = [n.pipeline_node for n in pipeline.nodes]
    failures = run_ready_nodes(nodes, launch)
    if failures:
      raise failures[0][1]


def run_ready_nodes(nodes: List[pipeline_pb2.PipelineNode], launch
                    ) -> List[Tuple[str, BaseException]]:
  """Calls `launch(node)` for each node, in threads, as soon as its upstream
  nodes have returned; nodes marked `skip` count as returned. After the
  first failure no node starts and `cancellation.request_stop` is called;
  the request is withdrawn once every launched node has returned (a later
  run in this process, on any runner, trains to the end). Returns the
  failures, (node id, exception), in the order they happened.
  """
  by_id = {n.node_info.id: n for n in nodes}
  done: Set[str] = {i for i, n in by_id.items()
                    if n.execution_options.HasField("skip")}
  running: Dict[futures.Future, str] = {}
  failures: List[Tuple[str, BaseException]] = []
  cancellation.clear()
  pool = futures.ThreadPoolExecutor(max_workers=len(nodes),
                                    thread_name_prefix="component")
  try:
    while True:
      if not failures:
        for node_id, node in by_id.items():
          if (node_id not in done and node_id not in running.values() and
              set(node.upstream_nodes) <= done):
            running[pool.submit(launch, node)] = node_id
      if not running:
        break
      finished, _ = futures.wait(running, timeout=SIGNAL_CHECK_SECONDS,
                                 return_when=futures.FIRST_COMPLETED)
      for future in finished:
        node_id = running.pop(future)
        if future.exception() is None:
          done.add(node_id)
        else:
          failures.append((node_id, future.exception()))
          cancellation.request_stop(f"{node_id} failed")
  except BaseException:  # Ctrl-C: stop waiting, let the process end
    cancellation.request_stop("interrupted")
    pool.shutdown(wait=False, cancel_futures=True)
    raise
  pool.shutdown(wait=True)
  cancellation.clear()  # every component has ended: nothing left to stop
  return failures
