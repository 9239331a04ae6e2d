"""Compare-and-swap pushes on a real S3 server (moto), as on Kubeflow's MinIO.

Run in a subprocess: tensorflow-io's S3 client can abort interpreter
teardown (see `components.storage.exit_process`).
"""
import pytest
import os
import subprocess
import sys

SCRIPT = r"""
import json, os, sys
from components import storage
storage.enable_object_storage()
import tensorflow as tf
from serving import versions

def model(path, content):
  os.makedirs(os.path.join(path, "variables"), exist_ok=True)
  with open(os.path.join(path, "saved_model.pb"), "w") as f:
    f.write(content)
  return path

serving, tmp = sys.argv[1], sys.argv[2]
out = {}
out["first"] = versions.push(model(tmp + "/a", "a"), serving, now=10,
                               expected="none")
try:
  versions.push(model(tmp + "/b", "b"), serving, now=10, expected="none")
except versions.ServingChangedError as e:
  out["refused"] = str(e)
out["second"] = versions.push(model(tmp + "/b", "b"), serving, now=10,
                                expected="10")
import time
other = serving + "/" + versions.CLAIMS_DIR + "/12-otherrun"
with tf.io.gfile.GFile(other, "w") as f:
  f.write(json.dumps({"claimed_at": time.time()}))
try:
  versions.push(model(tmp + "/c", "c"), serving, now=10, expected="11")
except versions.PushError as e:
  out["busy"] = str(e)
tf.io.gfile.remove(other)
out["versions"] = versions.existing_versions(serving)
claims = serving + "/" + versions.CLAIMS_DIR
out["claims"] = ([n for n in tf.io.gfile.listdir(claims) if n.strip("/")]
                 if tf.io.gfile.isdir(claims) else [])
print("RESULT " + json.dumps(out))
storage.exit_process(0)
"""


@pytest.mark.slow
def test_object_store_push_is_compare_and_swap(tmp_path, s3_server):
  from tests.conftest import REPO_ROOT as root  # pylint: disable=g-import-not-at-top
  serving = "s3://kfp/cas/mnist"
  done = subprocess.run(
      [sys.executable, "-c", SCRIPT, serving, str(tmp_path)], cwd=root,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **s3_server),
      capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  import json  # pylint: disable=g-import-not-at-top
  (line,) = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
  out = json.loads(line[len("RESULT "):])
  assert out["first"] == [f"{serving}/10", True]
  assert out["refused"] == (
      f"{serving}: the model in service changed since the Evaluator compared "
      "with it (nothing in service then, version 10 now); not pushed, rerun "
      "to compare with version 10")
  assert out["second"] == [f"{serving}/11", True]
  assert out["busy"].startswith(
      f"{serving}: another push is under way (version 12); not pushed as "
      "version 13")
  assert out["versions"] == [10, 11]
  assert out["claims"] == []


FAULTS_SCRIPT = r"""
import json, os, sys, time
from components import storage
storage.enable_object_storage()
import tensorflow as tf
from serving import versions

def model(path, content):
  os.makedirs(os.path.join(path, "variables"), exist_ok=True)
  with open(os.path.join(path, "variables", "variables.index"), "w") as f:
    f.write("index " + content)
  with open(os.path.join(path, "saved_model.pb"), "w") as f:
    f.write(content)
  return path

def listing(serving):
  return sorted(n.strip("/") for n in tf.io.gfile.listdir(serving))

serving, tmp = sys.argv[1], sys.argv[2]
out = {}
versions.push(model(tmp + "/a", "a"), serving, now=10, expected="none")
# 1. A push that fails while copying (the store refuses the second file).
real_copy, copies = tf.io.gfile.copy, []
def failing_copy(source, target, overwrite=False):
  copies.append(target)
  if len(copies) == 2:
    raise tf.errors.UnavailableError(None, None, "connection reset")
  real_copy(source, target, overwrite)
tf.io.gfile.copy = failing_copy
try:
  versions.push(model(tmp + "/b", "b"), serving, now=10, expected="10")
except versions.PushError as e:
  out["failed"] = str(e)
tf.io.gfile.copy = real_copy
out["after_failure"] = listing(serving)
# 2. What a killed push leaves: part of version 12 and its claim, whose
# holder stopped rewriting it two minutes ago.
with tf.io.gfile.GFile(serving + "/12/variables/variables.index", "w") as f:
  f.write("half")
claim = serving + "/" + versions.CLAIMS_DIR + "/12-killed"
with tf.io.gfile.GFile(claim, "w") as f:
  f.write(json.dumps({"claimed_at": time.time() - 125,
                      "alive_at": time.time() - 120}))
out["pushed"] = versions.push(model(tmp + "/c", "c"), serving, now=10,
                              expected="10")
out["after_push"] = listing(serving)
claims = serving + "/" + versions.CLAIMS_DIR
out["claims"] = ([n for n in tf.io.gfile.listdir(claims) if n.strip("/")]
                 if tf.io.gfile.isdir(claims) else [])
# 3. A push under way (its claim rewritten a second ago) still blocks.
with tf.io.gfile.GFile(claim.replace("12-", "20-"), "w") as f:
  f.write(json.dumps({"claimed_at": time.time() - 300,
                      "alive_at": time.time() - 1}))
try:
  versions.push(model(tmp + "/d", "d"), serving, expected=out["pushed"][0]
                .rsplit("/", 1)[1])
except versions.PushError as e:
  out["busy"] = str(e)
print("RESULT " + json.dumps(out))
storage.exit_process(0)
"""


@pytest.mark.slow
def test_object_store_push_leaves_nothing_half_written(tmp_path, s3_server):
  """On S3: a push that fails removes what it wrote; what a killed push left
  (part of a version, a claim no longer rewritten) is removed by the next
  push within a minute, not left to block pushes for an hour; a push whose
  claim is alive still blocks others."""
  from tests.conftest import REPO_ROOT as root  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  serving = "s3://kfp/faults/mnist"
  done = subprocess.run(
      [sys.executable, "-c", FAULTS_SCRIPT, serving, str(tmp_path)], cwd=root,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **s3_server),
      capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  (line,) = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
  out = json.loads(line[len("RESULT "):])
  assert out["failed"].startswith(f"{serving}: push failed (")
  assert out["failed"].endswith("the versions in service are untouched")
  assert "11" not in out["after_failure"]  # no partial version 11
  assert out["pushed"] == [f"{serving}/13", True]
  assert [n for n in out["after_push"] if n.isdigit()] == ["10", "13"]
  assert out["claims"] == []
  assert out["busy"].startswith(f"{serving}: another push is under way "
                                "(version 20)")
