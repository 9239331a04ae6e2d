"""Runs a compiled KFP v2 pipeline spec on this machine, as a KFP backend would.

A stand-in for KFP's driver and launcher, enough for this pipeline's TFX
container tasks, in one of two modes:

* `vertex`: input artifacts are handed over with the types the spec declares,
  as Vertex AI Pipelines does.
* `oss`: the open-source KFP 2.x hand-over. The driver resolves input
  artifacts from its ML Metadata and passes them with generic titles
  (tfx.Examples as `system.Dataset`, tfx.Model and tfx.PushedModel as
  `system.Model`, KFP's own `system.*` types as themselves, everything else
  as `system.Artifact`), or with an empty
  instance schema, or with no type at all (the three forms take turns, so
  every run sees all three); names are ML Metadata ids, metadata numbers come
  back as floats, and `display_name` and `store_session_info` are added.
  Output artifacts get the spec's declared types, plus the launcher's own
  `executor-logs` output typed `system.Artifact` (KFP 2.5+), and a null
  metadata value in the executor output fails the task, as the launcher's
  ML Metadata recording does. (Read in kubeflow/pipelines' backend/src/v2:
  driver/resolve.go, metadata/client.go, component/launcher_v2.go.)

Each task runs as its own process: the container's command and arguments from
the spec, with the `ExecutorInput` in place of `{{$}}`, in a working directory
outside the repository, importing this project from an installed, non-editable
copy (`install_package`, as in the image) rather than from the checkout.
By default a task's process is forked from a server that has imported
TensorFlow and TFX in the task's environment (`TaskStarter`,
`tools/kfp_task_server.py`: ~5 s less per task, the same argv, environment,
directory, log and exit status as a fresh `python -m`, but no interpreter
teardown at its exit); `warm_start=False` starts a fresh interpreter per
task.
`python` in a command is this interpreter, and `path_map` stands in for paths
that exist only in the image (the schemas). KFP's caching is emulated: a task
with caching on whose component, parameters and input artifacts match an
earlier execution in `cache` reuses that execution's outputs.

A task's input parameter may be another task's output parameter
(`taskOutputParameter`: the data digest), resolved as the driver does, which
fails on a producer task the DAG does not have ("cannot find producer
task"); the output parameters a task writes (`parameterValues` in its
executor output) are part of its cached outputs. An importer task
(`TUNE_FROM=`) yields its URI as an artifact, as the driver does. Not emulated: the image, Kubernetes, resources, retries, and
object storage other than what `tf.io.gfile` reaches from here.

`python -m tools.kfp_emulator SPEC.yaml --mode oss --root DIR` runs a spec.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

MODES = ("vertex", "oss")
PLACEHOLDER = "{{$}}"
# How the open-source driver titles TFX artifact types.
OSS_TITLES = {"tfx.Examples": "system.Dataset", "tfx.Model": "system.Model",
              "tfx.PushedModel": "system.Model"}
OSS_FORMS = ("system title", "empty instance schema", "no type")


class TaskFailed(RuntimeError):
  """A task exited non-zero; the message ends with its log's tail."""


PARAMETERS_KEY = "__parameters__"  # in `RunResult.outputs[task]`


@dataclasses.dataclass
class RunResult:
  # task -> output key -> runtime artifact; PARAMETERS_KEY -> its output
  # parameters' values.
  outputs: Dict[str, Dict[str, Any]]
  executed: List[str]
  cached: List[str]
  forms: collections.Counter  # oss hand-over forms used, by name
  logs: Dict[str, str]  # task -> log file


def task_order(spec: Mapping[str, Any]) -> List[str]:
  """The root DAG's task names, each after every task it depends on."""
  tasks = spec["root"]["dag"]["tasks"]
  order: List[str] = []
  visiting = set()

  def visit(name):
    if name in order:
      return
    if name in visiting:
      raise ValueError(f"cycle at task {name}")
    visiting.add(name)
    for dep in sorted(upstream_tasks(tasks[name])):
      visit(dep)
    order.append(name)

  for name in sorted(tasks):
    for dep in upstream_tasks(tasks[name]):
      if dep not in tasks:
        raise TaskFailed(f"task {name}: cannot find producer task {dep!r} "
                         "(KFP's driver fails the same way)")
    visit(name)
  return order


