"""The blessing decisions themselves, from real TFMA runs of the Evaluator
executor on a small eval set (10,000 tiny examples, so one wrong example
moves accuracy by 0.0001).

Each model is a `tf.Module` whose `serving_default` reads its prediction from
the example: model k answers feature `p<k>` (one-hot), so each test writes
exactly the mistakes it needs.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import path_utils
from tfx.utils import proto_utils

from components.baseline import executor as baseline_executor
from components.evaluator import blessing as blessing_lib
from components.evaluator import eval_config
from components.evaluator import executor as evaluator_executor
from components.evaluator import verdict
from components.pusher import executor as pusher_executor
from serving import registry
from serving import versions

N = 10_000
NUM_MODELS = 3


def _write_examples(directory, predictions):
  """`label` = i % 10 and `p<k>` = model k's answer, as TFX `Examples`."""
  labels = np.arange(N) % 10
  split = os.path.join(directory, "Split-eval")
  os.makedirs(split)
  options = tf.io.TFRecordOptions(compression_type="GZIP")
  with tf.io.TFRecordWriter(os.path.join(split, "data.gz"), options) as w:
    for i in range(N):
      features = {"label": tf.train.Feature(
          int64_list=tf.train.Int64List(value=[labels[i]]))}
      for k in range(NUM_MODELS):
        answer = predictions[k][i] if k < len(predictions) else labels[i]
        features[f"p{k}"] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=[answer]))
      w.write(tf.train.Example(features=tf.train.Features(
          feature=features)).SerializeToString())
  examples = standard_artifacts.Examples()
  examples.uri = str(directory)
  examples.split_names = json.dumps(["eval"])
  return examples


def _answers(wrong_per_class):
  """Answers to `label` = i % 10, wrong for the first n of each class."""
  labels = np.arange(N) % 10
  answers = labels.copy()
  for label, n in wrong_per_class.items():
    (indices,) = np.nonzero(labels == label)
    answers[indices[:n]] = (label + 1) % 10
  return answers


