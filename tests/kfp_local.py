"""Runs a compiled KFP v2 pipeline spec on this machine, task by task.

A stand-in for the KFP backend's driver and launcher, enough for TFX
container tasks: tasks run in dependency order, each as the command and
arguments its executor's container spec names (TFX's
`kubeflow_v2_run_executor`), with an `ExecutorInput` built from the spec's
constants and the upstream tasks' `ExecutorOutput`. What this proves is that
the compiled spec (not the local runner's DAG) runs: every executor class
path, argument and artifact hand-off in it is the one a cluster would use.
Not emulated: caching, retries, resources, and the image (tasks run in this
venv, with `path_map` standing in for paths that exist only in the image).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Mapping, Optional


def task_order(spec: Mapping[str, Any]) -> List[str]:
  """The root DAG's task names, each after every task it depends on."""
  tasks = spec["root"]["dag"]["tasks"]

  def upstream(name):
    task = tasks[name]
    deps = set(task.get("dependentTasks", []))
    for artifact in task.get("inputs", {}).get("artifacts", {}).values():
      deps.add(artifact["taskOutputArtifact"]["producerTask"])
    return sorted(deps)

  order, visiting = [], set()

  def visit(name):
    if name in order:
      return
    if name in visiting:
      raise ValueError(f"cycle at task {name}")
    visiting.add(name)
    for dep in upstream(name):
      visit(dep)
    order.append(name)

  for name in sorted(tasks):
    visit(name)
  return order


def _replace_paths(value: Any, path_map: Mapping[str, str]) -> Any:
  if isinstance(value, str):
    for old, new in path_map.items():
      value = value.replace(old, new)
  return value


def run_spec(spec: Mapping[str, Any], root: str,
             path_map: Optional[Mapping[str, str]] = None,
             env: Optional[Mapping[str, str]] = None,
             only: Optional[List[str]] = None,
             upstream: Optional[Mapping[str, Dict[str, Any]]] = None,
             log=print) -> Dict[str, Dict[str, Any]]:
  """Executes the tasks of `spec` (all, or `only` these) under `root`.

  `upstream` supplies outputs of tasks not run now (a previous `run_spec`
  result). Returns {task: {output key: runtime artifact dict}}. Raises
  `subprocess.CalledProcessError` when a task fails (later tasks don't run).
  """
  path_map = path_map or {}
  outputs: Dict[str, Dict[str, Any]] = dict(upstream or {})
  executors = spec["deploymentSpec"]["executors"]
  for name in task_order(spec):
    if only is not None and name not in only:
      continue
    task = spec["root"]["dag"]["tasks"][name]
    component = spec["components"][task["componentRef"]["name"]]
    container = executors[component["executorLabel"]]["container"]
    task_dir = os.path.join(root, name)
    executor_input: Dict[str, Any] = {
        "inputs": {"parameterValues": {}, "artifacts": {}},
        "outputs": {"artifacts": {},
                    "outputFile": os.path.join(task_dir,
                                               "executor_output.json")}}
    inputs = task.get("inputs", {})
    for key, parameter in inputs.get("parameters", {}).items():
      executor_input["inputs"]["parameterValues"][key] = _replace_paths(
          parameter["runtimeValue"]["constant"], path_map)
    for key, artifact in inputs.get("artifacts", {}).items():
      source = artifact["taskOutputArtifact"]
      executor_input["inputs"]["artifacts"][key] = {"artifacts": [
          outputs[source["producerTask"]][source["outputArtifactKey"]]]}
    declared = component.get("outputDefinitions", {}).get("artifacts", {})
    for key, definition in declared.items():
      executor_input["outputs"]["artifacts"][key] = {"artifacts": [{
          "name": f"{name}-{key}", "type": definition["artifactType"],
          "uri": os.path.join(task_dir, key), "metadata": {}}]}
    args = [arg.replace("{{$}}", json.dumps(executor_input))
            for arg in container.get("args", [])]
    command = list(container["command"])
    if command[0] == "python":
      command[0] = sys.executable
    log(f"kfp task {name}: {container['image']} "
        f"{' '.join(command[2:3])} {args[1] if len(args) > 1 else ''}")
    os.makedirs(task_dir, exist_ok=True)
    subprocess.run(command + args, check=True, env=dict(env or os.environ),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(executor_input["outputs"]["outputFile"]) as f:
      produced = json.load(f).get("artifacts", {})
    outputs[name] = {}
    for key, passed in executor_input["outputs"]["artifacts"].items():
      artifact = dict(passed["artifacts"][0])
      reported = (produced.get(key) or {}).get("artifacts") or [{}]
      artifact["metadata"] = reported[0].get("metadata", {})
      outputs[name][key] = artifact
  return outputs
