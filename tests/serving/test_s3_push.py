"""Compare-and-swap pushes on a real S3 server (moto), as on Kubeflow's MinIO.

Run in a subprocess: tensorflow-io's S3 client can abort interpreter
teardown (see `components.storage.exit_process`).
"""
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