def upstream_tasks(task: Mapping[str, Any]) -> set:
  deps = set(task.get("dependentTasks", []))
  for artifact in task.get("inputs", {}).get("artifacts", {}).values():
    deps.add(artifact["taskOutputArtifact"]["producerTask"])
  for parameter in task.get("inputs", {}).get("parameters", {}).values():
    if "taskOutputParameter" in parameter:
      deps.add(parameter["taskOutputParameter"]["producerTask"])
  return deps


def image_sources(repo: str) -> List[str]:
  """What the Dockerfile copies into the image before installing it (its
  `COPY <path> ./...` lines, without the lock file and the schemas)."""
  sources = []
  with open(os.path.join(repo, "Dockerfile")) as f:
    for line in f:
      parts = line.split()
      if (len(parts) == 3 and parts[0] == "COPY" and parts[2].startswith("./")
          and not parts[1].startswith("$")):
        sources.append(parts[1])
  return sources


def install_package(repo: str, target: str) -> str:
  """Installs this project non-editably into `target`, as the Dockerfile
  does: the sources it copies (`image_sources`), installed without
  dependencies, with the schemas at `target/schemas`."""
  source = tempfile.mkdtemp(prefix="kfp-image-src-")
  for path in image_sources(repo):
    if os.path.isdir(os.path.join(repo, path)):
      shutil.copytree(os.path.join(repo, path), os.path.join(source, path),
                      ignore=shutil.ignore_patterns("__pycache__"))
    else:
      shutil.copy(os.path.join(repo, path), source)
  subprocess.run(
      [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
       "--no-build-isolation", "--disable-pip-version-check", "--target",
       target, source], check=True, cwd=source, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)
  shutil.rmtree(source, ignore_errors=True)
  shutil.copytree(os.path.join(repo, "schemas"),
                  os.path.join(target, "schemas"), dirs_exist_ok=True)
  return target


def _title(artifact_type: Mapping[str, Any]) -> str:
  if "schemaTitle" in artifact_type:
    return artifact_type["schemaTitle"]
  for line in artifact_type.get("instanceSchema", "").splitlines():
    if line.startswith("title:"):
      return line.split(":", 1)[1].strip()
  return ""


class _Handover:
  """Turns a producer's output artifact into a consumer's input artifact."""

  def __init__(self, mode: str):
    if mode not in MODES:
      raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    self.mode = mode
    self.forms: collections.Counter = collections.Counter()
    self._next_id = 0

  def __call__(self, artifact: Mapping[str, Any]) -> Dict[str, Any]:
    artifact = json.loads(json.dumps(artifact))  # a copy, as through a store
    if self.mode == "vertex":
      return artifact
    self._next_id += 1
    form = OSS_FORMS[(self._next_id - 1) % len(OSS_FORMS)]
    self.forms[form] += 1
    declared = _title(artifact.get("type", {}))
    title = (declared if declared.startswith("system.") else
             OSS_TITLES.get(declared, "system.Artifact"))
    artifact.pop("type", None)
    if form == "system title":
      artifact["type"] = {"schemaTitle": title, "schemaVersion": "0.0.1"}
    elif form == "empty instance schema":
      artifact["type"] = {"instanceSchema": ""}
    metadata = {k: float(v) if isinstance(v, (int, bool)) else v
                for k, v in artifact.get("metadata", {}).items()}
    metadata.setdefault("display_name", artifact["name"].rsplit("-", 1)[-1])
    metadata.setdefault("store_session_info", json.dumps(
        {"provider": "minio", "params": {}}))
    artifact["metadata"] = metadata
    artifact["name"] = str(self._next_id)  # an ML Metadata artifact id
    return artifact


def _replace_paths(value: Any, path_map: Mapping[str, str]) -> Any:
  if isinstance(value, str):
    for old, new in path_map.items():
      value = value.replace(old, new)
  return value


# What a warm task server imports before forking tasks.
WARM_IMPORTS = (
    "components",  # the Keras choice, before TensorFlow
    "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
    "apache_beam", "tensorflow_data_validation", "tensorflow_model_analysis")


