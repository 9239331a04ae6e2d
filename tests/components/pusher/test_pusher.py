"""The Pusher's promise under faults: every version in service is in the
best-ever guard, whatever stops a push and whatever happens to
`registry.json` (docs/reliability.md, "What the gate promises")."""
import json
import os
import shutil

import pytest
import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils
from tfx.utils import proto_utils

from components.baseline import executor as baseline_executor
from components.pusher import executor as pusher_executor
from serving import registry
from serving import versions


def _trained(tmp_path, name, scale):
  """A Trainer `Model` artifact holding a small SavedModel."""
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "trainer" / name)
  if not os.path.exists(model.uri):  # trained once; a rerun reuses it
    module = tf.Module()
    module.scale = tf.Variable(float(scale))
    tf.saved_model.save(module, path_utils.serving_model_path(model.uri))
  return model


def _blessing(accuracy, compared_with):
  blessing = standard_artifacts.ModelBlessing()
  blessing.set_int_custom_property("blessed", 1)
  blessing.set_float_custom_property("candidate_accuracy", accuracy)
  blessing.set_string_custom_property("compared_with", compared_with)
  return blessing


def _push(tmp_path, serving, name, accuracy, compared_with=None):
  """The Pusher executor pushing model `name`, blessed with `accuracy`
  against `compared_with` (the version in service when the Evaluator
  compared; None: the one in service now); returns the PushedModel
  artifact."""
  if compared_with is None:
    compared_with = versions.serving_state(serving)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / "pushed" / name)
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=serving))
  pusher_executor.Executor().Do(
      {"model": [_trained(tmp_path, name, accuracy)],
       "model_blessing": [_blessing(accuracy, compared_with)]},
      {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(destination)})
  return pushed


def _pushed_as(pushed):
  """(version the Pusher reports, whether it made a new one)."""
  return (pushed.get_string_custom_property("pushed_version"),
          pushed.get_int_custom_property(pusher_executor.NEW_VERSION_KEY))


def _best_ever(tmp_path, serving):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "lookup" / str(len(os.listdir(tmp_path))))
  baseline_executor.Executor().Do({}, {"model": [model]},
                                  {"serving_model_dir": serving})
  return baseline_executor.best_ever(model)


class Killed(BaseException):
  """The process dies here (os._exit, kill -9, a preempted pod)."""


def test_a_push_killed_right_after_its_version_appeared_stays_guarded(
    tmp_path, monkeypatch):
  """Version B (0.99) is renamed into place and the push dies before any
  other step: B is in service and the best-ever guard knows its accuracy
  (before: B had no registry entry and the guard stayed at A's 0.98, for
  good)."""
  serving = str(tmp_path / "serving" / "mnist")
  _push(tmp_path, serving, "a", 0.98)
  real_rename = os.rename

  def rename_then_die(source, target):
    real_rename(source, target)
    raise Killed()

  monkeypatch.setattr(os, "rename", rename_then_die)
  with pytest.raises(Killed):
    _push(tmp_path, serving, "b", 0.99)
  monkeypatch.setattr(os, "rename", real_rename)
  in_service = versions.serving_state(serving)
  assert len(versions.existing_versions(serving)) == 2
  assert _best_ever(tmp_path, serving) == (0.99, in_service)
  # The retry of that run (blessed against A, as before) finds its model
  # in service, already recorded.
  first = str(versions.existing_versions(serving)[0])
  again = _push(tmp_path, serving, "b", 0.99, compared_with=first)
  assert not again.get_int_custom_property("new_version")
  assert [e["accuracy"] for e in registry.records(serving)] == [0.98, 0.99]


