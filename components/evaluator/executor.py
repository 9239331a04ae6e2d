"""TFX's Evaluator executor, told "no baseline" by `LatestPushedModel`.

`LatestPushedModel` always emits a `Model` artifact; when nothing is in
service yet it is empty (`found` = 0). TFX's Evaluator treats any baseline
artifact as a model to load, so this executor drops an empty one first (TFMA
then ignores the change thresholds and the value thresholds alone decide).
When the artifact carries the best accuracy ever pushed in the lineage, the
cumulative guard (accuracy >= best ever − MAX_ACCURACY_DROP) is added to the
EvalConfig as one more TFMA threshold; versions whose accuracy no record
states are scored first on the same eval split (`rescore`), so the best ever
counts every version in the serving directory. The blessing records which version
was in service (the Pusher's compare-and-swap), the candidate's accuracy
(the registry's) and the best ever.

TFMA decodes only what it reads: given the curated schema, TFX's executor
is handed that schema cut down to the features the EvalConfig names (the
label, the slicing keys; `features_tfma_reads`). The models still get each
whole serialized example; what TFMA no longer does is turn 784 floats per
example into features it then never reads: about 0.5 s of 5 on MNIST's eval
split with the candidate alone (docs/benchmarks.md), the same metrics and
decisions (`tests/components/evaluator/test_tfma_reads.py`). Nor does TFMA
load each Keras model one extra time to learn its type: the EvalConfig names
it (`eval_config.keras_model_type`).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from absl import logging
import numpy as np
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils

from components import keras2
from components.baseline import executor as baseline_executor
from components.evaluator import blessing as blessing_lib
from components.evaluator import eval_config as eval_config_lib
from components.evaluator import metrics
from components.evaluator import rescore
from components.ingestion import examples_io

keras2.skip_keras_internals()  # TFMA's Keras metrics

BASELINE_KEY = standard_component_specs.BASELINE_MODEL_KEY
EVAL_CONFIG_KEY = standard_component_specs.EVAL_CONFIG_KEY
SCHEMA_KEY = standard_component_specs.SCHEMA_KEY
BASELINE_VERSION_DIR_KEY = blessing_lib.BASELINE_VERSION_DIR_KEY
BASELINE_SOURCE_MODEL_KEY = blessing_lib.BASELINE_SOURCE_MODEL_KEY
RESCORED_KEY = blessing_lib.RESCORED_KEY


def _eval_config(exec_properties: Dict[str, Any]) -> tfma.EvalConfig:
  return proto_utils.json_to_proto(exec_properties[EVAL_CONFIG_KEY],
                                   tfma.EvalConfig())


def _with_eval_config(exec_properties: Dict[str, Any],
                      config: tfma.EvalConfig) -> Dict[str, Any]:
  return dict(exec_properties,
              **{EVAL_CONFIG_KEY: proto_utils.proto_to_json(config)})


def _with_guard(exec_properties: Dict[str, Any],
                best_ever: float) -> Dict[str, Any]:
  guarded = eval_config_lib.with_best_ever_guard(_eval_config(exec_properties),
                                                 best_ever)
  return _with_eval_config(exec_properties, guarded)


def _with_model_type(exec_properties: Dict[str, Any],
                     models: List[types.Artifact]) -> Dict[str, Any]:
  """`exec_properties` whose EvalConfig names the models' type when they
  are all Keras models (`eval_config.keras_model_type`), so that TFMA does
  not load each one an extra time to find out."""
  model_type = eval_config_lib.keras_model_type([
      path_utils.serving_model_path(
          m.uri, path_utils.is_old_model_artifact(m)) for m in models])
  if model_type is None or not exec_properties.get(EVAL_CONFIG_KEY):
    return exec_properties
  return _with_eval_config(exec_properties, eval_config_lib.with_model_type(
      _eval_config(exec_properties), model_type))


def features_tfma_reads(config: tfma.EvalConfig) -> Set[str]:
  """The features TFMA reads from the examples under `config`: labels,
  example weights, prediction keys and slicing keys (the models read the
  serialized examples)."""
  names = set()
  for spec in config.model_specs:
    names.update(n for n in (spec.label_key, spec.example_weight_key,
                             spec.prediction_key) if n)
    names.update(spec.label_keys.values())
    names.update(spec.example_weight_keys.values())
    names.update(spec.prediction_keys.values())
  slicings = list(config.slicing_specs) + [
      slicing for spec in config.metrics_specs for metric in spec.metrics
      for threshold in metric.per_slice_thresholds
      for slicing in threshold.slicing_specs]
  for slicing in slicings:
    names.update(slicing.feature_keys)
    names.update(slicing.feature_values)  # a map: its keys
  return names


@contextlib.contextmanager
def _schema_tfma_reads(input_dict: Dict[str, List[types.Artifact]],
                       exec_properties: Dict[str, Any]
                       ) -> Iterator[Dict[str, List[types.Artifact]]]:
  """`input_dict` with its schema cut down to `features_tfma_reads` (in a
  temporary directory while TFX's executor runs); unchanged without a
  schema or an EvalConfig."""
  if (not input_dict.get(SCHEMA_KEY) or
      not exec_properties.get(EVAL_CONFIG_KEY)):
    yield input_dict
    return
  config = _eval_config(exec_properties)
  schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
      artifact_utils.get_single_uri(input_dict[SCHEMA_KEY])))
  wanted = features_tfma_reads(config)
  kept = [f for f in schema.feature if f.name in wanted]
  del schema.feature[:]
  schema.feature.extend(kept)
  with tempfile.TemporaryDirectory(prefix="tfma_schema") as directory:
    io_utils.write_pbtxt_file(os.path.join(directory, "schema.pbtxt"),
                              schema)
    projected = standard_artifacts.Schema()
    projected.uri = directory
    yield dict(input_dict, **{SCHEMA_KEY: [projected]})


def _rescore_unrecorded(input_dict: Dict[str, List[types.Artifact]],
                        exec_properties: Dict[str, Any],
                        lookup: types.Artifact) -> Dict[str, float]:
  """Eval accuracy of each version `lookup` notes as unrecorded."""
  version_dirs = baseline_executor.unrecorded_version_dirs(lookup)
  if not version_dirs:
    return {}
  examples = artifact_utils.get_single_instance(
      input_dict[standard_component_specs.EXAMPLES_KEY])
  splits = json.loads(exec_properties.get(
      standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or ["eval"]
  scored = rescore.rescore(version_dirs,
                           examples_io.split_dir(examples.uri, splits[0]))
  logging.info("versions without a record, scored on %s: %s", splits[0],
               scored)
  return scored


def _best(best_ever: Optional[Tuple[float, str]],
          rescored: Dict[str, float]) -> Optional[Tuple[float, str]]:
  found = ([best_ever] if best_ever else []) + [
      (accuracy, version) for version, accuracy in rescored.items()]
  return max(found, key=lambda f: f[0]) if found else None


class Executor(tfx_evaluator_executor.Executor):
  """Evaluates the candidate, against the model in service if there is one."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    input_dict = dict(input_dict)
    looked_up = input_dict.pop(BASELINE_KEY, [])
    baseline = [a for a in looked_up if baseline_executor.has_model(a)]
    if baseline:
      input_dict[BASELINE_KEY] = baseline
    best_ever = (baseline_executor.best_ever(looked_up[0]) if looked_up
                 else None)
    rescored = (_rescore_unrecorded(input_dict, exec_properties, looked_up[0])
                if looked_up else {})
    best_ever = _best(best_ever, rescored)
    if best_ever and exec_properties.get(EVAL_CONFIG_KEY):
      exec_properties = _with_guard(exec_properties, best_ever[0])
    exec_properties = _with_model_type(
        exec_properties,
        input_dict.get(standard_component_specs.MODEL_KEY, []) + baseline)
    # TF prints each batch of examples into a TypeError it swallows (TFMA
    # calls the keyword-only signature positionally): keep that print short.
    with np.printoptions(threshold=10), _schema_tfma_reads(
        input_dict, exec_properties) as tfma_inputs:
      super().Do(tfma_inputs, output_dict, exec_properties)
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    accuracy = metrics.candidate_accuracy(evaluation.uri)
    if accuracy is not None:
      blessing.set_float_custom_property(blessing_lib.CANDIDATE_ACCURACY_KEY,
                                         accuracy)
    if best_ever:
      blessing.set_float_custom_property(blessing_lib.BEST_EVER_ACCURACY_KEY,
                                         best_ever[0])
      blessing.set_string_custom_property(blessing_lib.BEST_EVER_VERSION_KEY,
                                          str(best_ever[1]))
    if rescored:
      blessing.set_string_custom_property(RESCORED_KEY, json.dumps(rescored))
    blessing.set_string_custom_property(blessing_lib.COMPARED_WITH_KEY,
                                        blessing_lib.NO_VERSION)
    if baseline:
      version_dir = baseline[0].get_string_custom_property(
          baseline_executor.VERSION_DIR_KEY)
      blessing.set_string_custom_property(BASELINE_VERSION_DIR_KEY,
                                          version_dir)
      blessing.set_string_custom_property(
          BASELINE_SOURCE_MODEL_KEY, baseline[0].get_string_custom_property(
              baseline_executor.SOURCE_MODEL_KEY))
      blessing.set_string_custom_property(
          blessing_lib.COMPARED_WITH_KEY,
          blessing_lib.version_name(version_dir))

