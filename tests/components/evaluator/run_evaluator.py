"""The pipeline's Evaluator executor run on given artifacts, as TFX runs it
(the tests' shared helper)."""
import json
import os

from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.evaluator import executor as evaluator_executor


def run_evaluator(out_root, inputs, config):
  """(evaluation, blessing) artifacts, written below `out_root`, of the
  Evaluator on `inputs` (examples, model, ...) under EvalConfig `config`,
  on the eval split."""
  out = {"evaluation": [standard_artifacts.ModelEvaluation()],
         "blessing": [standard_artifacts.ModelBlessing()]}
  for key, artifact in out.items():
    artifact[0].uri = os.path.join(str(out_root), key)
    os.makedirs(artifact[0].uri)
  evaluator_executor.Executor().Do(
      inputs, out, {"eval_config": proto_utils.proto_to_json(config),
                    "example_splits": json.dumps(["eval"])})
  return out["evaluation"][0], out["blessing"][0]