def _spread(n):
  """n mistakes spread over the classes (no class loses much)."""
  return {c: n // 10 + (1 if c < n % 10 else 0) for c in range(10)}


def _save_model(path, k):
  module = tf.Module()

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(examples):
    parsed = tf.io.parse_example(
        examples, {f"p{k}": tf.io.FixedLenFeature([1], tf.int64)})
    return {"probabilities": tf.one_hot(parsed[f"p{k}"][:, 0], 10)}

  module.serve = serve
  tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
  return str(path)


def _model_artifact(root, k):
  model = standard_artifacts.Model()
  model.uri = str(root)
  _save_model(path_utils.serving_model_dir(model.uri), k)
  return model


def _evaluate(tmp_path, examples, candidate, baseline, config):
  out = {"evaluation": [standard_artifacts.ModelEvaluation()],
         "blessing": [standard_artifacts.ModelBlessing()]}
  out["evaluation"][0].uri = str(tmp_path / "evaluation")
  out["blessing"][0].uri = str(tmp_path / "blessing")
  for artifact in (out["evaluation"][0], out["blessing"][0]):
    os.makedirs(artifact.uri)
  evaluator_executor.Executor().Do(
      {"examples": [examples], "model": [candidate],
       "baseline_model": [baseline]},
      out,
      {"eval_config": proto_utils.proto_to_json(config),
       "example_splits": json.dumps(["eval"])})
  blessing = out["blessing"][0]
  return (bool(blessing.get_int_custom_property("blessed")), blessing,
          out["evaluation"][0].uri)


def _lookup(serving, tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "baseline_lookup")
  baseline_executor.Executor().Do({}, {"model": [model]},
                                  {"serving_model_dir": str(serving)})
  return model


def _in_service(serving, tmp_path, k, accuracy, now):
  """Pushes model k (answers `p<k>`) as if it had scored `accuracy`."""
  path, _ = versions.push(_save_model(tmp_path / f"push{now}", k),
                          str(serving), {"source_model": f"trainer/{now}",
                                         "accuracy": accuracy}, now=now)
  return path


@pytest.mark.parametrize("wrong,blessed", [(19, True), (21, False)])
@pytest.mark.slow
def test_tfma_blesses_a_drop_of_0_0019_and_refuses_0_0021(tmp_path, wrong,
                                                          blessed):
  examples = _write_examples(tmp_path / "examples",
                             [_answers({}), _answers(_spread(wrong))])
  serving = tmp_path / "serving"
  _in_service(serving, tmp_path, 0, 1.0, now=100)  # scores 1.0
  result, blessing, evaluation = _evaluate(
      tmp_path, examples, _model_artifact(tmp_path / "candidate", 1),
      _lookup(serving, tmp_path),
      eval_config.make_eval_config(min_accuracy=0.9, max_accuracy_drop=0.002))
  assert result is blessed
  accuracy = 1 - wrong / N
  assert blessing_lib.candidate_accuracy(blessing) == pytest.approx(accuracy)
  assert blessing_lib.compared_with(blessing) == "100"
  sentence = verdict.from_evaluation(evaluation)
  if blessed:
    assert sentence is None
    return
  assert sentence == (f"not pushed: accuracy {accuracy:.4f} < baseline "
                      "1.0000 \u2212 0.002")


@pytest.mark.slow
def test_a_collapsed_class_is_refused_and_named(tmp_path):
  # Class 7 collapses (59 % wrong); overall 0.941 clears MIN_ACCURACY 0.9.
  examples = _write_examples(tmp_path / "examples", [_answers({7: 590})])
  result, _, evaluation = _evaluate(
      tmp_path, examples, _model_artifact(tmp_path / "candidate", 0),
      _lookup(tmp_path / "serving", tmp_path),  # nothing in service
      eval_config.make_eval_config(min_accuracy=0.9, max_accuracy_drop=0.002))
  assert not result
  assert verdict.from_evaluation(evaluation) == \
      "not pushed: class 7 accuracy 0.4100 < minimum 0.6"


@pytest.mark.slow
def test_a_class_dropping_more_than_allowed_is_refused(tmp_path):
  # Class 3 loses 0.06 against the baseline; overall only 0.006 (allowed 0.01).
  examples = _write_examples(tmp_path / "examples",
                             [_answers({}), _answers({3: 60})])
  serving = tmp_path / "serving"
  _in_service(serving, tmp_path, 0, 1.0, now=100)
  result, _, evaluation = _evaluate(
      tmp_path, examples, _model_artifact(tmp_path / "candidate", 1),
      _lookup(serving, tmp_path),
      eval_config.make_eval_config(min_accuracy=0.9, max_accuracy_drop=0.01,
                                   max_class_accuracy_drop=0.05))
  assert not result
  assert verdict.from_evaluation(evaluation) == \
      "not pushed: class 3 accuracy 0.9400 < baseline 1.0000 \u2212 0.05"


def _slide(tmp_path, damage_best_record=False):
  """A slow slide: best ever pushed 0.9999 (version 100), in service now
  0.9985 (200); the candidate, model 1 (0.9970), is within 0.002 of the
  model in service but 0.0029 below the best ever. Returns the examples
  and the baseline lookup; `damage_best_record` truncates version 100's
  record first."""
  examples = _write_examples(tmp_path / "examples", [
      _answers(_spread(15)), _answers(_spread(30)), _answers(_spread(1))])
  serving = tmp_path / "serving"
  best = _in_service(serving, tmp_path, 2, 0.9999, now=100)
  if damage_best_record:
    with open(os.path.join(best, versions.RECORD_FILE), "w") as f:
      f.write('{"accuracy": 0.99')  # truncated
  _in_service(serving, tmp_path, 0, 0.9985, now=200)
  return examples, _lookup(serving, tmp_path)


def _evaluate_slid_candidate(tmp_path, examples, lookup):
  return _evaluate(
      tmp_path, examples, _model_artifact(tmp_path / "candidate", 1), lookup,
      eval_config.make_eval_config(min_accuracy=0.9, max_accuracy_drop=0.002))


@pytest.mark.slow
def test_the_cumulative_guard_refuses_a_slow_slide(tmp_path):
  examples, lookup = _slide(tmp_path)
  assert baseline_executor.best_ever(lookup) == (pytest.approx(0.9999), "100")
  result, blessing, evaluation = _evaluate_slid_candidate(tmp_path, examples,
                                                          lookup)
  assert not result
  best = blessing_lib.best_ever_accuracy(blessing)
  assert best == pytest.approx(0.9999)
  assert verdict.from_evaluation(evaluation, best) == \
      "not pushed: accuracy 0.9970 < best ever pushed 0.9999 \u2212 0.002"


@pytest.mark.slow
def test_a_blessed_push_records_its_accuracy_and_swaps_only_its_baseline(
    tmp_path):
  examples = _write_examples(tmp_path / "examples",
                             [_answers(_spread(10)), _answers(_spread(5))])
  serving = tmp_path / "serving"
  _in_service(serving, tmp_path, 0, 0.9990, now=100)
  candidate = _model_artifact(tmp_path / "candidate", 1)
  result, blessing, _ = _evaluate(
      tmp_path, examples, candidate, _lookup(serving, tmp_path),
      eval_config.make_eval_config(min_accuracy=0.9, max_accuracy_drop=0.002))
  assert result

  def push(name):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / name)
    pusher_executor.Executor().Do(
        {"model": [candidate], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": json.dumps(
            {"filesystem": {"base_directory": str(serving)}})})
    return pushed

  pushed = push("pushed")
  version = int(pushed.get_string_custom_property("pushed_version"))
  assert registry.record_of(str(serving), version)["accuracy"] == \
      pytest.approx(0.9995)
  assert registry.best_record(registry.records(str(serving)))["version"] == \
      version
  # The same blessing again (a retried Pusher): its model is what is in
  # service, so that is its outcome, and no second copy is pushed.
  again = push("pushed_again")
  assert again.get_string_custom_property("pushed_version") == str(version)
  assert again.get_int_custom_property("new_version") == 0
  # Another model blessed against 100: the model in service is no longer
  # the one it was compared with, so nothing is pushed.
  blessing.set_float_custom_property("candidate_accuracy", 0.9999)
  candidate = _model_artifact(tmp_path / "other", 2)
  with pytest.raises(versions.ServingChangedError,
                     match=f"version 100 then, version {version} now"):
    push("pushed_other")
  assert versions.existing_versions(str(serving)) == [100, version]


