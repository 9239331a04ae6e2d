"""Compare-and-swap pushes on a real S3 server (moto), as on Kubeflow's MinIO.

Run in a subprocess: tensorflow-io's S3 client can abort interpreter
teardown (see `components.storage.exit_process`).
"""
import json
import os
import subprocess
import sys
import time

import pytest

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
# Another run compared with version 11 is pushing version 12: its claim was
# just written (by the store's clock), whatever time its body says.
other = serving + "/" + versions.CLAIMS_DIR + "/after-11"
with tf.io.gfile.GFile(other, "w") as f:
  f.write(json.dumps({"version": 12, "written_at": time.time() - 3600}))
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
from serving import claims, versions
versions.STALE_CLAIM_SECONDS = 3.0

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
# 2. What a killed push leaves: part of version 12 and its claim, which the
# store last saw written STALE_CLAIM_SECONDS ago (by its own clock).
with tf.io.gfile.GFile(serving + "/12/variables/variables.index", "w") as f:
  f.write("half")
claim = serving + "/" + versions.CLAIMS_DIR + "/after-10"
with tf.io.gfile.GFile(claim, "w") as f:
  f.write(json.dumps({"version": 12, "written_at": time.time()}))
while claims.for_path(claim).read(claim).age < versions.STALE_CLAIM_SECONDS:
  time.sleep(0.1)
out["pushed"] = versions.push(model(tmp + "/c", "c"), serving, now=10,
                              expected="10")
out["after_push"] = listing(serving)
claims = serving + "/" + versions.CLAIMS_DIR
out["claims"] = ([n for n in tf.io.gfile.listdir(claims) if n.strip("/")]
                 if tf.io.gfile.isdir(claims) else [])
# 3. A push under way (its claim just rewritten) still blocks.
with tf.io.gfile.GFile(claim.replace("after-10", "after-13"), "w") as f:
  f.write(json.dumps({"version": 20, "written_at": time.time() - 300}))
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
  push once the claim is STALE_CLAIM_SECONDS old by the store's clock, not
  left to block pushes for an hour; a push whose claim is alive still
  blocks others."""
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


# --- concurrent pushes: each "pod" is its own process --------------------------

POD = r"""
import json, os, sys, time
plan = json.loads(sys.argv[1])
real_time = time.time
time.time = lambda: real_time() + plan.get("clock_offset", 0)  # its clock
from components import storage
storage.enable_object_storage()
import tensorflow as tf
from serving import versions
for name, value in plan.get("constants", {}).items():
  setattr(versions, name, value)
serving, tmp, me = plan["serving"], plan["tmp"], plan["name"]
started = time.monotonic()
out = []

def mark(what):
  open(f"{tmp}/{me}.{what}", "w").close()

def wait_for(what):
  owner = what.split(".")[0]
  while not os.path.exists(f"{tmp}/{what}"):
    if "." in what and os.path.exists(f"{tmp}/{owner}.exit"):
      sys.stderr.write(f"pod {owner} ended before {what}; {me} so far: "
                       f"{json.dumps(out)}\n")
      storage.exit_process(3)
    time.sleep(0.02)

def model(content):
  path = f"{tmp}/{me}-{content}"
  os.makedirs(path + "/variables", exist_ok=True)
  for name in ("variables/variables.index", "saved_model.pb"):
    with open(f"{path}/{name}", "w") as f:
      f.write(name + content)
  return path

# Where this pod's pushes stop until the test creates `until`: the removal
# of what killed pushes left ("cleanup"), or copying `file`.
for block in plan.get("blocks", []):
  if block["at"] == "cleanup":
    def remove(*args, real=versions.remove_incomplete_versions, block=block,
               **kwargs):
      mark("cleaning")
      wait_for(block["until"])
      return real(*args, **kwargs)
    versions.remove_incomplete_versions = remove
  else:
    def copy(source, target, overwrite=False, real=tf.io.gfile.copy,
             block=block):
      if source.endswith(block["file"]) and not os.path.exists(
          f"{tmp}/{block['until']}"):
        mark("copying")
        wait_for(block["until"])
      real(source, target, overwrite)
    tf.io.gfile.copy = copy