def test_a_damaged_registry_json_keeps_the_guard_and_the_history(
    tmp_path, capsys):
  """`registry.json` truncated by hand: the guard still knows the best
  version (before: the guard turned off silently), the next push is
  recorded, and the index lists every version again (before: only the new
  one). The damaged file is named in a one-line note."""
  serving = str(tmp_path / "serving" / "mnist")
  _push(tmp_path, serving, "a", 0.98)
  _push(tmp_path, serving, "b", 0.975)
  index = registry.registry_path(serving)
  with open(index) as f:
    text = f.read()
  with open(index, "w") as f:
    f.write(text[:len(text) // 2])
  first, second = versions.existing_versions(serving)
  assert _best_ever(tmp_path, serving) == (0.98, str(first))
  _push(tmp_path, serving, "c", 0.979)
  third = versions.existing_versions(serving)[-1]
  with open(index) as f:
    listed = json.load(f)["versions"]
  assert [(e["version"], e["accuracy"]) for e in listed] == [
      (first, 0.98), (second, 0.975), (third, 0.979)]
  assert listed[2]["source_model"] == str(tmp_path / "trainer" / "c")
  notes = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("note: ")]
  assert notes and notes[0].startswith(f"note: {index} is unreadable")


def test_a_retried_pusher_whose_push_happened_succeeds(tmp_path,
                                                       monkeypatch):
  """A Pusher pushes B (blessed against A), then fails: the archive copy
  after the push breaks (or its pod is killed after saved_model.pb).
  Retried with the same blessing, it succeeds and reports B, with
  `new_version` 0 (before: `ServingChangedError`, a failed run whose model
  serves). So does the retry of A's Pusher (blessed against nothing) after
  B succeeded A: its push happened, as A; nothing is pushed again."""
  from tfx.utils import io_utils  # pylint: disable=g-import-not-at-top
  serving = str(tmp_path / "serving" / "mnist")
  a_version, _ = _pushed_as(_push(tmp_path, serving, "a", 0.98,
                                  compared_with="none"))

  def archive_fails(source, target, *args, **kwargs):
    raise OSError(f"{target}: connection reset")

  monkeypatch.setattr(io_utils, "copy_dir", archive_fails)
  with pytest.raises(OSError, match="connection reset"):
    _push(tmp_path, serving, "b", 0.99, compared_with=a_version)
  monkeypatch.undo()
  b_version = versions.serving_state(serving)
  assert b_version != a_version
  again = _push(tmp_path, serving, "b", 0.99, compared_with=a_version)
  assert _pushed_as(again) == (b_version, 0)
  assert again.get_string_custom_property("pushed_destination") == (
      os.path.join(serving, b_version))
  assert os.path.exists(os.path.join(again.uri, "saved_model.pb"))  # archived
  assert not again.has_custom_property(pusher_executor.SUCCEEDED_BY_KEY)
  retried_a = _push(tmp_path, serving, "a", 0.98, compared_with="none")
  assert _pushed_as(retried_a) == (a_version, 0)
  # Its report says so: pushed as A, since succeeded by B.
  assert retried_a.get_string_custom_property(
      pusher_executor.SUCCEEDED_BY_KEY) == b_version
  assert versions.existing_versions(serving) == [int(a_version),
                                                 int(b_version)]
  assert versions.serving_state(serving) == b_version


def test_a_model_blessed_against_an_old_baseline_cannot_replace_a_newer_one(
    tmp_path):
  """Versions A, B (compared with A) and C (compared with B) are in. A
  model blessed against A, the state before B, is refused in one line,
  and so is A's own model blessed against B (it is not the retry of A's
  push, which was compared with nothing): C stays in service."""
  serving = str(tmp_path / "serving" / "mnist")
  a_version, _ = _pushed_as(_push(tmp_path, serving, "a", 0.98,
                                  compared_with="none"))
  b_version, _ = _pushed_as(_push(tmp_path, serving, "b", 0.981,
                                  compared_with=a_version))
  c_version, _ = _pushed_as(_push(tmp_path, serving, "c", 0.982,
                                  compared_with=b_version))
  with pytest.raises(versions.ServingChangedError) as refused:
    _push(tmp_path, serving, "d", 0.999, compared_with=a_version)
  assert str(refused.value) == (
      f"{serving}: the model in service changed since the Evaluator "
      f"compared with it (version {a_version} then, version {c_version} "
      f"now); not pushed, rerun to compare with version {c_version}")
  with pytest.raises(versions.ServingChangedError,
                     match=f"version {b_version} then, version {c_version} "
                     "now"):
    _push(tmp_path, serving, "a", 0.98, compared_with=b_version)
  assert versions.existing_versions(serving) == [
      int(v) for v in (a_version, b_version, c_version)]
  assert versions.serving_state(serving) == c_version


def test_a_version_pushed_before_records_keeps_its_index_entry(tmp_path):
  """Serving directories written before versions carried their records:
  the index entry still counts, and a rerun that finds its model in service
  records it."""
  serving = tmp_path / "serving"
  os.makedirs(serving)
  legacy = _trained(tmp_path, "old", 0.97)
  shutil.copytree(path_utils.serving_model_path(legacy.uri),
                  str(serving / "7"))
  with open(registry.registry_path(str(serving)), "w") as f:
    json.dump({"versions": [{"version": 7, "accuracy": 0.97,
                             "source_model": legacy.uri}]}, f)
  assert _best_ever(tmp_path, str(serving)) == (0.97, "7")
  os.remove(registry.registry_path(str(serving)))
  assert _best_ever(tmp_path, str(serving)) is None  # nothing says it now
  _push(tmp_path, str(serving), "old", 0.97)  # the same model, blessed again
  assert versions.existing_versions(str(serving)) == [7]
  assert _best_ever(tmp_path, str(serving)) == (0.97, "7")