@pytest.mark.slow
def test_a_version_without_a_readable_record_still_counts_as_best_ever(
    tmp_path):
  """The best version's record is damaged (and no index names it): the
  Evaluator scores it on the eval split, so the guard still refuses a
  candidate 0.0029 below it (before: the guard fell back to the recorded
  0.9985 and blessed it, contrary to "a version in service is always in
  the best-ever guard")."""
  examples, lookup = _slide(tmp_path, damage_best_record=True)
  assert baseline_executor.best_ever(lookup) == (pytest.approx(0.9985), "200")
  result, blessing, evaluation = _evaluate_slid_candidate(tmp_path, examples,
                                                          lookup)
  assert not result
  assert json.loads(blessing.get_string_custom_property(
      evaluator_executor.RESCORED_KEY)) == {"100": pytest.approx(0.9999)}
  assert blessing.get_string_custom_property(
      blessing_lib.BEST_EVER_VERSION_KEY) == "100"
  assert verdict.from_evaluation(
      evaluation, blessing_lib.best_ever_accuracy(blessing)) == \
      "not pushed: accuracy 0.9970 < best ever pushed 0.9999 \u2212 0.002"


def test_a_version_that_cannot_be_rescored_stops_the_evaluation(tmp_path):
  """An unrecorded version that does not load: one line naming it, and no
  blessing (nothing is pushed past a version whose accuracy is unknown)."""
  examples = _write_examples(tmp_path / "examples", [_answers({})])
  serving = tmp_path / "serving"
  os.makedirs(serving / "300")
  (serving / "300" / "saved_model.pb").write_bytes(b"not a model")
  lookup = _lookup(serving, tmp_path)
  with pytest.raises(Exception) as error:
    _evaluate(tmp_path, examples, _model_artifact(tmp_path / "candidate", 0),
              lookup, eval_config.make_eval_config(min_accuracy=0.9,
                                                   max_accuracy_drop=0.002))
  message = str(error.value)
  assert type(error.value).__name__ == "RescoreError"
  assert message.startswith(
      f"{serving / '300'}: in service without a readable push_record.json, "
      "and it cannot be scored on the eval split (")
  assert "\n" not in message
  assert not (tmp_path / "blessing" / "BLESSED").exists()