class TaskStarter:
  """Runs a task's command as a process of its own, its output to a log.

  Cold: `subprocess.run` of the command, a fresh interpreter per task. Warm
  (`python -m MODULE` commands only): the task is forked from a
  `kfp_task_server` that imported `WARM_IMPORTS` in the task's environment
  and working directory, so each task skips ~5 s of imports; one server per
  distinct (interpreter, environment, directory), stopped by `close`. A
  server that does not start in `START_SECONDS`, or a task that does not
  end in `TASK_SECONDS`, fails the task rather than hanging the caller.
  """
  START_SECONDS = 300
  TASK_SECONDS = 1800

  def __init__(self, warm: bool, imports=WARM_IMPORTS):
    self._warm = warm
    self._imports = tuple(imports)
    # key -> (the server, its log)
    self._servers: Dict[str, Tuple[subprocess.Popen, str]] = {}

  def run(self, command: List[str], env: Mapping[str, str], cwd: str,
          log_path: str) -> int:
    """The command's exit status (negative: the signal that killed it)."""
    if not (self._warm and command[1:2] == ["-m"]):
      with open(log_path, "wb") as log_file:
        return subprocess.run(command, env=dict(env), cwd=cwd,
                              stdout=log_file, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL,
                              check=False).returncode
    key = json.dumps([command[0], sorted(env.items()), cwd])
    if key not in self._servers:
      self._servers[key] = self._start(command[0], env, cwd,
                                       log_path + ".server")
    server, server_log = self._servers[key]
    try:
      server.stdin.write(json.dumps({
          "module": command[2], "args": command[3:], "log": log_path}) + "\n")
      server.stdin.flush()
      reply, why = _read_line(server, self.TASK_SECONDS), "it ended"
    except (OSError, TimeoutError) as e:
      reply, why = "", str(e)
    if not reply:
      del self._servers[key]
      _stop(server)
      raise TaskFailed(f"the task server stopped serving ({why}; exit "
                       f"{server.returncode}); its log: {server_log}")
    return json.loads(reply)["returncode"]

  def _start(self, python: str, env: Mapping[str, str], cwd: str,
             server_log: str) -> Tuple[subprocess.Popen, str]:
    with open(server_log, "wb") as log_file:
      server = subprocess.Popen(
          [python, os.path.join(os.path.dirname(__file__),
                                "kfp_task_server.py"), *self._imports],
          env=dict(env), cwd=cwd, stdin=subprocess.PIPE,
          stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
      ready = json.loads(_read_line(server, self.START_SECONDS) or "null")
    except (TimeoutError, ValueError):
      ready = None
    if ready != {"ready": True}:
      _stop(server)
      raise TaskFailed(f"the task server did not start (exit "
                       f"{server.returncode}); its log: {server_log}")
    return server, server_log

  def close(self) -> None:
    for server, _ in self._servers.values():
      _stop(server)
    self._servers.clear()


def _read_line(process: subprocess.Popen, seconds: float) -> str:
  """The next line `process` writes ("" at its end); TimeoutError after
  `seconds` without one."""
  ready, _, _ = select.select([process.stdout], [], [], seconds)
  if not ready:
    raise TimeoutError(f"nothing in {seconds} s")
  return process.stdout.readline()


def _stop(process: subprocess.Popen) -> None:
  """Closes `process`'s pipes (a server's stdin: it ends) and reaps it."""
  for pipe in (process.stdin, process.stdout):
    with contextlib.suppress(OSError):
      pipe.close()
  try:
    process.wait(timeout=30)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()


def _cache_key(component: str, container: Mapping[str, Any],
               parameters: Mapping[str, Any],
               artifacts: Mapping[str, Any]) -> str:
  fingerprint = json.dumps(
      [component, container, parameters,
       {k: [(a["uri"], a.get("metadata", {})) for a in v["artifacts"]]
        for k, v in artifacts.items()}], sort_keys=True)
  return hashlib.sha256(fingerprint.encode()).hexdigest()


def run_spec(spec: Mapping[str, Any], root: str, *, mode: str = "oss",
             install_dir: Optional[str] = None,
             path_map: Optional[Mapping[str, str]] = None,
             env: Optional[Mapping[str, str]] = None,
             cache: Optional[Dict[str, Dict[str, Any]]] = None,
             local_dir: Optional[str] = None,
             platform: Optional[Mapping[str, Any]] = None,
             secrets: Optional[Mapping[str, Mapping[str, str]]] = None,
             log=print, until: Optional[str] = None,
             warm_start: bool = True) -> RunResult:
  """Executes every task of `spec`, in dependency order; output artifacts go
  under `root` (a local path or a `gs://`/`s3://` URI), task logs and
  executor output files under `local_dir` (default: `root`, if local).

  `install_dir`: an `install_package` directory the tasks import the project
  from (None: whatever `env` gives). Each task's environment also gets its
  container's `env` from the spec and, from the Kubernetes `platform` spec
  (the YAML's second document), its `secretAsEnv` entries, looked up in
  `secrets` ({secret name: {key: value}}) as the kubelet would. `cache` (a dict, updated in place) holds
  earlier executions' outputs by cache key. Raises `TaskFailed` when a task
  fails; later tasks do not run. `until`: stop after that task.
  `warm_start`: start tasks by forking an interpreter that has imported
  TensorFlow and TFX already (`TaskStarter`); False: a fresh interpreter
  per task, as a container is.
  """
  if local_dir is None and "://" in root:
    raise ValueError(f"root {root} is not local: pass local_dir for logs")
  handover = _Handover(mode)
  path_map = dict(path_map or {})
  cache = {} if cache is None else cache
  task_env = dict(os.environ if env is None else env)
  if install_dir:
    task_env["PYTHONPATH"] = install_dir
  work_dir = tempfile.mkdtemp(prefix="kfp-task-cwd-")  # outside the repo
  outputs: Dict[str, Dict[str, Any]] = {}
  result = RunResult(outputs, [], [], handover.forms, {})
  executors = spec["deploymentSpec"]["executors"]
  servers = TaskStarter(warm=warm_start)
  try:
    for name in task_order(spec):
      task = spec["root"]["dag"]["tasks"][name]
      component_name = task["componentRef"]["name"]
      component = spec["components"][component_name]
      executor = executors[component["executorLabel"]]
      inputs = task.get("inputs", {})
      if "importer" in executor:  # the driver registers the URI, no container
        importer = executor["importer"]
        (out, definition), = (
            component["outputDefinitions"]["artifacts"].items())
        outputs[name] = {out: {
            "name": f"{name}-{out}", "type": definition["artifactType"],
            "uri": _replace_paths(importer["artifactUri"]["constant"],
                                  path_map),
            "metadata": {}}}
        result.executed.append(name)
        continue
      container = executor["container"]
      parameters = {}
      for key, p in inputs.get("parameters", {}).items():
        if "taskOutputParameter" in p:
          source = p["taskOutputParameter"]
          parameters[key] = outputs[source["producerTask"]][PARAMETERS_KEY][
              source["outputParameterKey"]]
        else:
          parameters[key] = _replace_paths(p["runtimeValue"]["constant"],
                                           path_map)
      artifacts = {}
      for key, artifact in inputs.get("artifacts", {}).items():
        source = artifact["taskOutputArtifact"]
        produced = outputs[source["producerTask"]][source["outputArtifactKey"]]
        artifacts[key] = {"artifacts": [handover(produced)]}
      key = _cache_key(component_name, container, parameters,
                       {k: {"artifacts": [
                           outputs[a["taskOutputArtifact"]["producerTask"]][
                               a["taskOutputArtifact"]["outputArtifactKey"]]]}
                        for k, a in inputs.get("artifacts", {}).items()})
      if task.get("cachingOptions", {}).get("enableCache") and key in cache:
        outputs[name] = json.loads(json.dumps(cache[key]))
        result.cached.append(name)
        log(f"kfp task {name}: cached")
        if name == until:
          break
        continue

      task_dir = os.path.join(local_dir or root, name)
      os.makedirs(task_dir, exist_ok=True)
      output_file = os.path.join(task_dir, "executor_output.json")
      declared = component.get("outputDefinitions", {}).get("artifacts", {})
      declared_parameters = component.get("outputDefinitions", {}).get(
          "parameters", {})
      executor_input = {
          "inputs": {"parameterValues": parameters, "artifacts": artifacts},
          "outputs": {"outputFile": output_file, "artifacts": {
              out: {"artifacts": [{
                  "name": f"{name}-{out}", "type": definition["artifactType"],
                  "uri": _join(root, name, out), "metadata": {}}]}
              for out, definition in declared.items()}}}
      if declared_parameters:
        executor_input["outputs"]["parameters"] = {
            out: {"outputFile": os.path.join(task_dir, f"parameter-{out}")}
            for out in declared_parameters}
      if mode == "oss":
        executor_input["outputs"]["artifacts"]["executor-logs"] = {
            "artifacts": [{"name": "executor-logs", "type": {
                "schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"},
                           "uri": _join(root, name, "executor-logs"),
                           "metadata": {}}]}
      args = [arg.replace(PLACEHOLDER, json.dumps(executor_input))
              for arg in container.get("args", [])]
      command = list(container["command"])
      if command[0] == "python":
        command[0] = sys.executable
      executor_env = dict(task_env)
      executor_env.update({e["name"]: e["value"]
                           for e in container.get("env", [])})
      k8s = ((platform or {}).get("platforms", {}).get("kubernetes", {})
             .get("deploymentSpec", {}).get("executors", {})
             .get(component["executorLabel"], {}))
      for secret in k8s.get("secretAsEnv", []):
        values = (secrets or {}).get(secret["secretName"])
        if values is None:
          raise TaskFailed(f"task {name}: secret {secret['secretName']!r} "
                           "not found")
        for item in secret["keyToEnv"]:
          executor_env[item["envVar"]] = values[item["secretKey"]]
      log_path = os.path.join(task_dir, "log.txt")
      result.logs[name] = log_path
      log(f"kfp task {name}: {' '.join(command[1:3])} ({mode})")
      returncode = servers.run(command + args, executor_env, work_dir,
                               log_path)
      if returncode != 0 or not os.path.exists(output_file):
        with open(log_path, errors="replace") as f:
          tail = f.read()[-4000:]
        raise TaskFailed(f"task {name} exited {returncode} "
                         f"({'no' if not os.path.exists(output_file) else 'an'}"
                         f" executor output); log {log_path}:\n{tail}")
      with open(output_file) as f:
        executor_output = json.load(f)
      reported = executor_output.get("artifacts", {})
      missing = set(declared_parameters) - set(
          executor_output.get("parameterValues", {}))
      if missing:
        raise TaskFailed(f"task {name}: no value for output parameter(s) "
                         f"{sorted(missing)}")
      nulls = [f"{out}.{k}" for out, v in reported.items()
               for a in v.get("artifacts", [])
               for k, value in a.get("metadata", {}).items() if value is None]
      if mode == "oss" and nulls:
        raise TaskFailed(f"task {name}: the launcher cannot record null "
                         f"metadata {nulls}")
      outputs[name] = {}
      for out, passed in executor_input["outputs"]["artifacts"].items():
        if out == "executor-logs":
          continue
        artifact = dict(passed["artifacts"][0])
        written = (reported.get(out) or {}).get("artifacts") or [{}]
        artifact["metadata"] = written[0].get("metadata", {})
        outputs[name][out] = artifact
      outputs[name][PARAMETERS_KEY] = {
          out: executor_output["parameterValues"][out]
          for out in declared_parameters}
      cache[key] = json.loads(json.dumps(outputs[name]))
      result.executed.append(name)
      if name == until:
        break
  finally:
    servers.close()
    shutil.rmtree(work_dir, ignore_errors=True)
  return result


def _join(root: str, *parts: str) -> str:
  if "://" in root:
    return "/".join([root.rstrip("/"), *parts])
  return os.path.join(root, *parts)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("spec", help="a compiled spec (make compile-kubeflow)")
  parser.add_argument("--mode", choices=MODES, default="oss")
  parser.add_argument("--root", required=True,
                      help="where task outputs and logs go")
  args = parser.parse_args(argv)
  import yaml  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(args.spec) as f:
    spec, *platform = yaml.safe_load_all(f)
  install_dir = install_package(repo, tempfile.mkdtemp(prefix="kfp-image-"))
  try:
    result = run_spec(spec, os.path.abspath(args.root), mode=args.mode,
                      install_dir=install_dir,
                      platform=platform[0] if platform else None, path_map={
                          "/pipeline/schemas": os.path.join(install_dir,
                                                            "schemas")})
  except TaskFailed as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  finally:
    shutil.rmtree(install_dir, ignore_errors=True)
  print(f"ran {len(result.executed)} tasks ({args.mode} hand-over), "
        f"{len(result.cached)} cached; logs under {args.root}")
  report = result.outputs.get("Report", {})
  if report:
    print(f"report:  {report['report_html']['uri']} (HTML), "
          f"{report['report']['uri']} (summary.json, report.md)")
    with open(os.path.join(report["report"]["uri"], "summary.json")) as f:
      print(json.load(f)["verdict"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
