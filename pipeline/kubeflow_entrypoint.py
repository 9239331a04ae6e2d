"""The container entrypoint of every Kubeflow task (the image's ENTRYPOINT).

A thin wrapper around TFX's KFP v2 executor entrypoint
(`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`), which
the compiled spec names instead of TFX's own. It fixes what goes wrong when the
open-source KFP 2.x backend, rather than Vertex AI, runs the task:

* **Input artifact types.** The open-source driver resolves input artifacts
  from its own ML Metadata and hands them over with generic titles
  (`system.Dataset`, `system.Model`, `system.Artifact`), an empty instance
  schema, or no type at all; TFX imports the artifact class by that title and
  fails ("Could not import system.Dataset"). Every input artifact is given the
  type the component declares, from `--json_serialized_inputs_spec_args`
  (which the compiled spec always passes). Metadata, URIs and names are kept.
  On Vertex AI the declared and handed-over types are the same, so nothing
  changes there.
* **The launcher's own outputs.** KFP 2.5+ adds an `executor-logs` output of
  type `system.Artifact` that the launcher fills itself; TFX would fail to
  import that type, so outputs with a `system.*` type are hidden from TFX,
  except our own (`components.artifact_types`: metrics and the report, which
  TFX finds by their titles once registered).
* **Null metadata.** The open-source launcher refuses a null metadata value
  in the executor output (TFX writes one for an unset property); such values
  are dropped from the output file.
* **Object storage.** `s3://` (MinIO, S3) is registered with `tf.io.gfile`
  before the executor runs (`components.storage`).
* **Start-up.** As in `local_runner`, no garbage collection while the
  libraries import, and their objects frozen before TFX's entrypoint runs
  the executor (`pipeline.heap`).
* **Exit.** TensorFlow and Beam threads can abort the interpreter at exit
  ("pure virtual method called", exit 134) after the executor has written its
  output, failing a finished task. Once the executor output file is written,
  the process flushes its streams and exits 0 at once; an executor error exits
  1 with its traceback.
"""
from __future__ import annotations

import copy
import json
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

from pipeline import heap

TFX_ENTRYPOINT = (
    "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"


def restore_input_types(executor_input: Dict[str, Any],
                        inputs_spec: Dict[str, Any]) -> Dict[str, Any]:
  """`executor_input` (a JSON dict) with every input artifact typed as the
  component's inputs spec declares, whatever type the driver handed over."""
  restored = copy.deepcopy(executor_input)
  declared = inputs_spec.get("artifacts", {})
  artifacts = restored.get("inputs", {}).get("artifacts", {})
  for key, artifact_list in artifacts.items():
    if key not in declared:
      raise ValueError(f"input artifact {key!r} is not in the component's "
                       f"inputs spec (declared: {sorted(declared)})")
    for artifact in artifact_list.get("artifacts", []):
      artifact["type"] = copy.deepcopy(declared[key]["artifactType"])
  return restored


def hide_launcher_outputs(executor_input: Dict[str, Any],
                          ours: Tuple[str, ...] = ()) -> Dict[str, Any]:
  """`executor_input` without the outputs the KFP launcher fills itself
  (typed `system.*`, such as `executor-logs`), except those typed with one
  of our titles `ours`."""
  restored = copy.deepcopy(executor_input)
  outputs = restored.get("outputs", {}).get("artifacts", {})
  for key in list(outputs):
    titles = [a.get("type", {}).get("schemaTitle", "")
              for a in outputs[key].get("artifacts", [])]
    if any(t.startswith("system.") and t not in ours for t in titles):
      del outputs[key]
  return restored


def drop_null_metadata(executor_output: Dict[str, Any]) -> Dict[str, Any]:
  """`executor_output` (a JSON dict) without null metadata values."""
  for artifact_list in executor_output.get("artifacts", {}).values():
    for artifact in artifact_list.get("artifacts", []):
      metadata = artifact.get("metadata")
      if metadata:
        artifact["metadata"] = {k: v for k, v in metadata.items()
                                if v is not None}
  return executor_output


def _flag_value(argv: List[str], flag: str) -> Optional[int]:
  """Index in `argv` of the value of `flag` (`--flag value` form)."""
  for i, arg in enumerate(argv[:-1]):
    if arg == flag:
      return i + 1
  return None


def rewrite_args(argv: List[str]) -> Tuple[List[str], str]:
  """The executor's command-line arguments with input types restored and the
  launcher's outputs hidden, and the path of the executor output file."""
  split: List[str] = []  # `--flag=value` as `--flag value`
  for arg in argv:
    flag, equals, value = arg.partition("=")
    split += ([flag, value] if equals and flag in (
        INVOCATION_FLAG, INPUTS_SPEC_FLAG) else [arg])
  argv = split
  invocation = _flag_value(argv, INVOCATION_FLAG)
  inputs_spec = _flag_value(argv, INPUTS_SPEC_FLAG)
  if invocation is None:
    raise ValueError(f"{INVOCATION_FLAG} is missing")
  if inputs_spec is None:
    raise ValueError(f"{INPUTS_SPEC_FLAG} is missing: recompile the spec "
                     "with `make compile-kubeflow`")
  from components import artifact_types  # pylint: disable=g-import-not-at-top
  executor_input = hide_launcher_outputs(
      restore_input_types(json.loads(argv[invocation]),
                          json.loads(argv[inputs_spec])),
      ours=tuple(cls.TYPE_NAME for cls in artifact_types.KFP_TYPES))
  argv[invocation] = json.dumps(executor_input)
  return argv, executor_input.get("outputs", {}).get("outputFile", "")


def _clean_output_file(path: str) -> None:
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  with fileio.open(path, "r") as f:
    executor_output = json.loads(f.read())
  with fileio.open(path, "w") as f:
    f.write(json.dumps(drop_null_metadata(executor_output)))


def _exit_now(code: int) -> None:
  from components import storage  # pylint: disable=g-import-not-at-top
  storage.exit_process(code)


def main(argv: Optional[List[str]] = None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  heap.pause_collection()  # until the executor runs
  import components  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import  (Keras 2 first)
  from components import artifact_types  # pylint: disable=g-import-not-at-top
  from components import storage  # pylint: disable=g-import-not-at-top
  storage.enable_object_storage()  # s3:// (MinIO) roots
  artifact_types.register()  # our types, found by their schema titles
  from absl import app  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint  # pylint: disable=g-import-not-at-top

  def run(parsed_argv) -> None:
    heap.resume_collection()
    try:
      tfx_entrypoint.main(parsed_argv)
      _clean_output_file(output_file)
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()
      _exit_now(1)
    _exit_now(0)

  try:
    args, output_file = rewrite_args(argv)
  except (ValueError, json.JSONDecodeError) as e:
    print(f"error: {__name__}: {e}", file=sys.stderr)
    _exit_now(2)
  app.run(run, argv=[sys.argv[0]] + args,
          flags_parser=tfx_entrypoint._parse_flags)  # pylint: disable=protected-access


if __name__ == "__main__":
  main()