def attempt(step, content, expected):
  if expected == "current":
    expected = versions.serving_state(serving)
  entry = {"t": round(time.monotonic() - started, 2), "step": step}
  try:
    entry["ok"] = versions.push(model(content), serving, expected=expected)
  except Exception as e:  # pylint: disable=broad-except
    entry["error"], entry["message"] = type(e).__name__, str(e)
  out.append(entry)
  return entry

for i, step in enumerate(plan["steps"]):
  if "wait" in step:
    wait_for(step["wait"])
  elif "mark" in step:
    mark(step["mark"])
  elif "push" in step:
    attempt(i, step["push"], step["expected"])
  else:  # "try": push again and again for `seconds`, or until it pushed
    begin = time.monotonic()
    while time.monotonic() - begin < step["seconds"]:
      if "ok" in attempt(i, step["try"], step["expected"]) and step.get(
          "until_pushed"):
        break
      time.sleep(step.get("interval", 0.3))
with open(f"{tmp}/{me}.json", "w") as f:
  json.dump(out, f)
mark("exit")
storage.exit_process(0)
"""

# Scaled down so that a claim goes stale in seconds; the store's clock has
# whole seconds (Last-Modified, Date), so a claim is stale between 2 and 4 s
# after its last rewrite, and one rewritten every 0.2 s is always live.
FAST = {"HEARTBEAT_SECONDS": 0.2, "STALE_CLAIM_SECONDS": 3.0}
REFUSED_FOR = 4.5  # a push is refused this long: longer than any staleness


class Pods:
  """Processes pushing into one S3 serving directory, each a pod."""

  def __init__(self, tmp_path, s3_server, serving):
    from tests.conftest import REPO_ROOT  # pylint: disable=g-import-not-at-top
    self.tmp, self.serving, self.root = tmp_path, serving, REPO_ROOT
    self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **s3_server)
    self.procs = {}

  def start(self, name, steps, **plan):
    plan = dict(plan, name=name, steps=steps, serving=self.serving,
                tmp=str(self.tmp))
    plan["constants"] = dict(FAST, **plan.get("constants", {}))
    self.procs[name] = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", POD, json.dumps(plan)], cwd=self.root,
        env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)

  def wait_for(self, marker, timeout=90):
    """Waits for the file `marker` that a pod creates."""
    deadline = time.monotonic() + timeout
    while not (self.tmp / marker).exists():
      for name, proc in self.procs.items():
        if proc.poll() not in (None, 0, -9):  # -9: killed by the test
          pytest.fail(f"pod {name} failed: {proc.stderr.read()[-3000:]}")
      assert time.monotonic() < deadline, f"no {marker} after {timeout} s"
      time.sleep(0.02)

  def release(self, name):
    (self.tmp / name).touch()

  def results(self, name):
    proc = self.procs[name]
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-3000:]
    return json.loads((self.tmp / f"{name}.json").read_text())

  def kill_all(self):
    for proc in self.procs.values():
      if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(name="pods")
def _pods(tmp_path, s3_server):
  # The server lives for the session: a directory of its own per test.
  pods = Pods(tmp_path, s3_server, f"s3://kfp/{tmp_path.name}/mnist")
  yield pods
  pods.kill_all()


def _serving_listing(pods):
  """(complete versions, every integer prefix, claims left) on the S3
  server, read with boto3."""
  import boto3  # pylint: disable=g-import-not-at-top
  client = boto3.client("s3", endpoint_url=pods.env["AWS_ENDPOINT_URL"],
                        region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")
  prefix = pods.serving[len("s3://kfp/"):] + "/"
  keys = [o["Key"][len(prefix):] for o in client.list_objects_v2(
      Bucket="kfp", Prefix=prefix).get("Contents", [])]
  complete = sorted(int(k.split("/")[0]) for k in keys
                    if k.endswith("/saved_model.pb"))
  prefixes = sorted({int(k.split("/")[0]) for k in keys
                     if k.split("/")[0].isdigit()})
  claims = [k for k in keys if k.startswith(".push-claims/")]
  return complete, prefixes, claims


def _first_version(pods):
  """Pod `first` pushes the first version (compared with nothing)."""
  pods.start("first", [{"push": "first", "expected": "none"}])
  (entry,) = pods.results("first")
  assert entry["ok"][1] is True, entry
  return entry["ok"][0].rsplit("/", 1)[1]


@pytest.mark.slow
def test_a_push_under_way_refuses_every_push_compared_with_its_baseline(pods):
  """Pods A and B were both compared with version E. A claims the right
  to succeed it; B is refused throughout A's push, which lasts far longer
  than a claim takes to go stale: while A removes what killed pushes left
  (before: no heartbeat yet, so B took A's claim as stale and both pushed)
  and while A copies (the heartbeat; without it B pushes). Once A's
  version is in, B is told the version in service changed: only A's
  version succeeds version E."""
  first = _first_version(pods)
  pods.start("a", [{"push": "a", "expected": first}, {"mark": "done"}],
             blocks=[{"at": "cleanup", "until": "go-cleanup"},
                     {"at": "copy", "file": "saved_model.pb",
                      "until": "go-copy"}])
  pods.start("b", [{"wait": "a.cleaning"},
                   {"try": "b", "expected": first, "seconds": REFUSED_FOR},
                   {"mark": "tried"}, {"wait": "a.copying"},
                   {"try": "b", "expected": first, "seconds": REFUSED_FOR},
                   {"mark": "tried-again"}, {"wait": "a.done"},
                   {"push": "b", "expected": first}])
  pods.wait_for("b.tried")
  pods.release("go-cleanup")
  pods.wait_for("b.tried-again")
  pods.release("go-copy")
  (a,) = pods.results("a")
  b = pods.results("b")
  (pushed,) = [a["ok"]]
  assert pushed[1] is True
  version = int(pushed[0].rsplit("/", 1)[1])
  *under_way, after = b
  assert under_way and {e["step"] for e in under_way} == {1, 4}
  for entry in under_way:
    assert entry.get("message", "").startswith(
        f"{pods.serving}: another push is under way (version {version}); "
        "not pushed as version"), entry
  assert after["error"] == "ServingChangedError"
  assert after["message"] == (
      f"{pods.serving}: the model in service changed since the Evaluator "
      f"compared with it (version {first} then, version {version} now); not "
      f"pushed, rerun to compare with version {version}")
  first = int(first)
  assert _serving_listing(pods) == ([first, version], [first, version], [])


@pytest.mark.slow
def test_claims_are_judged_by_the_stores_clock_not_the_pods(pods):
  """Pods' clocks differ by an hour. Pod L, an hour behind, is copying:
  its claim is live, and B (on time) is refused (before: B read L's
  heartbeat as an hour old, took its claim and pushed too). Pod K, an
  hour ahead, is killed mid-copy: its claim goes stale by the store's
  clock and B takes it over (before: K's heartbeat looked an hour in the
  future, blocking every push for an hour); what K wrote is removed."""
  first = _first_version(pods)
  pods.start("l", [{"push": "l", "expected": first}, {"mark": "done"}],
             clock_offset=-3600,
             blocks=[{"at": "copy", "file": "saved_model.pb",
                      "until": "go-l"}])
  pods.start("k", [{"wait": "l.done"}, {"push": "k", "expected": "current"}],
             clock_offset=3600,
             blocks=[{"at": "copy", "file": "saved_model.pb",
                      "until": "never"}])
  pods.start("b", [{"wait": "l.copying"},
                   {"try": "b", "expected": first, "seconds": REFUSED_FOR},
                   {"mark": "tried"}, {"wait": "k.killed"},
                   {"try": "b2", "expected": "current", "seconds": 30,
                    "until_pushed": True}])
  pods.wait_for("b.tried")
  pods.release("go-l")
  pods.wait_for("k.copying")
  pods.procs["k"].kill()  # SIGKILL, mid-copy: its claim stays behind
  pods.procs["k"].wait()
  (_, killed, _) = _serving_listing(pods)
  pods.release("k.killed")
  (l,) = pods.results("l")
  b = pods.results("b")
  l_version = int(l["ok"][0].rsplit("/", 1)[1])
  refused = [e for e in b if e["step"] == 1]
  assert refused and all(e.get("error") == "PushError" for e in refused), b
  assert all(f"under way (version {l_version})" in e["message"]
             for e in refused)
  k_version = max(killed)  # K's partial version, an hour ahead
  assert k_version > l_version
  taking_over = [e for e in b if e["step"] == 4]
  assert f"under way (version {k_version})" in taking_over[0]["message"]
  assert "ok" in taking_over[-1], taking_over[-1]  # once stale
  b_version = int(taking_over[-1]["ok"][0].rsplit("/", 1)[1])
  assert b_version > k_version
  first = int(first)
  assert _serving_listing(pods) == ([first, l_version, b_version],
                                    [first, l_version, b_version], [])


def _frozen_then_taken_over(pods, holder, taker, expected, at_file):
  """`holder` pushes and is frozen (SIGSTOP) at `at_file`; `taker`,
  compared with the same `expected` version, retries until it has pushed;
  then `holder` resumes. Returns (holder's result, taker's version)."""
  import signal  # pylint: disable=g-import-not-at-top
  pods.start(holder, [{"push": holder, "expected": expected}],
             blocks=[{"at": "copy", "file": at_file,
                      "until": f"go-{holder}"}])
  pods.start(taker, [{"wait": f"{holder}.frozen"},
                     {"try": taker, "expected": expected, "seconds": 30,
                      "until_pushed": True}, {"mark": "done"}])
  pods.wait_for(f"{holder}.copying")
  os.kill(pods.procs[holder].pid, signal.SIGSTOP)
  pods.release(f"{holder}.frozen")
  pods.wait_for(f"{taker}.done")
  pods.release(f"go-{holder}")
  os.kill(pods.procs[holder].pid, signal.SIGCONT)
  (result,) = pods.results(holder)
  return result, int(pods.results(taker)[-1]["ok"][0].rsplit("/", 1)[1])


@pytest.mark.slow
def test_a_push_whose_claim_was_taken_over_leaves_no_version(pods):
  """Pod A is frozen (SIGSTOP: a paused VM, a starved pod) while copying,
  so its heartbeat stops reaching the store; B, compared with the same
  version, takes A's stale claim over and pushes. A2 is frozen likewise
  after its last check, right before writing saved_model.pb; C takes its
  claim over and pushes. Each frozen pod, resumed, finds its claim taken,
  fails in one line and leaves no version (A2 withdraws the one it made
  appear); before, both wrote their versions."""
  first = _first_version(pods)
  a, b_version = _frozen_then_taken_over(pods, "a", "b", first,
                                         "variables.index")
  assert a["error"] in ("PushError", "ServingChangedError"), a
  assert "\n" not in a["message"] and "not pushed" in a["message"]
  first = int(first)
  assert _serving_listing(pods) == ([first, b_version],
                                    [first, b_version], [])

  a2, c_version = _frozen_then_taken_over(pods, "a2", "c", str(b_version),
                                          "saved_model.pb")
  assert a2.get("error") == "PushError", a2
  a2_version = int(a2["message"].split("version ", 1)[1].split(" ")[0])
  assert a2 == {"t": a2["t"], "step": 0, "error": "PushError", "message": (
      f"{pods.serving}: another push took this push's claim over while "
      f"version {a2_version} appeared; version {a2_version} withdrawn, "
      "rerun to compare with the version in service")}
  assert _serving_listing(pods) == ([first, b_version, c_version],
                                    [first, b_version, c_version], [])


@pytest.mark.slow
def test_a_hung_push_stops_blocking_others(pods):
  """Pod A hangs mid-copy with its process alive (its heartbeat thread
  would beat for ever). After MAX_PUSH_SECONDS its heartbeat stops, so B,
  refused at first, takes the claim over once it is stale and pushes
  (before: B was refused for as long as A lived); A, when it wakes, fails
  in one line and leaves no version."""
  first = _first_version(pods)
  constants = {"MAX_PUSH_SECONDS": 2.0}
  pods.start("a", [{"push": "a", "expected": first}], constants=constants,
             blocks=[{"at": "copy", "file": "variables.index",
                      "until": "go-a"}])
  pods.start("b", [{"wait": "a.copying"},
                   {"try": "b", "expected": first, "seconds": 30,
                    "until_pushed": True}, {"mark": "done"}],
             constants=constants)
  pods.wait_for("b.done")
  pods.release("go-a")
  (a,) = pods.results("a")
  b = pods.results("b")
  assert b[0]["error"] == "PushError" and "under way" in b[0]["message"]
  b_version = int(b[-1]["ok"][0].rsplit("/", 1)[1])
  assert a["error"] == "PushError" and "\n" not in a["message"], a
  assert a["message"].endswith(
      "stopped (it ran longer than MAX_PUSH_SECONDS (2 s)); not pushed, "
      "the versions in service are untouched"), a
  first = int(first)
  assert _serving_listing(pods) == ([first, b_version],
                                    [first, b_version], [])
