"""Pushing: TF Serving layout, atomic rename, never overwrite."""
import errno
import json
import fcntl
import os
import shutil
import subprocess
import sys

import pytest

from serving import claims
from serving import versions


def _fake_saved_model(path, content="v"):
  os.makedirs(os.path.join(path, "variables"), exist_ok=True)
  with open(os.path.join(path, "saved_model.pb"), "w") as f:
    f.write(content)
  return str(path)


def test_push_creates_integer_versions_in_order(tmp_path):
  model = _fake_saved_model(tmp_path / "model")
  serving = str(tmp_path / "serving" / "mnist")
  first, _ = versions.push(model, serving, now=1000)
  second, created = versions.push(_fake_saved_model(tmp_path / "m2", "2"),
                                    serving, now=1000)  # same second
  assert created
  assert first == os.path.join(serving, "1000")
  assert second == os.path.join(serving, "1001")
  assert versions.existing_versions(serving) == [1000, 1001]
  assert versions.latest_version_dir(serving) == second
  assert os.listdir(serving) == ["1000", "1001"] or sorted(
      os.listdir(serving)) == ["1000", "1001"]  # no staging left behind


def test_existing_versions_are_never_touched(tmp_path):
  serving = str(tmp_path / "serving")
  old, _ = versions.push(_fake_saved_model(tmp_path / "a", "old"), serving,
                           now=5000)
  versions.push(_fake_saved_model(tmp_path / "b", "new"), serving, now=10)
  with open(os.path.join(old, "saved_model.pb")) as f:
    assert f.read() == "old"
  assert versions.existing_versions(serving) == [5000, 5001]


def test_a_failed_copy_leaves_no_version_and_no_staging(tmp_path, monkeypatch):
  serving = str(tmp_path / "serving")
  versions.push(_fake_saved_model(tmp_path / "a"), serving, now=1)

  copied = []

  def copy2_then_disk_full(src, dst):
    with open(dst, "wb") as f:  # half a file, then the disk is full
      f.write(open(src, "rb").read()[:1])
    copied.append(dst)
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(shutil, "copy2", copy2_then_disk_full)
  with pytest.raises(versions.PushError,
                     match=f"{serving}: push failed \\(No space left on "
                     "device\\); the versions in service are untouched"):
    versions.push(_fake_saved_model(tmp_path / "b", "other"), serving,
                    now=2)
  assert copied
  assert sorted(os.listdir(serving)) == ["1"]


def test_the_model_already_in_service_is_not_pushed_twice(tmp_path):
  serving = str(tmp_path / "serving")
  model = _fake_saved_model(tmp_path / "a", "same")
  first, created_first = versions.push(model, serving, now=1)
  again, created_again = versions.push(model, serving, now=2)
  assert (created_first, created_again) == (True, False)
  assert again == first
  assert versions.existing_versions(serving) == [1]


def test_push_refuses_a_directory_without_saved_model(tmp_path):
  os.makedirs(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="not a SavedModel"):
    versions.push(str(tmp_path / "empty"), str(tmp_path / "serving"))
  assert not os.path.exists(tmp_path / "serving" / "1")


def test_push_to_an_object_store_copies_saved_model_pb_last(tmp_path,
                                                            monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model = _fake_saved_model(tmp_path / "model", "remote")
  with open(os.path.join(model, "variables", "variables.index"), "w") as f:
    f.write("index")
  copied = []
  real_copy = tf.io.gfile.copy

  def recording_copy(src, dst, overwrite=False):
    copied.append(os.path.basename(dst))
    real_copy(src, dst, overwrite)

  monkeypatch.setattr(tf.io.gfile, "copy", recording_copy)
  serving = "ram://serving/mnist"  # TensorFlow's in-memory filesystem
  path, created = versions.push(model, serving, now=7)
  assert (path, created) == ("ram://serving/mnist/7", True)
  assert copied[-1] == "saved_model.pb" and len(copied) == 2
  assert versions.existing_versions(serving) == [7]
  with tf.io.gfile.GFile(path + "/saved_model.pb") as f:
    assert f.read() == "remote"
  assert versions.push(model, serving, now=8) == (path, False)


def test_push_swaps_only_the_version_it_was_compared_with(tmp_path):
  serving = str(tmp_path / "serving")
  with pytest.raises(versions.ServingChangedError):
    versions.push(_fake_saved_model(tmp_path / "a", "a"), serving, now=1,
                    expected="7")  # 7 was never in service
  assert versions.existing_versions(serving) == []
  first, _ = versions.push(_fake_saved_model(tmp_path / "a", "a"), serving,
                             now=1, expected="none")
  # Evaluated when nothing was in service, but version 1 arrived since.
  with pytest.raises(versions.ServingChangedError,
                     match=f"^{serving}: the model in service changed since "
                     "the Evaluator compared with it \\(nothing in service "
                     "then, version 1 now\\); not pushed, rerun to compare "
                     "with version 1$"):
    versions.push(_fake_saved_model(tmp_path / "b", "b"), serving, now=2,
                    expected="none")
  second, created = versions.push(_fake_saved_model(tmp_path / "b", "b"),
                                    serving, now=2, expected="1")
  assert created and versions.existing_versions(serving) == [1, 2]
  assert first != second


def _claim(serving, after, version):
  """Another run's claim on succeeding version `after`, just written."""
  path = versions.claim_path(serving, after)
  assert claims.for_path(path).create(path, json.dumps(
      {"version": version}).encode())
  return path


def _claims_left(serving):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  directory = f"{serving}/{versions.CLAIMS_DIR}"
  return (sorted(tf.io.gfile.listdir(directory))
          if tf.io.gfile.isdir(directory) else [])


def test_object_store_pushes_claim_the_version_they_succeed(tmp_path,
                                                            monkeypatch):
  serving = "ram://cas/mnist"
  model = _fake_saved_model(tmp_path / "model", "m")
  first, _ = versions.push(model, serving, now=10, expected="none")
  assert first == f"{serving}/10"
  assert _claims_left(serving) == []  # released
  # Another run compared with version 10 is copying version 11 right now.
  _claim(serving, "10", 11)
  with pytest.raises(versions.PushError,
                     match=f"^{serving}: another push is under way \\(version "
                     "11\\); not pushed as version 12, rerun to compare with "
                     "it$"):
    versions.push(_fake_saved_model(tmp_path / "b", "b"), serving, now=10,
                  expected="10")
  assert _claims_left(serving) == ["after-10"]  # the other run's, untouched
  # That run is killed: by the store's clock its claim goes stale, and is
  # taken over; its version number stays taken.
  real_clock = claims.ram_clock
  monkeypatch.setattr(claims, "ram_clock", lambda: real_clock() +
                      versions.STALE_CLAIM_SECONDS)
  path, created = versions.push(_fake_saved_model(tmp_path / "b", "b"),
                                serving, now=10, expected="10")
  assert (path, created) == (f"{serving}/12", True)
  assert _claims_left(serving) == []
  # Compare-and-swap holds on object stores too.
  with pytest.raises(versions.ServingChangedError,
                     match="version 10 then, version 12 now"):
    versions.push(_fake_saved_model(tmp_path / "c", "c"), serving,
                  expected="10")
  assert versions.existing_versions(serving) == [10, 12]


def test_of_pushes_racing_to_succeed_one_version_exactly_one_pushes(
    tmp_path):
  """Eight runs compared with version 10 push at the same moment: the
  claim on succeeding version 10 is a conditional create, so exactly one
  pushes and each other one is refused in one line (another push under
  way, or the version in service changed); no version is written twice."""
  import threading  # pylint: disable=g-import-not-at-top
  serving = "ram://race/mnist"
  versions.push(_fake_saved_model(tmp_path / "a", "a"), serving, now=10)
  models = [_fake_saved_model(tmp_path / f"m{i}", str(i)) for i in range(8)]
  start = threading.Barrier(len(models))
  outcomes = []

  def run(model):
    start.wait()
    try:
      outcomes.append(versions.push(model, serving, now=10, expected="10"))
    except versions.PushError as e:
      outcomes.append(e)

  threads = [threading.Thread(target=run, args=(m,)) for m in models]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  (pushed,) = [o for o in outcomes if not isinstance(o, Exception)]
  refused = [o for o in outcomes if isinstance(o, Exception)]
  assert len(refused) == 7 and all("\n" not in str(e) for e in refused)
  for e in refused:
    assert ("another push is under way" in str(e)
            or isinstance(e, versions.ServingChangedError)), e
  assert pushed[1] and versions.existing_versions(serving) == [
      10, int(pushed[0].rsplit("/", 1)[1])]
  assert _claims_left(serving) == []


def test_pushes_into_one_serving_directory_are_serialized(tmp_path):
  """While one process holds `serving_lock` (a push checking the versions
  and renaming its copy into place), another process's lock on the same
  directory cannot be taken; once released, it can."""
  serving = str(tmp_path / "serving" / "mnist")
  holder = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-c",
       "import sys; from serving import versions\n"
       "with versions.serving_lock(sys.argv[1]):\n"
       "  print('held', flush=True); sys.stdin.readline()", serving],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
      cwd=os.path.dirname(os.path.dirname(os.path.dirname(
          os.path.abspath(__file__)))))
  try:
    assert holder.stdout.readline().strip() == "held"
    with open(os.path.join(serving, versions.LOCK_FILE), "a") as handle:
      with pytest.raises(BlockingIOError):
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
      holder.stdin.write("\n")
      holder.stdin.flush()
      assert holder.wait(timeout=60) == 0
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free now
  finally:
    holder.kill()


def test_each_version_carries_its_record(tmp_path):
  """The record is inside the version (written before it appears), and is
  not part of the model: the same model is not pushed twice."""
  serving = str(tmp_path / "serving")
  model = _fake_saved_model(tmp_path / "a", "m")
  path, _ = versions.push(model, serving, {"accuracy": 0.97}, now=3)
  with open(os.path.join(path, versions.RECORD_FILE)) as f:
    record = json.load(f)
  assert record["accuracy"] == 0.97 and record["version"] == 3
  assert versions.push(model, serving, {"accuracy": 0.97}, now=4) == (path,
                                                                        False)


def test_a_version_is_on_disk_before_it_appears(tmp_path, monkeypatch):
  """Every file of a local push, its record included, and every directory
  are flushed to disk (fsync) before the rename that makes the version
  appear, and the rename itself after: a power loss cannot leave a version
  whose saved_model.pb is empty."""
  serving = str(tmp_path / "serving")
  model = _fake_saved_model(tmp_path / "a", "m")
  with open(os.path.join(model, "variables", "variables.index"), "w") as f:
    f.write("index")
  events = []
  real_fsync, real_rename = os.fsync, os.rename

  def fsync(fd):
    events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
    real_fsync(fd)

  def rename(source, target):
    events.append(("rename", source, target))
    real_rename(source, target)

  monkeypatch.setattr(os, "fsync", fsync)
  monkeypatch.setattr(os, "rename", rename)
  path, _ = versions.push(model, serving, now=9)
  (at, staging), = [(i, e[1]) for i, e in enumerate(events)
                    if e[0] == "rename"]
  synced_before = {e[1] for e in events[:at] if e[0] == "fsync"}
  for relative in ("saved_model.pb", "variables/variables.index", "variables",
                   ""):
    assert os.path.normpath(os.path.join(staging, relative)) in \
        synced_before, relative
  assert os.path.join(staging, versions.RECORD_FILE) in synced_before
  assert ("fsync", serving) in events[at + 1:]
  assert sorted(os.listdir(path)) == sorted(
      ["saved_model.pb", "variables", versions.RECORD_FILE])


def test_a_file_uri_serving_dir_is_a_local_one(tmp_path):
  """`file://` is this machine's disk: staged, renamed and locked like a
  path (before: treated as an object store, with push claims and no
  rename)."""
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig.from_env(
      {"SERVING_DIR": f"file://{tmp_path}/models"})
  assert config.serving_model_dir == f"{tmp_path}/models/mnist"
  serving = f"file://{tmp_path}/serving"
  with versions.serving_lock(serving):
    path, created = versions.push(_fake_saved_model(tmp_path / "a"), serving,
                                  now=5)
  assert created and path == f"{serving}/5"
  assert sorted(os.listdir(tmp_path / "serving")) == [versions.LOCK_FILE, "5"]


def test_a_refused_push_never_removes_the_version_that_beat_it(
    tmp_path, monkeypatch):
  """A push that chose its version number before another push compared
  with the same version made that number appear: it is refused, and the
  other push's version stays (before: the refused push "cleaned up" its
  version, which was the other's, and nothing stayed in service; seen as
  a rare failure of the eight-thread race above)."""
  serving = "ram://beaten/mnist"
  versions.push(_fake_saved_model(tmp_path / "a", "a"), serving, now=10)
  chosen_early = versions.next_version(serving)  # 11, chosen before ...
  won, _ = versions.push(_fake_saved_model(tmp_path / "b", "b"), serving,
                         expected="10")  # ... this push made 11 appear
  assert won == f"{serving}/{chosen_early}"
  monkeypatch.setattr(versions, "next_version",
                      lambda *args, **kwargs: chosen_early)
  # What follows `push`'s own first check, for a push that passed it
  # (10 in service) just before the other push's version appeared.
  with pytest.raises(versions.PushError):
    versions._push_to_object_store(  # pylint: disable=protected-access
        _fake_saved_model(tmp_path / "c", "c"), serving, {}, None, "10")
  assert versions.complete_versions(serving) == [10, chosen_early]
  assert versions.serving_state(serving) == str(chosen_early)
